"""Prospective flags, the bounded backlog pass, check-first within the horizon and the
expected week of a clinic place (fh_screen.stages.referrals.backlog / prospective)."""

import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.config import BacklogSettings, Clinic, Settings  # noqa: E402
from fh_screen.stages.referrals import prospective  # noqa: E402
from fh_screen.stages.referrals import step as r  # noqa: E402

AS_OF = f.AS_OF
OLD = date(2020, 5, 1)


def cfg(capacity=2, horizon=3, share=1.0, lookback=20) -> Settings:
    clinic = Clinic(clinic_id="A", name="Lipidklinik A", weekly_capacity=capacity, postcodes=["5"])
    return f.settings(clinics=[clinic]).model_copy(update={
        "backlog": BacklogSettings(horizon_weeks=horizon, share=share, lookback_years=lookback)})


def scores(probabilities: dict[str, float]) -> pl.DataFrame:
    return pl.DataFrame({"patient_id": list(probabilities), "probability": list(probabilities.values()),
                         "model_name": "m", "model_version": "1"})


def evidence(rows: dict[str, tuple[date, date]]) -> pl.DataFrame:
    """patient -> (evidence_on, arrived_on)."""
    return pl.DataFrame({"patient_id": list(rows), "evidence_on": [v[0] for v in rows.values()],
                         "arrived_on": [v[1] for v in rows.values()]}, schema=prospective.EVIDENCE_SCHEMA)


def plan(rows, settings, probs=None, ev=None, prior=None, since=None, as_of=AS_OF, outcomes=None):
    probs = probs or {row["patient_id"]: 0.9 - 0.01 * i for i, row in enumerate(rows)}
    return r.plan_referrals(
        f.rules_frame(rows), scores(probs), f.patients_frame(rows),
        outcomes if outcomes is not None else f.outcomes_frame(),
        prior if prior is not None else r.empty_events(), settings, as_of,
        ev if ev is not None else evidence({row["patient_id"]: (OLD, AS_OF) for row in rows}), since,
    )


def events_of(planned):
    return dict(zip(planned["patient_id"], planned["event"]))


def people(n, prefix="p", **over):
    return [f.rule(f"{prefix}{i:02d}", **over) for i in range(n)]


@pytest.mark.parametrize("horizon, share, queued", [(1, 1.0, 0), (3, 1.0, 4), (3, 0.5, 1), (10, 1.0, 18)])
def test_first_night_queues_only_what_fits_the_horizon(horizon, share, queued):
    rows = people(20)
    planned, report = plan(rows, cfg(capacity=2, horizon=horizon, share=share))
    events = list(planned["event"])
    assert events.count("listed") == 2 and events.count("queued") == queued
    assert events.count("listed") + events.count("queued") <= horizon * 2
    # everyone else is below the line: eligible, but no event and no list
    assert report["selection"]["below_line"] == 20 - 2 - queued
    assert set(planned["patient_id"]) == {f"p{i:02d}" for i in range(2 + queued)}  # the head of the order


def test_below_the_line_re_enters_in_order_when_places_free_up():
    rows = people(8)
    settings = cfg(capacity=2, horizon=2)
    first, _ = plan(rows, settings)
    assert events_of(first) == {"p00": "listed", "p01": "listed", "p02": "queued", "p03": "queued"}
    prior = r.events_frame(first, AS_OF)
    week = AS_OF + timedelta(days=7)
    second, report = plan(rows, settings, prior=prior, since=AS_OF, as_of=week)
    assert events_of(second) == {"p02": "listed", "p03": "listed", "p04": "queued", "p05": "queued"}
    assert report["selection"]["below_line"] == 2


def test_the_expected_prospective_flow_keeps_its_places_in_the_horizon():
    rows = people(20)
    recent = {row["patient_id"]: (OLD, AS_OF) for row in rows}
    # 8 eligible clinic patients with evidence dated in the last 4 weeks: 2 a week expected
    recent.update({f"p{i:02d}": (AS_OF - timedelta(days=3 * (i - 12)), AS_OF) for i in range(12, 20)})
    planned, report = plan(rows, cfg(capacity=3, horizon=4), ev=evidence(recent))
    by_clinic = report["selection_by_clinic"][0]
    assert by_clinic["expected_prospective_weekly"] == 2
    # this week's 3 places + 3 later weeks x (3 - 2) = 6 places for the backlog
    assert by_clinic["backlog_places"] == 6
    assert list(planned["event"]).count("queued") == 3


def test_prospective_flags_are_taken_first_whatever_their_rank():
    rows = people(6)
    probs = {f"p{i:02d}": 0.9 - 0.1 * i for i in range(6)}
    ev = evidence({**{f"p{i:02d}": (OLD, AS_OF - timedelta(days=7)) for i in range(5)},
                   "p05": (AS_OF - timedelta(days=1), AS_OF)})   # lowest rank, new since the last run
    planned, report = plan(rows, cfg(capacity=2, horizon=2), probs=probs, ev=ev, since=AS_OF - timedelta(days=7))
    flows = dict(zip(planned["patient_id"], planned["flow"]))
    assert events_of(planned)["p05"] == "listed" and flows["p05"] == "prospective"
    assert events_of(planned)["p00"] == "listed" and events_of(planned)["p01"] == "queued"
    assert report["selection"]["prospective_selected"] == 1


def test_first_run_has_no_prospective_flags():
    rows = people(3)
    ev = evidence({row["patient_id"]: (AS_OF, AS_OF) for row in rows})
    planned, report = plan(rows, cfg(), ev=ev, since=None)
    assert set(planned["flow"]) == {"backlog"} and report["selection"]["prospective_selected"] == 0


