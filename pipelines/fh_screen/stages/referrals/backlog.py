"""The bounded backlog pass and honest waiting: how many are queued, and for which week.

On a first night over years of history the selection marks far more people than the clinics
can ever see. Queuing them all would promise places years ahead; so, per clinic with a
weekly capacity C and the region's ``backlog`` settings (horizon H weeks, share s, look-back):

* **Prospective flow first.** Prospective candidates (``prospective.py``) are always queued
  and are served before the backlog. P, the expected prospective clinic referrals per week,
  is measured on the region's own data each night (``prospective.expected_weekly``).
* **The backlog's places.** This week's free places are C, less those used earlier in the
  capacity week and tonight's prospective clinic candidates; each later week of the horizon
  leaves C - P. The backlog may hold ``min(s x H x C, free now + (H - 1) x (C - P))``, and
  at least this week's free places (a week the prospective flow leaves free is never idle),
  never fewer than 0.
* **The line.** Backlog candidates of the clinic - on the clinic route or "check a secondary
  cause first", ordered as the queue is served (already queued first, then the calibrated
  rank) - take those places. Everyone after the last place is *below the line*: still
  eligible, not queued, on no list, with no ledger event, so no GP is told and no reminder
  goes out. They re-enter on a later night, in the same order, when places free up (the
  queue moved on) or when new evidence makes them prospective. Someone already queued
  keeps their place even when the places shrink (a surge of prospective flags): a queued
  patient stays queued until listed, so the ledger, the queue and the GP's counts agree.
  Candidates whose latest evidence is older than the look-back are left out of the pass
  the same way.
* **Check first with the same care.** A backlog patient routed to "check a secondary cause
  first" is listed only inside the backlog's places, that is when they would be within the
  horizon without the secondary cause; they hold that place, so the horizon keeps room for
  their referral once the cause is ruled out. The others are held and nothing mentions them.
* Without a configured clinic capacity there is no horizon, and nobody is held.

**Expected week of a clinic place**, shown on GP worklists instead of a waiting count:
tonight's clinic listings take a place this week (offset 0). Queued prospective patients, in
queue order i = 0, 1, ...: offset 1 + i // C. Queued backlog patients come after every
prospective patient, those still to arrive included: k = 0, 1, ... -> offset
1 + (Qp + k) // (C - P), with Qp the prospective patients still queued. When C - P <= 0 no
week can be promised: "not yet scheduled". Check-first listings have no clinic place yet.

**Weeks to clear** the backlog (queued backlog plus below the line) = its size / (C - P),
the places a week the prospective flow is expected to leave.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl

from fh_screen import schemas
from fh_screen.config import BacklogSettings, Clinic
from fh_screen.stages.referrals.prospective import FLOW_BACKLOG, FLOW_PROSPECTIVE

ROUTE_CLINIC = "refer_lipid_clinic"
ROUTE_CHECK = "check_secondary_cause_first"
WITHIN, BELOW_LINE, OUTSIDE_LOOKBACK = "within", "below_line", "outside_lookback"
QUEUE_ORDER = ["_flow_order", "queued_since", "rank"]   # how a clinic's queue is served


def serving_order(frame: pl.DataFrame) -> pl.DataFrame:
    """Sort in the order places are given: prospective first, then the longest waiting, then rank."""
    return frame.with_columns((pl.col("flow") != FLOW_PROSPECTIVE).cast(pl.Int8).alias("_flow_order")).sort(
        QUEUE_ORDER, nulls_last=True
    )


def backlog_places(
    candidates: pl.DataFrame,
    clinics: list[Clinic],
    used: dict[str, int],
    expected: dict[str, int],
    settings: BacklogSettings,
) -> dict[str, int]:
    """The places within the horizon the backlog may hold tonight, per clinic (see module docstring)."""
    prospective = dict(
        candidates.filter((pl.col("flow") == FLOW_PROSPECTIVE) & (pl.col("route") == ROUTE_CLINIC))
        .group_by("clinic_id").len().iter_rows()
    )
    places = {}
    for c in clinics:
        now = c.weekly_capacity - used.get(c.clinic_id, 0) - prospective.get(c.clinic_id, 0)
        later = (settings.horizon_weeks - 1) * (c.weekly_capacity - expected.get(c.clinic_id, 0))
        cap = math.floor(settings.share * settings.horizon_weeks * c.weekly_capacity)
        places[c.clinic_id] = max(min(cap, max(now + later, now)), 0)
    return places


def draw_line(candidates: pl.DataFrame, places: dict[str, int], settings: BacklogSettings,
              as_of: date) -> pl.DataFrame:
    """Add ``line``: within (queued or listed tonight), below_line, or outside_lookback."""
    oldest = as_of - timedelta(days=round(365.25 * settings.lookback_years))
    cap = pl.DataFrame({"clinic_id": list(places), "_places": list(places.values())},
                       schema={"clinic_id": pl.Utf8, "_places": pl.Int64})
    backlog = pl.col("flow") == FLOW_BACKLOG
    too_old = backlog & (pl.col("evidence_on") < oldest).fill_null(False)
    ordered = serving_order(candidates.join(cap, on="clinic_id", how="left")).with_columns(
        too_old.alias("_too_old")
    )
    in_pass = backlog & ~pl.col("_too_old") & pl.col("_places").is_not_null()
    waiting = in_pass & pl.col("queued_since").is_not_null()
    ordered = ordered.with_columns(
        pl.when(in_pass).then(pl.int_range(1, pl.len() + 1).over(["clinic_id", in_pass])).alias("_place"),
        pl.max_horizontal(pl.col("_places"), waiting.sum().over("clinic_id")).alias("_places"),
    )
    line = (
        pl.when(pl.col("_too_old")).then(pl.lit(OUTSIDE_LOOKBACK))
        .when(pl.col("_place") > pl.col("_places")).then(pl.lit(BELOW_LINE))
        .otherwise(pl.lit(WITHIN))
    )
    return ordered.with_columns(line.alias("line")).drop("_places", "_place", "_too_old", "_flow_order")


def slot_weeks(planned: pl.DataFrame, clinics: list[Clinic], expected: dict[str, int], as_of: date) -> pl.DataFrame:
    """Add ``slot_week``: the date in the week a clinic place is expected (NULL = not yet scheduled)."""
    capacity = {c.clinic_id: c.weekly_capacity for c in clinics}
    cap = pl.DataFrame(
        {"clinic_id": list(capacity), "_c": list(capacity.values()),
         "_p": [expected.get(c, 0) for c in capacity]},
        schema={"clinic_id": pl.Utf8, "_c": pl.Int64, "_p": pl.Int64},
    )
    queued = (pl.col("event") == "queued") & (pl.col("route") == ROUTE_CLINIC) & pl.col("_c").is_not_null()
    prospective = queued & (pl.col("flow") == FLOW_PROSPECTIVE)
    waiting_backlog = queued & (pl.col("flow") == FLOW_BACKLOG)
    out = serving_order(planned.join(cap, on="clinic_id", how="left"))
    out = out.with_columns(
        pl.when(prospective).then(pl.int_range(0, pl.len()).over(["clinic_id", prospective])).alias("_i"),
        pl.when(waiting_backlog).then(pl.int_range(0, pl.len()).over(["clinic_id", waiting_backlog])).alias("_k"),
        prospective.sum().over("clinic_id").alias("_qp"),
    )
    left = pl.col("_c") - pl.col("_p")
    offset = (
        pl.when(pl.col("event").is_in(["listed", "reminder"]) & (pl.col("route") == ROUTE_CLINIC)
                & pl.col("_c").is_not_null()).then(0)
        .when(prospective).then(1 + pl.col("_i") // pl.col("_c"))
        .when(waiting_backlog & (left > 0)).then(1 + (pl.col("_qp") + pl.col("_k")) // left)
    )
    return out.with_columns(
        pl.lit(as_of).dt.offset_by(pl.format("{}w", offset)).alias("slot_week")
    ).drop("_c", "_p", "_i", "_k", "_qp", "_flow_order").sort("rank")


def _figure_columns() -> list[pl.Expr]:
    """Tonight's figures per clinic, as aggregations over the lined-up candidates."""
    clinic_route = pl.col("route") == ROUTE_CLINIC
    check = pl.col("route") == ROUTE_CHECK
    prospective = pl.col("flow") == FLOW_PROSPECTIVE
    backlog = pl.col("flow") == FLOW_BACKLOG
    within = pl.col("line") == WITHIN
    below = pl.col("line") == BELOW_LINE
    listed = pl.col("event").is_in(["listed", "reminder"])
    queued = pl.col("event") == "queued"
    new = pl.col("queued_since").is_null()
    in_horizon = clinic_route & within

    def n(expr: pl.Expr) -> pl.Expr:
        return expr.fill_null(False).sum().cast(pl.Int64)

    return [
        pl.len().cast(pl.Int64).alias("candidates"),
        n(prospective & new & (pl.col("kind") == "listed")).alias("prospective_selected"),
        n(backlog & within & new).alias("backlog_selected"),
        n(prospective).alias("prospective_candidates"),
        n(clinic_route & listed).alias("clinic_listed"),
        n(queued).alias("queued"),
        n(backlog & clinic_route & queued).alias("backlog_queued"),
        n(clinic_route & below).alias("below_line"),
        n(pl.col("line") == OUTSIDE_LOOKBACK).alias("outside_lookback"),
        n(check & listed).alias("check_first_listed"),
        n(check & backlog & within & listed).alias("check_first_backlog_listed"),
        n(check & ~within).alias("check_first_held"),
        pl.col("probability").filter(clinic_route & below).sum().alias("below_line_expected_carriers"),
        pl.col("probability").filter(in_horizon).sum().alias("horizon_expected_carriers"),
    ]


