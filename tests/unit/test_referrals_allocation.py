"""Clinic catchment, the paediatric route, weekly capacity and the overflow queue."""

import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.stages.referrals import step as r# noqa: E402
from fh_screen.config import Clinic# noqa: E402

AS_OF = f.AS_OF


def plan(rows, cfg, patients=None, prior=None, as_of=AS_OF):
    planned, report = r.plan_referrals(
        f.rules_frame(rows), None, patients if patients is not None else f.patients_frame(rows),
        f.outcomes_frame(), prior if prior is not None else r.empty_events(), cfg, as_of,
    )
    return planned, report


def clinic_of(planned):
    return dict(zip(planned["patient_id"], planned["clinic_id"]))


def events_of(planned):
    return dict(zip(planned["patient_id"], planned["event"]))


CLINICS = [
    Clinic(clinic_id="A", name="A", weekly_capacity=50, postcodes=["5"]),
    Clinic(clinic_id="B", name="B", weekly_capacity=50, postcodes=["50"], practices=["P-B"]),
    Clinic(clinic_id="C", name="C", weekly_capacity=50, practices=["P-B", "P-C"]),
    Clinic(clinic_id="KIDS", name="Kids", weekly_capacity=50, paediatric=True, postcodes=["9"]),
]


def test_catchment_practice_list_first_then_longest_postcode_prefix_then_fallback():
    rows = [
        f.rule("by_practice", practice_id="P-C"),          # practice list wins over postcode 5...
        f.rule("first_listing_clinic", practice_id="P-B"),  # listed by B and C: config order -> B
        f.rule("longest_prefix", practice_id="P0"),         # 5012 matches "5" (A) and "50" (B) -> B
        f.rule("short_prefix", practice_id="P0"),           # 5999 matches only "5" -> A
        f.rule("nowhere", practice_id="P0"),                # 1000 matches nothing -> first adult clinic
    ]
    people = f.patients_frame(rows, by_practice={"postcode": "5999"}, longest_prefix={"postcode": "5012"},
                              short_prefix={"postcode": "5999"}, nowhere={"postcode": "1000"})
    cfg = f.settings(clinics=CLINICS)
    planned, report = plan(rows, cfg, patients=people)
    assert clinic_of(planned) == {
        "by_practice": "C", "first_listing_clinic": "B", "longest_prefix": "B", "short_prefix": "A", "nowhere": "A",
    }
    assert dict(zip(planned["patient_id"], planned["catchment"]))["nowhere"] == "fallback"
    assert report["catchment"] == {"fallback": 1, "postcode": 2, "practice": 2}


def test_configured_fallback_clinic_is_used_for_unmatched_patients():
    rows = [f.rule("nowhere")]
    people = f.patients_frame(rows, nowhere={"postcode": None})
    planned, _ = plan(rows, f.settings(clinics=CLINICS, fallback_clinic_id="C"), patients=people)
    assert clinic_of(planned) == {"nowhere": "C"}


def test_paediatric_clinics_are_not_adult_catchments():
    rows = [f.rule("adult_in_9", age_years=40)]
    people = f.patients_frame(rows, adult_in_9={"postcode": "9100"})
    planned, _ = plan(rows, f.settings(clinics=CLINICS), patients=people)
    assert clinic_of(planned) == {"adult_in_9": "A"}


# postcode 5000: the longest prefix "50" -> B
@pytest.mark.parametrize("age, clinic", [(17, "KIDS"), (18, "B"), (19, "B")])
def test_children_under_adult_age_go_to_the_paediatric_clinic(age, clinic):
    rows = [f.rule("x", age_years=age, is_child=age < 18)]
    planned, report = plan(rows, f.settings(clinics=CLINICS))
    assert clinic_of(planned) == {"x": clinic}
    assert report["children_listed"] == (1 if age < 18 else 0)


def test_without_a_paediatric_clinic_children_use_the_adult_catchment():
    adult_only = [c for c in CLINICS if not c.paediatric]
    planned, _ = plan([f.rule("kid", age_years=9, is_child=True)], f.settings(clinics=adult_only))
    assert clinic_of(planned) == {"kid": "B"}


