"""The lipid clinic's view: ``queue.csv`` (everyone waiting for a clinic place) and one page
per clinic (``clinics/<clinic_id>.html`` and ``.pdf``).

Built from tonight's plan, the referral events and the night's selection figures (frames and
rows handed over by the referrals step; no database access here), so the page says what the
GP worklists and the data team's figures say (``fh_screen.stages.referrals.backlog``). A
clinic page shows:

* this week's referrals: clinic-route ``listed``/``reminder`` events of the capacity window
  (the last 7 days, tonight included), the same window ``weekly_capacity`` counts;
* the waiting list, in the order places are given (the referrals step hands it over sorted
  by ``backlog.serving_order``: prospective flags first, then the longest waiting, then
  rank), each with the expected week of the
  place (``slot_week``, as on the GP worklists);
* expected FH cases: the sum of the calibrated probabilities (a probability is an expected
  share, never a diagnosis) of this week's referrals, of the waiting list, and of the
  patients expected in each coming week;
* when the waiting list, and the whole backlog (the waiting list and the eligible patients
  held below the line), are seen: ``ceil(n / (capacity - P))`` weeks, where P is the expected
  prospective referrals a week measured each night (``expected_prospective_weekly``); never
  when capacity does not exceed P. The same for other capacities, to show what a change
  would do.

The forecast is arithmetic on tonight's figures, not a promise: it assumes the prospective
flow continues at P and every place is used.
"""

from __future__ import annotations

import time

import math
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from fh_screen.config import Clinic, Settings
from fh_screen.outputs import render
from fh_screen.outputs.metrics_schema import CALIBRATION_EDGES
from fh_screen.outputs.worklists import CSV_DECIMALS, EXPORT_PROBABILITY_RANGE, percent
from fh_screen.store import files

QUEUED, LISTED, REMINDER = "queued", "listed", "reminder"
ROUTE_CLINIC = "refer_lipid_clinic"
WINDOW_DAYS = 7
# Capacities shown next to the configured one: what a change would do.
CAPACITY_CHANGES = (0.5, 1.5, 2.0)
QUEUE_COLUMNS = [
    "clinic_id", "queue_position", "rank", "patient_id", "practice_id", "first_selected_on", "days_waiting",
    "flow", "expected_week", "probability", "probability_band", "dlcn_points", "dlcn_category", "route",
    "selected_by", "reasons",
]
NOTICE = ("Decision support for clinicians, not a diagnosis. Probabilities are calibrated estimates "
          "of the share with FH, not certainties.")


def probability_band(probability: pl.Expr) -> pl.Expr:
    """The model probability as one of the metrics' calibration bins ("40-60%")."""
    lows = (0.0,) + CALIBRATION_EDGES[:-1]
    labels = [f"{lo * 100:.0f}-{hi * 100:.0f}%" for lo, hi in zip(lows, CALIBRATION_EDGES)]
    band = pl.when(probability.is_null()).then(pl.lit("not scored"))
    for hi, label in zip(CALIBRATION_EDGES[:-1], labels[:-1]):
        band = band.when(probability < hi).then(pl.lit(label))
    return band.otherwise(pl.lit(labels[-1]))


def queue_table(waiting: pl.DataFrame, events: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """``queue.csv``'s rows: tonight's queued patients, already in the order places are given,
    numbered per clinic."""
    for column, dtype in (("flow", pl.Utf8), ("slot_week", pl.Date), ("queued_since", pl.Date)):
        if column not in waiting.columns:
            waiting = waiting.with_columns(pl.lit(None, dtype).alias(column))
    first = (events.filter(pl.col("patient_id").is_in(waiting["patient_id"].implode()))
             .group_by("patient_id").agg(pl.col("as_of").min().alias("_first_event")))
    out = waiting.join(first, on="patient_id", how="left", maintain_order="left").with_columns(
        pl.coalesce(pl.min_horizontal("_first_event", "queued_since"), pl.lit(as_of)).alias("first_selected_on"),
        pl.col("slot_week").alias("expected_week"),
    )
    out = out.with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("clinic_id").alias("queue_position"),
        (pl.lit(as_of) - pl.col("first_selected_on")).dt.total_days().cast(pl.Int32).alias("days_waiting"),
        probability_band(pl.col("probability")).alias("probability_band"),
    ).sort("clinic_id", "queue_position")
    return out.select([pl.col(c) if c in out.columns else pl.lit(None, pl.Utf8).alias(c) for c in QUEUE_COLUMNS])


# --- the clinic page -------------------------------------------------------------------


@dataclass
class ClinicPage:
    """What one clinic's page shows (see the module docstring)."""

    clinic_id: str
    name: str
    as_of: date
    weekly_capacity: int
    this_week: list[dict]
    waiting: list[dict]
    expected_this_week: float | None
    expected_waiting: float | None
    prospective_per_week: int
    below_line: int
    below_line_expected: float | None
    by_week: list[dict]
    scenarios: list[dict]
    notice: str = NOTICE
    unscored: int = 0


def weeks_to_clear(waiting: int, capacity: int, inflow: int) -> int | None:
    """Whole weeks until ``waiting`` patients are seen, or None when capacity does not exceed the inflow."""
    if waiting == 0:
        return 0
    if capacity <= inflow:
        return None
    return math.ceil(waiting / (capacity - inflow))