def backlog_clearance(frame: pl.DataFrame) -> pl.DataFrame:
    """The backlog (queued from the backlog + below the line), the weekly places left for it
    (capacity minus the expected prospective referrals, none when that is not positive),
    and the weeks to clear it at that pace (one decimal; none without places)."""
    left = pl.col("weekly_capacity") - pl.col("expected_prospective_weekly")
    size = pl.col("backlog_queued") + pl.col("below_line")
    return frame.with_columns(
        size.alias("backlog_size"),
        pl.when(left > 0).then(pl.max_horizontal(left, 0)).otherwise(0).alias("backlog_weekly_places"),
    ).with_columns(
        pl.when(pl.col("backlog_weekly_places") > 0)
        .then((pl.col("backlog_size") / pl.col("backlog_weekly_places")).round(1)).alias("weeks_to_clear"),
    )


def nightly_figures(
    lined: pl.DataFrame,
    planned: pl.DataFrame,
    clinics: list[Clinic],
    places: dict[str, int],
    expected: dict[str, int],
    as_of: date,
) -> pl.DataFrame:
    """One row per clinic (and one for candidates without a clinic) of tonight's selection figures.

    What the data team sees about the line: ``below_line`` and their summed calibrated
    probability (the expected carriers among them), next to what is queued.
    """
    capacity = {c.clinic_id: c.weekly_capacity for c in clinics}
    event = planned.select("patient_id", "event")
    rows = lined.join(event, on="patient_id", how="left").with_columns(
        pl.col("clinic_id").fill_null("none"), pl.col("probability").fill_null(0.0)
    )
    per = rows.group_by("clinic_id").agg(*_figure_columns())
    clinic_ids = sorted(set(per["clinic_id"].to_list()) | set(capacity))
    frame = pl.DataFrame({"clinic_id": clinic_ids}, schema={"clinic_id": pl.Utf8}).join(per, on="clinic_id", how="left").fill_null(0)
    frame = frame.with_columns(
        pl.lit(as_of).alias("as_of"),
        pl.col("clinic_id").replace_strict(capacity, default=None, return_dtype=pl.Int64).alias("weekly_capacity"),
        pl.col("clinic_id").replace_strict(expected, default=0, return_dtype=pl.Int64).alias("expected_prospective_weekly"),
        pl.col("clinic_id").replace_strict(places, default=None, return_dtype=pl.Int64).alias("backlog_places"),
    )
    return backlog_clearance(frame).select(RUN_COLUMNS)


RUN_COLUMNS = schemas.column_names("selection_runs")
