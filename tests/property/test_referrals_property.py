"""Invariants of the referral ledger over random sequences of nights (Hypothesis)."""

import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.stages.referrals import step as r# noqa: E402
from fh_screen.config import Clinic# noqa: E402

START = date(2026, 1, 5)
patient = st.fixed_dictionaries({
    "dlcn_points": st.integers(0, 12),
    "lab_flag": st.booleans(),
    "check_first": st.booleans(),
    "child": st.booleans(),
    "excluded": st.sampled_from([None, None, None, "deceased", "already_diagnosed"]),
    "postcode": st.sampled_from(["5000", "7000", "1000"]),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    people=st.lists(patient, min_size=1, max_size=25),
    gaps=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    capacity=st.integers(0, 4),
    outcome_share=st.integers(0, 3),
)
def test_capacity_suppression_and_exclusions_hold_every_night(people, gaps, capacity, outcome_share):
    cfg = f.settings(clinics=[
        Clinic(clinic_id="A", name="A", weekly_capacity=capacity, postcodes=["5"]),
        Clinic(clinic_id="B", name="B", weekly_capacity=capacity, postcodes=["7"]),
        Clinic(clinic_id="K", name="K", weekly_capacity=1, paediatric=True),
    ], reminder_months=1, suppression_months=2)
    rows = [
        f.rule(f"p{i}", dlcn_points=p["dlcn_points"], lab_flag=p["lab_flag"], excluded_reason=p["excluded"],
               age_years=10 if p["child"] else 50, is_child=p["child"],
               route="check_secondary_cause_first" if p["check_first"] else "refer_lipid_clinic")
        for i, p in enumerate(people)
    ]
    patients = f.patients_frame(rows, **{f"p{i}": {"postcode": p["postcode"]} for i, p in enumerate(people)})
    outcomes = f.outcomes_frame([(f"p{i}", START + timedelta(days=3), "pending")
                                 for i in range(len(people)) if outcome_share and i % (outcome_share + 1) == 0])
    history = r.empty_events()
    day = START
    for gap in gaps:
        planned, _ = r.plan_referrals(f.rules_frame(rows), None, patients, outcomes, history, cfg, day)
        history = pl.concat([history, r.events_frame(planned, day)])
        day += timedelta(days=gap)

    shown = history.filter(pl.col("event").is_in(["listed", "reminder"]))
    excluded = {f"p{i}" for i, p in enumerate(people) if p["excluded"]}
    assert not set(history["patient_id"]) & excluded
    # one row per patient per night
    assert history.group_by(["as_of", "patient_id"]).len()["len"].max() in (None, 1)
    # never listed again within the reminder window (one month, i.e. at least 28 days)
    for _, group in shown.group_by("patient_id"):
        dates = sorted(group["as_of"].to_list())
        assert all((b - a).days >= 28 for a, b in zip(dates, dates[1:]))
    # overflow is carried, never dropped: whoever waits tonight is back the next night
    nights = sorted(history["as_of"].unique().to_list())
    for tonight, tomorrow in zip(nights, nights[1:]):
        waiting = set(history.filter((pl.col("as_of") == tonight) & (pl.col("event") == "queued"))["patient_id"])
        assert waiting <= set(history.filter(pl.col("as_of") == tomorrow)["patient_id"])
    # clinic places: referrals in any rolling 7 days never exceed the weekly capacity
    clinic = shown.filter(pl.col("route") == r.ROUTE_CLINIC)
    for night in clinic["as_of"].unique().to_list():
        window = clinic.filter(pl.col("as_of").is_between(night - timedelta(days=6), night))
        for cid, n in window.group_by("clinic_id").len().iter_rows():
            assert n <= (1 if cid == "K" else capacity)
