"""Writes the night's GP worklists: each practice's list as HTML, PDF and CSV from one view
model (``worklists``), and each clinic's FHIR referral bundle (``fhir``)."""

from __future__ import annotations

import time

import polars as pl

from fh_screen.context import RunContext
from fh_screen.outputs import fhir as referral_fhir, worklist_pdf, worklists
from fh_screen.store import files


def write_all(con, planned: pl.DataFrame, ctx: RunContext, explain=None, ldl_series=None) -> dict:
    """Write every practice's HTML/PDF/CSV and every clinic's FHIR bundle; return counts and
    the seconds spent rendering HTML and PDF (reported apart: the nightly data work and the
    document rendering scale differently). ``explain``: see ``worklists.practice_lists``;
    ``ldl_series``: see ``worklists.load_details``."""
    listed = planned.filter(pl.col("event") != "queued")
    details = worklists.load_details(con, listed["patient_id"].to_list(), ctx.as_of, ldl_series)
    practices = worklists.practice_lists(planned, details, ctx, explain)
    folder = files.ensure_dir(ctx.work_dir / "worklists")
    stems = worklists.file_stems([p.practice_id for p in practices])
    rows_by_practice = {
        pid: group.to_dicts() for (pid,), group in listed.group_by(["practice_id"], maintain_order=True)
    }
    pages, rendering = 0, 0.0
    for practice in practices:
        stem = stems[practice.practice_id]
        started = time.perf_counter()
        page = worklists.html(practice)
        pdf_bytes, n_pages = worklist_pdf.pdf(practice)
        rendering += time.perf_counter() - started
        pages += n_pages
        files.write_text(files.child_path(folder, f"{stem}.html"), page)
        files.write_bytes(files.child_path(folder, f"{stem}.pdf"), pdf_bytes)
        files.write_text(files.child_path(folder, f"{stem}.csv"), worklists.csv_text(practice, rows_by_practice[practice.practice_id]))
    bundles = referral_fhir.write_bundles(listed, planned.height, practices, ctx, folder)
    return {"practices": len(practices), "pdf_pages": pages, "fhir_bundles": bundles,
            "render_seconds": round(rendering, 3)}

