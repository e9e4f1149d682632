"""Writes the night's GP worklists: each practice's list as HTML, PDF and CSV from one view
model (``worklists``), and each clinic's FHIR referral bundle (``fhir``)."""

from __future__ import annotations

import time

import polars as pl

from fh_screen.context import RunContext
from fh_screen.outputs import fhir as referral_fhir, worklist_pdf, worklists
from fh_screen.store import files


def listed(planned: pl.DataFrame) -> pl.DataFrame:
    """The planned rows that appear on a worklist tonight (everyone not queued for capacity)."""
    return planned.filter(pl.col("event") != "queued")


def write_all(planned: pl.DataFrame, details: dict[str, dict], ctx: RunContext, explain=None) -> dict:
    """Write every practice's HTML/PDF/CSV and every clinic's FHIR bundle; return counts and
    the seconds spent rendering HTML and PDF (reported apart: the nightly data work and the
    document rendering scale differently). ``details``: per listed patient, see
    ``worklists.details_from``; ``explain``: see ``worklists.practice_lists``."""
    listed_rows = listed(planned)
    practices = worklists.practice_lists(planned, details, ctx, explain)
    folder = files.ensure_dir(ctx.work_dir / "worklists")
    stems = worklists.file_stems([p.practice_id for p in practices])
    rows_by_practice = {
        pid: group.to_dicts() for (pid,), group in listed_rows.group_by(["practice_id"], maintain_order=True)
    }
    pages, rendering, rendering_cpu = 0, 0.0, 0.0
    for practice in practices:
        stem = stems[practice.practice_id]
        started, cpu = time.perf_counter(), time.process_time()
        page = worklists.html(practice)
        pdf_bytes, n_pages = worklist_pdf.pdf(practice)
        rendering += time.perf_counter() - started
        rendering_cpu += time.process_time() - cpu
        pages += n_pages
        files.write_text(files.child_path(folder, f"{stem}.html"), page)
        files.write_bytes(files.child_path(folder, f"{stem}.pdf"), pdf_bytes)
        files.write_text(files.child_path(folder, f"{stem}.csv"), worklists.csv_text(practice, rows_by_practice[practice.practice_id]))
    bundles = referral_fhir.write_bundles(listed_rows, planned.height, practices, ctx, folder)
    return {"practices": len(practices), "pdf_pages": pages, "fhir_bundles": bundles,
            "render_seconds": round(rendering, 3), "render_cpu_seconds": round(rendering_cpu, 3)}

