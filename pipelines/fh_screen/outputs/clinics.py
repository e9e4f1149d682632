"""The lipid clinic's view: ``queue.csv`` (everyone waiting for a clinic place) and one page
per clinic (``clinics/<clinic_id>.html`` and ``.pdf``).

Built from tonight's plan and the referral events (frames handed over by the referrals
step; no database access here). A clinic page shows:

* this week's referrals: clinic-route ``listed``/``reminder`` events of the capacity window
  (the last 7 days, tonight included), the same window ``weekly_capacity`` counts;
* the waiting list, in the order places are given (longest waiting first, then rank);
* expected FH cases: the sum of the calibrated probabilities (a probability is an expected
  share, never a diagnosis) of this week's referrals, of the waiting list, and per week of
  the forecast;
* a forecast of when the waiting list is cleared: each week the clinic takes
  ``weekly_capacity`` patients; new patients join at the recent rate: patients first
  selected for this clinic in the last 7 days, per week, leaving out the pilot's first
  night (the backlog found when screening starts is not a weekly rate). The list clears after
  ``ceil(waiting / (capacity - inflow))`` weeks when capacity exceeds the inflow, and never
  otherwise; the same for a few other capacities, to show what a change would do.

The forecast is arithmetic on tonight's figures, not a promise: it assumes this week's
inflow continues and every place is used.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from fh_screen.config import Clinic, Settings
from fh_screen.outputs import render
from fh_screen.outputs.worklists import csv_safe
from fh_screen.stages.metrics.schema import CALIBRATION_EDGES
from fh_screen.store import files

QUEUED, LISTED, REMINDER = "queued", "listed", "reminder"
ROUTE_CLINIC = "refer_lipid_clinic"
WINDOW_DAYS = 7
FORECAST_WEEKS_SHOWN = 12
# Capacities shown next to the configured one: what a change would do.
CAPACITY_CHANGES = (0.5, 1.5, 2.0)
QUEUE_COLUMNS = [
    "clinic_id", "queue_position", "rank", "patient_id", "practice_id", "first_selected_on", "days_waiting",
    "probability", "probability_band", "dlcn_points", "dlcn_category", "route", "selected_by", "reasons",
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


def queue_table(planned: pl.DataFrame, events: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Everyone waiting for a clinic place tonight, per clinic in the order places are given."""
    waiting = planned.filter(pl.col("event") == QUEUED)
    first = (events.filter(pl.col("patient_id").is_in(waiting["patient_id"].implode()))
             .group_by("patient_id").agg(pl.col("as_of").min().alias("_first_event")))
    out = waiting.join(first, on="patient_id", how="left").with_columns(
        pl.coalesce("queued_since", pl.lit(as_of)).alias("_queued_from"),
        pl.coalesce(pl.min_horizontal("_first_event", "queued_since"), pl.lit(as_of)).alias("first_selected_on"),
    )
    out = out.sort(["clinic_id", "_queued_from", "rank"], nulls_last=True).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("clinic_id").alias("queue_position"),
        (pl.lit(as_of) - pl.col("first_selected_on")).dt.total_days().cast(pl.Int32).alias("days_waiting"),
        probability_band(pl.col("probability")).alias("probability_band"),
    )
    return out.select([pl.col(c) if c in out.columns else pl.lit(None, pl.Utf8).alias(c) for c in QUEUE_COLUMNS])


def queue_csv(queue: pl.DataFrame) -> str:
    """``queue.csv``; text cells a spreadsheet would run as a formula are neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(QUEUE_COLUMNS)
    for row in queue.iter_rows(named=True):
        writer.writerow([csv_safe(row[c]) for c in QUEUE_COLUMNS])
    return buffer.getvalue()


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
    inflow_per_week: int
    forecast: list[dict]
    scenarios: list[dict]
    notice: str = NOTICE
    unscored: int = 0


def weeks_to_clear(waiting: int, capacity: int, inflow: int) -> int | None:
    """Whole weeks until nobody waits, or None when capacity does not exceed the inflow."""
    if waiting == 0:
        return 0
    if capacity <= inflow:
        return None
    return math.ceil(waiting / (capacity - inflow))


def forecast_weeks(probabilities: list[float | None], capacity: int, inflow: int, as_of: date) -> list[dict]:
    """Week by week: patients seen from today's list and the FH cases expected among them."""
    rows, remaining, week = [], list(probabilities), 0
    while remaining and week < FORECAST_WEEKS_SHOWN and capacity > 0:
        taken, remaining = remaining[:capacity], remaining[capacity:]
        scored = [p for p in taken if p is not None]
        rows.append({
            "week": week + 1,
            "starting": as_of + timedelta(days=7 * week),
            "seen": len(taken),
            "expected_fh": round(sum(scored), 1) if scored else None,
            "still_waiting": len(remaining) + inflow * (week + 1),
        })
        week += 1
    return rows