def test_evidence_that_arrived_before_the_last_run_is_not_new():
    rows = people(2)
    since = AS_OF - timedelta(days=7)
    ev = evidence({"p00": (AS_OF - timedelta(days=10), since), "p01": (AS_OF - timedelta(days=10), AS_OF)})
    planned, _ = plan(rows, cfg(), ev=ev, since=since)
    # p01's result was sampled before the last run but delivered after it: new evidence
    assert dict(zip(planned["patient_id"], planned["flow"])) == {"p00": "backlog", "p01": "prospective"}


def test_check_first_is_listed_only_within_the_horizon():
    rows = people(10)
    rows[1] = f.rule("p01", route="check_secondary_cause_first", secondary_cause="TSH 12 mIU/L")
    rows[8] = f.rule("p08", route="check_secondary_cause_first", secondary_cause="TSH 12 mIU/L")
    planned, report = plan(rows, cfg(capacity=2, horizon=2))   # 4 places in the horizon
    assert events_of(planned) == {"p00": "listed", "p01": "listed", "p02": "listed", "p03": "queued"}
    assert "p08" not in events_of(planned)    # held: on no list, no event
    assert report["selection"]["check_first_listed"] == 1 and report["selection"]["check_first_held"] == 1
    assert report["selection"]["check_first_backlog_listed"] <= report["selection"]["backlog_places"]


@pytest.mark.parametrize("days_older, line", [(-1, "within"), (0, "within"), (1, "outside_lookback")])
def test_look_back_at_below_and_above_the_cut_off(days_older, line):
    rows = people(1)
    oldest = AS_OF - timedelta(days=round(365.25 * 5))
    ev = evidence({"p00": (oldest - timedelta(days=days_older), AS_OF)})
    planned, report = plan(rows, cfg(lookback=5), ev=ev)
    assert (planned.height == 1) == (line == "within")
    assert report["selection"]["outside_lookback"] == (line == "outside_lookback")


def test_slot_weeks_name_the_expected_week_or_not_yet_scheduled():
    rows = people(6)
    rows[5] = f.rule("p05", route="check_secondary_cause_first", secondary_cause="TSH 12 mIU/L")
    planned, _ = plan(rows, cfg(capacity=2, horizon=3))
    slots = dict(zip(planned["patient_id"], planned["slot_week"]))
    week = timedelta(days=7)
    assert slots == {"p00": AS_OF, "p01": AS_OF, "p02": AS_OF + week, "p03": AS_OF + week,
                     "p04": AS_OF + 2 * week, "p05": None}


def test_no_week_is_promised_when_the_prospective_flow_needs_every_place():
    rows = people(12)
    ev = {row["patient_id"]: (AS_OF - timedelta(days=1), AS_OF) for row in rows}   # 12 recent: 3 a week
    planned, report = plan(rows, cfg(capacity=3, horizon=2), ev=evidence(ev))
    queued = planned.filter(pl.col("event") == "queued")
    assert report["selection"]["backlog_weekly_places"] == 0 and report["selection"]["weeks_to_clear"] is None
    assert queued.height == 0 or queued["slot_week"].is_null().all()


def test_reminders_are_prospective_and_never_held():
    rows = people(6)
    listed_long_ago = AS_OF - timedelta(days=200)
    prior = r.empty_events().vstack(pl.DataFrame([{
        "as_of": listed_long_ago, "patient_id": "p05", "event": "listed", "practice_id": "P1", "clinic_id": "A",
        "rank": 1, "probability": 0.4, "dlcn_points": 7, "dlcn_category": "probable",
        "route": "refer_lipid_clinic", "flow": "backlog", "slot_week": listed_long_ago}], schema=r.EVENT_SCHEMA))
    since = AS_OF - timedelta(days=7)
    ev = evidence({row["patient_id"]: (OLD, since) for row in rows})        # nothing new since the last run
    planned, _ = plan(rows, cfg(capacity=1, horizon=1), prior=prior, ev=ev, since=since)
    assert events_of(planned) == {"p05": "reminder"}      # the only place this week, ahead of higher ranks


def test_without_clinic_capacity_nobody_is_held():
    rows = people(30)
    planned, report = plan(rows, f.settings(clinics=[]))
    assert planned.height == 30 and report["selection"]["below_line"] == 0


def test_a_queued_patient_keeps_the_place_when_a_prospective_surge_takes_the_horizon():
    rows = people(10)
    settings = cfg(capacity=2, horizon=3)
    first, _ = plan(rows, settings)
    assert [e for e in first["event"]].count("queued") == 4
    week = AS_OF + timedelta(days=7)
    surge = [f.rule(f"n{i}") for i in range(6)]
    ev = {row["patient_id"]: (OLD, AS_OF) for row in rows} | {row["patient_id"]: (week, week) for row in surge}
    probs = {row["patient_id"]: 0.9 - 0.01 * i for i, row in enumerate(rows)} | {row["patient_id"]: 0.2 for row in surge}
    second, report = plan(rows + surge, settings, probs=probs, ev=evidence(ev), prior=r.events_frame(first, AS_OF),
                          since=AS_OF, as_of=week)
    tonight = events_of(second)
    assert report["selection_by_clinic"][0]["backlog_places"] == 0          # the surge needs the horizon
    assert all(tonight[f"p{i:02d}"] == "queued" for i in range(2, 6))         # yet the queued keep their place
    assert "p06" not in tonight                                               # nobody new from the backlog
