"""Prospective flags: which of tonight's candidates have evidence that is new since the last run.

A laboratory comment (the Region Syddanmark practice the Danish plan builds on; FIND trial,
NCT05614219) fires when a new high result arrives, and that steady flow is what a lipid
clinic plans around. Here a candidate is *prospective* when evidence about them arrived
after the last run:

* a lipid result (LDL-C, total cholesterol, HDL-C, triglycerides; cancelled ones excluded),
* a clinic outcome of their own,
* a family-history item recorded for them,
* FH confirmed in a relative (a confirmed clinic outcome, or an FH diagnosis as the cascade
  step reads it), in either direction of a ``relations`` row.

"Arrived" is the run date of the delivery that brought the row (``deliveries.as_of``), so a
result sampled before the last run but delivered after it is new, and a corrected result is
new evidence too. Reminders (a referral with no clinic outcome) and patients already queued
as prospective stay prospective. Everyone else is the *backlog* (``backlog.py``).

On the first run there is no "since": the whole history is the backlog. The selection of the
history is then exactly the calibrated order, and the prospective flow starts with the next
delivery.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl

from fh_screen.store import db

FLOW_PROSPECTIVE, FLOW_BACKLOG = "prospective", "backlog"
# The prospective flow per week is estimated over the last four weeks of dated evidence: long
# enough to smooth a week's noise, short enough to follow a change in testing.
FLOW_WINDOW_WEEKS = 4

EVIDENCE_SCHEMA = {"patient_id": pl.Utf8, "evidence_on": pl.Date, "arrived_on": pl.Date}


def empty_evidence() -> pl.DataFrame:
    return pl.DataFrame(schema=EVIDENCE_SCHEMA)


def read_evidence(con, as_of: date, patient_ids: pl.Series) -> pl.DataFrame:
    """Per patient of ``patient_ids``: ``evidence_on`` (latest clinical date) and ``arrived_on``
    (latest arrival). Only tonight's eligible patients need it (their flow and the clinics'
    expected weekly flow), so a night reads their rows, not the region's lab history."""
    diagnosed = con.execute(db.sql("cascade_fh_diagnosis"), [as_of]).pl()
    con.register("_fh_diagnosed", diagnosed)
    con.register("_evidence_for", pl.DataFrame({"patient_id": patient_ids}, schema={"patient_id": pl.Utf8}))
    try:
        return con.execute(db.sql("referrals_evidence"), {"as_of": as_of}).pl()
    finally:
        con.unregister("_evidence_for")
        con.unregister("_fh_diagnosed")


def last_run(runs: pl.DataFrame, as_of: date) -> date | None:
    """The latest run date before ``as_of`` (``as_of`` column of earlier runs' records)."""
    earlier = runs.filter(pl.col("as_of") < as_of)
    return earlier["as_of"].max() if earlier.height else None


def queued_flows(prior_events: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """``patient_id``, ``_queued_flow``: the flow of each patient whose latest event is ``queued``."""
    ev = prior_events.filter(pl.col("as_of") < as_of)
    if "flow" not in ev.columns:
        ev = ev.with_columns(pl.lit(None, pl.Utf8).alias("flow"))
    latest = ev.sort("as_of").group_by("patient_id").agg(
        pl.col("event").last().alias("_event"), pl.col("flow").last().alias("_queued_flow")
    )
    return latest.filter(pl.col("_event") == "queued").select("patient_id", "_queued_flow")


def with_flow(
    candidates: pl.DataFrame,
    evidence: pl.DataFrame,
    prior_events: pl.DataFrame,
    since: date | None,
    as_of: date,
) -> pl.DataFrame:
    """Add ``evidence_on``, ``arrived_on`` and ``flow`` (prospective / backlog) to the candidates."""
    out = candidates.join(evidence, on="patient_id", how="left").join(
        queued_flows(prior_events, as_of), on="patient_id", how="left"
    )
    new = (pl.col("arrived_on") > pl.lit(since)).fill_null(False) if since is not None else pl.lit(False)
    prospective = (
        (pl.col("kind") == "reminder")
        | (pl.col("_queued_flow") == FLOW_PROSPECTIVE).fill_null(False)
        | new
    )
    return out.with_columns(
        pl.when(prospective).then(pl.lit(FLOW_PROSPECTIVE)).otherwise(pl.lit(FLOW_BACKLOG)).alias("flow")
    ).drop("_queued_flow")


def expected_weekly(eligible: pl.DataFrame, as_of: date) -> dict[str, int]:
    """Expected prospective clinic referrals per week, per clinic.

    ``eligible`` is every selectable patient tonight (listed before or not) with
    ``clinic_id``, ``route`` and ``evidence_on``. Those on the clinic route whose latest
    evidence is dated in the last ``FLOW_WINDOW_WEEKS`` weeks are the flow that a nightly
    run would have flagged as new; their weekly mean, rounded up, is what the backlog must
    leave free.
    """
    start = as_of - timedelta(days=7 * FLOW_WINDOW_WEEKS)
    recent = eligible.filter(
        (pl.col("route") == "refer_lipid_clinic")
        & pl.col("clinic_id").is_not_null()
        & (pl.col("evidence_on") > start)
        & (pl.col("evidence_on") <= as_of)
    ).group_by("clinic_id").len()
    return {c: math.ceil(n / FLOW_WINDOW_WEEKS) for c, n in zip(recent["clinic_id"], recent["len"])}