def clinic_pages(queue: pl.DataFrame, events: pl.DataFrame, settings: Settings, as_of: date) -> list[ClinicPage]:
    """One page per configured clinic (empty lists included: a clinic sees it has none)."""
    start = as_of - timedelta(days=WINDOW_DAYS - 1)
    recent = events.filter(pl.col("as_of").is_between(start, as_of)
                           & pl.col("event").is_in([LISTED, REMINDER]) & (pl.col("route") == ROUTE_CLINIC))
    first_seen = events.group_by("patient_id").agg(pl.col("as_of").min().alias("first_on"), pl.col("clinic_id").last())
    pilot_start = events["as_of"].min() if events.height else as_of
    since = max(start, pilot_start + timedelta(days=1))
    days = (as_of - since).days + 1
    pages = []
    for clinic in settings.clinics:
        mine = recent.filter(pl.col("clinic_id") == clinic.clinic_id).sort("as_of", "rank")
        week = [_row(r) for r in mine.iter_rows(named=True)]
        waiting_frame = queue.filter(pl.col("clinic_id") == clinic.clinic_id)
        waiting = [_row(r) for r in waiting_frame.iter_rows(named=True)]
        new = first_seen.filter((pl.col("clinic_id") == clinic.clinic_id) & (pl.col("first_on") >= since)).height
        inflow = round(new * WINDOW_DAYS / days) if days > 0 else 0
        pages.append(_page(clinic, as_of, week, waiting, inflow))
    return pages


def _row(r: dict) -> dict:
    p = r.get("probability")
    return {**r, "probability_text": "not scored" if p is None else f"{p * 100:.0f}%"}


def _expected(rows: list[dict]) -> float | None:
    scored = [r["probability"] for r in rows if r.get("probability") is not None]
    return round(sum(scored), 1) if scored else None


def _page(clinic: Clinic, as_of: date, week: list[dict], waiting: list[dict], inflow: int) -> ClinicPage:
    capacity = clinic.weekly_capacity
    probabilities = [r.get("probability") for r in waiting]
    scenarios = []
    for factor in (1.0,) + CAPACITY_CHANGES:
        cap = max(int(round(capacity * factor)), 0)
        weeks = weeks_to_clear(len(waiting), cap, inflow)
        scenarios.append({
            "capacity": cap, "configured": factor == 1.0, "weeks": weeks,
            "cleared_by": None if weeks is None else as_of + timedelta(days=7 * weeks),
        })
    return ClinicPage(
        clinic_id=clinic.clinic_id, name=clinic.name, as_of=as_of, weekly_capacity=capacity, this_week=week,
        waiting=waiting, expected_this_week=_expected(week), expected_waiting=_expected(waiting),
        inflow_per_week=inflow, forecast=forecast_weeks(probabilities, capacity, inflow, as_of),
        scenarios=scenarios, unscored=sum(p is None for p in probabilities),
    )


def page_html(page: ClinicPage, printable: bool = False) -> str:
    """The page; ``printable`` leaves out the style sheet and charts (fpdf2's HTML subset)."""
    return render.render_html("clinics/clinic.html.j2", page=page, printable=printable)


def page_pdf(page: ClinicPage) -> bytes:
    """The same page as a PDF, from the same template, so the two never disagree."""
    pdf, _ = render.pdf_from_html([page_html(page, printable=True)], f"{page.name} {page.as_of.isoformat()}")
    return pdf


def write_all(work_dir, planned: pl.DataFrame, events: pl.DataFrame, settings: Settings, as_of: date) -> dict:
    """Write ``queue.csv`` and ``clinics/<clinic_id>.html|.pdf``; return counts for the manifest."""
    queue = queue_table(planned, events, as_of)
    files.write_text(work_dir / "queue.csv", queue_csv(queue))
    folder = files.ensure_dir(work_dir / "clinics")
    pages = clinic_pages(queue, events, settings, as_of)
    for page in pages:
        stem = files.safe_name(page.clinic_id, "clinic")
        files.write_text(files.child_path(folder, f"{stem}.html"), page_html(page))
        files.write_bytes(files.child_path(folder, f"{stem}.pdf"), page_pdf(page))
    return {"queued": queue.height, "clinic_pages": len(pages)}