@pytest.mark.parametrize("n, listed, queued", [(2, 2, 0), (3, 3, 0), (4, 3, 1), (6, 3, 3)])
def test_weekly_capacity_is_respected_and_overflow_is_queued_not_dropped(n, listed, queued):
    cfg = f.settings(clinics=[Clinic(clinic_id="A", name="A", weekly_capacity=3, postcodes=["5"])])
    rows = [f.rule(f"p{i}", dlcn_points=20 - i) for i in range(n)]
    planned, report = plan(rows, cfg)
    events = planned["event"].to_list()
    assert events.count("listed") == listed and events.count("queued") == queued
    assert planned.height == n  # nobody dropped
    # the most urgent get the places
    assert planned.filter(pl.col("event") == "listed")["rank"].max() == listed
    assert report["clinics"]["A"] == {"weekly_capacity": 3, "used_earlier_in_week": 0,
                                      "referred_tonight": listed, "queued": queued}


def test_check_first_patients_are_listed_without_using_clinic_places():
    cfg = f.settings(clinics=[Clinic(clinic_id="A", name="A", weekly_capacity=1, postcodes=["5"])])
    rows = [f.rule(f"check{i}", route="check_secondary_cause_first", secondary_cause="TSH 12", dlcn_points=20)
            for i in range(3)] + [f.rule("refer", dlcn_points=6)]
    planned, _ = plan(rows, cfg)
    assert set(events_of(planned).values()) == {"listed"}
    assert planned.filter(pl.col("route") == r.ROUTE_CHECK)["clinic_id"].to_list() == ["A"] * 3


def test_no_clinics_configured_lists_everyone_without_a_clinic():
    rows = [f.rule(f"p{i}") for i in range(5)]
    planned, _ = plan(rows, f.settings(clinics=[]))
    assert set(events_of(planned).values()) == {"listed"}
    assert planned["clinic_id"].null_count() == 5


def _prior(as_of, n, clinic="A", event="listed", route=r.ROUTE_CLINIC):
    return pl.DataFrame(
        [{"as_of": as_of, "patient_id": f"old{i}", "event": event, "practice_id": "P1", "clinic_id": clinic,
          "rank": i + 1, "probability": None, "dlcn_points": 7, "dlcn_category": "probable", "route": route}
         for i in range(n)],
        schema=r.EVENT_SCHEMA, orient="row",
    )


@pytest.mark.parametrize("days_ago, counted", [(1, True), (6, True), (7, False)])
def test_referrals_earlier_in_the_rolling_week_use_capacity(days_ago, counted):
    cfg = f.settings(clinics=[Clinic(clinic_id="A", name="A", weekly_capacity=3, postcodes=["5"])])
    prior = _prior(AS_OF - timedelta(days=days_ago), 2)
    planned, report = plan([f.rule("p0"), f.rule("p1")], cfg, prior=prior)
    assert report["clinics"]["A"]["used_earlier_in_week"] == (2 if counted else 0)
    assert planned["event"].to_list().count("listed") == (1 if counted else 2)


def test_queued_and_check_first_events_do_not_use_capacity():
    cfg = f.settings(clinics=[Clinic(clinic_id="A", name="A", weekly_capacity=2, postcodes=["5"])])
    prior = pl.concat([_prior(AS_OF - timedelta(days=1), 3, event="queued"),
                       _prior(AS_OF - timedelta(days=1), 3, route=r.ROUTE_CHECK)])
    _, report = plan([f.rule("p0")], cfg, prior=prior)
    assert report["clinics"]["A"]["used_earlier_in_week"] == 0


def test_each_clinic_has_its_own_capacity():
    cfg = f.settings(clinics=[Clinic(clinic_id="A", name="A", weekly_capacity=1, postcodes=["5"]),
                              Clinic(clinic_id="B", name="B", weekly_capacity=1, postcodes=["7"])])
    rows = [f.rule("a1"), f.rule("a2"), f.rule("b1")]
    people = f.patients_frame(rows, b1={"postcode": "7000"})
    planned, _ = plan(rows, cfg, patients=people)
    assert events_of(planned) == {"a1": "listed", "a2": "queued", "b1": "listed"}
