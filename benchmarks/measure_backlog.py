"""What the bounded backlog does on a region's first night, against the generator's truth.

Takes a synthetic region (``fhscreen synth``) whose first delivery has been run through the
nightly job up to scoring (``fhscreen run``), re-plans tonight's referrals with the packaged
(or given) settings and reports:

* the first night's queue (clinic listings + queued) against the horizon's capacity;
* "check a secondary cause first" listings against the backlog's places in the horizon;
* carriers among the first 12 weeks of clinic referrals: the new selection, replayed week by
  week (weekly runs, no new deliveries, so no prospective flow), against the order used
  before the backlog pass (every candidate queued on the first night in rank order, each
  clinic taking its weekly capacity from the head of the queue).

Selections per 1,000 people tested are in the run's ``metrics/pilot_metrics.json``
(``selection``), with the metrics' own definition of tested.

    PYTHONPATH=pipelines python benchmarks/measure_backlog.py --db STORE.duckdb \\
        --truth REGION/ground_truth/truth.parquet --as-of 2026-11-23 [--config region.yaml]

Reads the store read-only; writes nothing.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from fh_screen.config import load_settings
from fh_screen.store import db
from fh_screen.stages.referrals import step as r
from fh_screen.stages.referrals.prospective import read_evidence
from fh_screen.training.labels import truth_labels

WEEKS = 12


def inputs(db_path: Path, as_of: date) -> dict:
    con = db.connect(db_path, read_only=True)
    try:
        return {
            "rules": r._table(con, "rule_results", r.PLAN_RULE_COLUMNS),
            "scores": r._table(con, "model_scores", r.PLAN_SCORE_COLUMNS),
            "patients": con.sql("SELECT patient_id, practice_id, postcode, deceased_date, moved_out_date "
                                "FROM patients").pl(),
            "outcomes": con.sql("SELECT patient_id, outcome_date, outcome FROM clinic_outcomes").pl(),
            "evidence": read_evidence(con, as_of, con.sql("SELECT patient_id FROM patients").pl()["patient_id"]),
        }
    finally:
        con.close()


def replay(data: dict, settings, as_of: date, weeks: int) -> tuple[list[pl.DataFrame], list[dict]]:
    """Weekly runs from ``as_of``: each week's plan and report (events accumulate)."""
    events = r.empty_events()
    plans, reports = [], []
    since = None
    for week in range(weeks):
        day = as_of + timedelta(days=7 * week)
        planned, report = r.plan_referrals(data["rules"], data["scores"], data["patients"], data["outcomes"],
                                           events, settings, day, data["evidence"], since)
        events = pl.concat([events, r.events_frame(planned, day)])
        plans.append(planned.with_columns(pl.lit(week).alias("week")))
        reports.append(report)
        since = day
    return plans, reports


def order_before(data: dict, settings, as_of: date, weeks: int) -> pl.DataFrame:
    """The first ``weeks`` weeks of clinic referrals under the order used before the backlog
    pass: every candidate queued on night 1, served in rank order at each clinic's capacity."""
    sel = settings.selection
    screened = r.screen(r.with_probability(data["rules"], data["scores"]), data["patients"], sel, as_of)
    eligible = screened.filter(pl.col("triggered") & pl.col("exclusion").is_null())
    state = r.ledger_state(r.empty_events(), data["outcomes"], as_of)
    candidates = r.rank_candidates(r.due(eligible, state, sel, as_of).filter(pl.col("kind").is_not_null()))
    placed = r.assign_clinics(candidates, settings.clinics, settings.paediatric_clinic_id, sel)
    capacity = {c.clinic_id: c.weekly_capacity * weeks for c in settings.clinics}
    clinic = placed.filter(pl.col("route") == r.ROUTE_CLINIC).sort("rank")
    head = clinic.with_columns(pl.int_range(1, pl.len() + 1).over("clinic_id").alias("_n")).filter(
        pl.col("_n") <= pl.col("clinic_id").replace_strict(capacity, default=0, return_dtype=pl.Int64)
    )
    return head, placed


def carriers(frame: pl.DataFrame, truth: pl.DataFrame) -> int:
    return int(frame.join(truth, on="patient_id", how="left")["fh_carrier"].fill_null(0).sum())


def measure(db_path: Path, truth_path: Path, as_of: date, config: Path | None) -> dict:
    settings = load_settings(config)
    data = inputs(db_path, as_of)
    truth = truth_labels(truth_path)
    plans, reports = replay(data, settings, as_of, WEEKS)
    night1 = reports[0]["selection"]
    first = plans[0]
    referred = pl.concat([p.filter(pl.col("event").is_in(["listed", "reminder"]) & (pl.col("route") == r.ROUTE_CLINIC))
                          for p in plans])
    before, candidates = order_before(data, settings, as_of, WEEKS)
    horizon_capacity = settings.backlog.horizon_weeks * sum(c.weekly_capacity for c in settings.clinics)
    check_before = candidates.filter(pl.col("route") == r.ROUTE_CHECK)
    check_now = first.filter(pl.col("route") == r.ROUTE_CHECK)
    return {
        "settings": settings.backlog.model_dump() | {"weekly_capacity": {c.clinic_id: c.weekly_capacity
                                                                          for c in settings.clinics}},
        "first_night": {
            "candidates": candidates.height,
            "queue_clinic_listed_plus_queued": int(night1["clinic_listed"] + night1["queued"]),
            "horizon_capacity": horizon_capacity,
            "backlog_places": night1["backlog_places"],
            "expected_prospective_weekly": night1["expected_prospective_weekly"],
            "below_line": night1["below_line"],
            "below_line_expected_carriers": night1["below_line_expected_carriers"],
            "horizon_expected_carriers": night1["horizon_expected_carriers"],
            "weeks_to_clear": night1["weeks_to_clear"],
            "check_first_listed": check_now.height,
            "check_first_listed_carriers": carriers(check_now, truth),
            "check_first_before": check_before.height,
            "check_first_before_carriers": carriers(check_before, truth),
            "queue_before": int(candidates.filter(pl.col("route") == r.ROUTE_CLINIC).height),
        },
        "first_12_weeks_clinic_referrals": {
            "new": {"referrals": referred.height, "carriers": carriers(referred, truth)},
            "before": {"referrals": before.height, "carriers": carriers(before, truth)},
        },
        "backlog_by_week": [rep["selection"]["backlog_size"] for rep in reports],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    print(json.dumps(measure(args.db, args.truth, args.as_of, args.config), indent=1, default=str))


if __name__ == "__main__":
    main()