def expected_by_week(waiting: list[dict]) -> list[dict]:
    """The waiting list by expected week of the place: patients and expected FH cases per week."""
    weeks: dict = {}
    for r in waiting:
        weeks.setdefault(r.get("expected_week"), []).append(r.get("probability"))
    rows = []
    for week in sorted(weeks, key=lambda w: (w is None, w or date.min)):
        scored = [p for p in weeks[week] if p is not None]
        rows.append({"week": week, "patients": len(weeks[week]),
                     "expected_fh": round(sum(scored), 1) if scored else None})
    return rows


def clinic_pages(queue: pl.DataFrame, events: pl.DataFrame, settings: Settings, as_of: date,
                 figures: list[dict]) -> list[ClinicPage]:
    """One page per configured clinic (empty lists included: a clinic sees it has none)."""
    start = as_of - timedelta(days=WINDOW_DAYS - 1)
    recent = events.filter(pl.col("as_of").is_between(start, as_of)
                           & pl.col("event").is_in([LISTED, REMINDER]) & (pl.col("route") == ROUTE_CLINIC))
    by_clinic = {f["clinic_id"]: f for f in figures}
    pages = []
    for clinic in settings.clinics:
        mine = recent.filter(pl.col("clinic_id") == clinic.clinic_id).sort("as_of", "rank")
        week = [_row(r) for r in mine.iter_rows(named=True)]
        waiting = [_row(r) for r in queue.filter(pl.col("clinic_id") == clinic.clinic_id).iter_rows(named=True)]
        pages.append(_page(clinic, as_of, week, waiting, by_clinic.get(clinic.clinic_id, {})))
    return pages


def _row(r: dict) -> dict:
    p = r.get("probability")
    return {**r, "probability_text": "not scored" if p is None else percent(p, "en")}


def _expected(rows: list[dict]) -> float | None:
    scored = [r["probability"] for r in rows if r.get("probability") is not None]
    return round(sum(scored), 1) if scored else None


def _page(clinic: Clinic, as_of: date, week: list[dict], waiting: list[dict], figures: dict) -> ClinicPage:
    capacity = clinic.weekly_capacity
    inflow = int(figures.get("expected_prospective_weekly") or 0)
    below = int(figures.get("below_line") or 0)
    scenarios = []
    for factor in (1.0,) + CAPACITY_CHANGES:
        cap = max(int(round(capacity * factor)), 0)
        weeks = weeks_to_clear(len(waiting), cap, inflow)
        backlog_weeks = weeks_to_clear(len(waiting) + below, cap, inflow)
        scenarios.append({
            "capacity": cap, "configured": factor == 1.0, "weeks": weeks, "backlog_weeks": backlog_weeks,
            "cleared_by": None if weeks is None else as_of + timedelta(days=7 * weeks),
        })
    return ClinicPage(
        clinic_id=clinic.clinic_id, name=clinic.name, as_of=as_of, weekly_capacity=capacity, this_week=week,
        waiting=waiting, expected_this_week=_expected(week), expected_waiting=_expected(waiting),
        prospective_per_week=inflow, below_line=below,
        below_line_expected=round(figures["below_line_expected_carriers"], 1) if below else None,
        by_week=expected_by_week(waiting), scenarios=scenarios,
        unscored=sum(r.get("probability") is None for r in waiting),
    )


def page_html(page: ClinicPage, printable: bool = False) -> str:
    """The page; ``printable`` leaves out the style sheet (fpdf2's HTML subset)."""
    return render.render_html("clinics/clinic.html.j2", page=page, printable=printable)


def page_pdf(page: ClinicPage) -> bytes:
    """The same page as a PDF, from the same template, so the two never disagree."""
    pdf, _ = render.pdf_from_html([page_html(page, printable=True)], f"{page.name} {page.as_of.isoformat()}")
    return pdf


def write_all(work_dir, waiting: pl.DataFrame, events: pl.DataFrame, settings: Settings, as_of: date,
              figures: list[dict]) -> dict:
    """Write ``queue.csv`` and ``clinics/<clinic_id>.html|.pdf``; return counts for the manifest.

    ``waiting``: tonight's queued patients in the order places are given; ``figures``: the
    night's selection figures per clinic (``backlog.nightly_figures``).
    """
    queue = queue_table(waiting, events, as_of)
    # As in the worklist CSVs: rounded, and never 0 or 1 (a probability is not a certainty).
    files.write_csv(work_dir / "queue.csv", queue.with_columns(
        pl.col("probability").round(CSV_DECIMALS["probability"]).clip(*EXPORT_PROBABILITY_RANGE)))
    folder = files.ensure_dir(work_dir / "clinics")
    pages = clinic_pages(queue, events, settings, as_of, figures)
    rendering, rendering_cpu = 0.0, 0.0
    for page in pages:
        stem = files.safe_name(page.clinic_id, "clinic")
        started, cpu = time.perf_counter(), time.process_time()
        html, pdf = page_html(page), page_pdf(page)
        rendering += time.perf_counter() - started
        rendering_cpu += time.process_time() - cpu
        files.write_text(files.child_path(folder, f"{stem}.html"), html)
        files.write_bytes(files.child_path(folder, f"{stem}.pdf"), pdf)
    # Rendering is reported apart, as for the worklists (worklist_files.write_all).
    return {"queue_csv_rows": queue.height, "clinic_pages": len(pages),
            "render_seconds": rendering, "render_cpu_seconds": rendering_cpu}
