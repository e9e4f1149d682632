"""Eight weekly runs with a steady prospective flow and clinic outcomes: the backlog shrinks at
the places a week the prospective flow leaves, and the prospective flags are taken first."""

import sys
from datetime import timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.config import BacklogSettings, Clinic  # noqa: E402
from fh_screen.stages.referrals import prospective  # noqa: E402
from fh_screen.stages.referrals import step as r  # noqa: E402

AS_OF = f.AS_OF
WEEKS = 8
CAPACITY = 4          # clinic places a week
NEW_PER_WEEK = 2      # prospective flags a week, each ranked below every backlog patient
HORIZON = 3
BACKLOG = 30
OUTCOMES = ("fh_genetic", "not_fh", "did_not_attend")


def test_eight_weekly_runs_shrink_the_backlog_at_the_configured_rate_and_take_prospective_first():
    clinic = Clinic(clinic_id="A", name="Lipidklinik A", weekly_capacity=CAPACITY, postcodes=["5"])
    settings = f.settings(clinics=[clinic]).model_copy(
        update={"backlog": BacklogSettings(horizon_weeks=HORIZON, share=1.0, lookback_years=20)})
    rows = [f.rule(f"b{i:02d}") for i in range(BACKLOG)]
    probs = {f"b{i:02d}": 0.9 - 0.01 * i for i in range(BACKLOG)}
    ev = {f"b{i:02d}": (AS_OF - timedelta(days=900), AS_OF) for i in range(BACKLOG)}
    events, outcomes = r.empty_events(), []
    since, sizes, backlog_listed = None, [], []
    for week in range(WEEKS):
        day = AS_OF + timedelta(days=7 * week)
        if week:       # this week's new high results, delivered tonight
            for k in range(NEW_PER_WEEK):
                pid = f"n{week}{k}"
                rows.append(f.rule(pid))
                probs[pid] = 0.25
                ev[pid] = (day - timedelta(days=1), day)
        evidence = pl.DataFrame([(p, e, a) for p, (e, a) in ev.items()], schema=prospective.EVIDENCE_SCHEMA,
                                orient="row")
        scores = pl.DataFrame({"patient_id": list(probs), "probability": list(probs.values()),
                               "model_name": "m", "model_version": "1"})
        planned, report = r.plan_referrals(
            f.rules_frame(rows), scores, f.patients_frame(rows), f.outcomes_frame(outcomes), events,
            settings, day, evidence, since)
        tonight = dict(zip(planned["patient_id"], planned["event"]))
        listed = [p for p, e in tonight.items() if e == "listed"]

        # prospective flags are listed the week they arrive, although every backlog patient outranks them
        assert all(tonight.get(f"n{week}{k}") == "listed" for k in range(NEW_PER_WEEK) if week)
        # the queue never promises more than the horizon's places
        assert len(tonight) <= HORIZON * CAPACITY
        # nobody is listed twice: the clinic's outcomes end the referral cycle
        assert not set(listed) & set(events.filter(pl.col("event") == "listed")["patient_id"])

        sizes.append(report["selection"]["backlog_size"])
        backlog_listed += [p for p in listed if p.startswith("b")]
        events = pl.concat([events, r.events_frame(planned, day)])
        outcomes += [(p, day + timedelta(days=5), OUTCOMES[i % 3]) for i, p in enumerate(listed)]
        since = day

    # first night: no prospective flow yet, the backlog takes all 4 places; after that the
    # backlog shrinks by the places a week the prospective flow leaves: 4 - 2 = 2
    assert sizes == [BACKLOG - CAPACITY - 2 * w for w in range(WEEKS)]
    # the backlog was served in its calibrated order
    assert backlog_listed == [f"b{i:02d}" for i in range(len(backlog_listed))]
    # below the line means no ledger event at all
    assert not events.filter(pl.col("patient_id") == f"b{BACKLOG - 1}").height
