"""The ledger across nights: listed once, overflow carried over, reminders, suppression."""

import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.stages.referrals import step as r# noqa: E402
from fh_screen.config import Clinic# noqa: E402

D = date(2026, 1, 15)


def cfg(capacity=50, **selection):
    return f.settings(clinics=[Clinic(clinic_id="A", name="A", weekly_capacity=capacity, postcodes=["5"])], **selection)


def night(rows, history, as_of, settings, outcomes=None, patients=None):
    planned, report = r.plan_referrals(
        f.rules_frame(rows), None, patients if patients is not None else f.patients_frame(rows),
        outcomes if outcomes is not None else f.outcomes_frame(), history, settings, as_of,
    )
    return planned, pl.concat([history, r.events_frame(planned, as_of)]), report


def events(planned):
    return dict(zip(planned["patient_id"], planned["event"]))


def test_two_consecutive_nights_nobody_listed_twice_and_overflow_carried_to_the_next_lists():
    settings = cfg(capacity=2)
    rows = [f.rule(f"p{i}", dlcn_points=20 - i) for i in range(5)]
    rows.append(f.rule("check", route="check_secondary_cause_first", secondary_cause="TSH 14", dlcn_points=3))
    first, history, _ = night(rows, r.empty_events(), D, settings)
    assert events(first) == {"p0": "listed", "p1": "listed", "p2": "queued", "p3": "queued", "p4": "queued",
                             "check": "listed"}

    rows.append(f.rule("urgent", dlcn_points=30))  # new tonight and more urgent than everybody queued
    second, history, report = night(rows, history, D + timedelta(days=1), settings)
    # the week's places are used: everybody waiting is queued again, nobody listed twice
    assert events(second) == {"p2": "queued", "p3": "queued", "p4": "queued", "urgent": "queued"}
    assert report["not_due"] == 3  # p0, p1 and check are on an earlier list

    week_later, history, _ = night(rows, history, D + timedelta(days=7), settings)
    # places free again: the queue from the first night goes first, then by rank
    assert events(week_later) == {"p2": "listed", "p3": "listed", "p4": "queued", "urgent": "queued"}

    shown = history.filter(pl.col("event").is_in(["listed", "reminder"]))
    assert shown.group_by("patient_id").len()["len"].max() == 1


def test_the_queue_is_served_oldest_first_then_by_rank():
    settings = cfg(capacity=1)
    rows = [f.rule("old_low", dlcn_points=6)]
    rows_first = rows + [f.rule("taken", dlcn_points=12)]
    _, history, _ = night(rows_first, r.empty_events(), D, settings)           # taken listed, old_low queued
    rows_later = rows_first + [f.rule("new_high", dlcn_points=11)]
    _, history, _ = night(rows_later, history, D + timedelta(days=3), settings)  # both queued
    planned, _, _ = night(rows_later, history, D + timedelta(days=7), settings)
    assert events(planned) == {"old_low": "listed", "new_high": "queued"}
    assert dict(zip(planned["patient_id"], planned["rank"])) == {"new_high": 1, "old_low": 2}


def test_a_queued_patient_who_is_no_longer_eligible_leaves_the_queue():
    settings = cfg(capacity=1)
    rows = [f.rule("a", dlcn_points=9), f.rule("b", dlcn_points=8)]
    _, history, _ = night(rows, r.empty_events(), D, settings)
    rows[1] = f.rule("b", dlcn_points=8, excluded_reason="deceased")
    planned, _, _ = night(rows, history, D + timedelta(days=7), settings)
    assert planned.height == 0


def _listed_on(day, settings, rows):
    _, history, _ = night(rows, r.empty_events(), day, settings)
    return history


@pytest.mark.parametrize("days_before_due, kind", [(1, None), (0, "reminder")])
def test_reminder_when_no_clinic_outcome_within_reminder_months(days_before_due, kind):
    settings = cfg(reminder_months=6)
    rows = [f.rule("a")]
    history = _listed_on(D, settings, rows)
    when = date(2026, 7, 15) - timedelta(days=days_before_due)
    planned, _, _ = night(rows, history, when, settings)
    assert events(planned).get("a") == kind


@pytest.mark.parametrize("outcome", ["pending", "fh_genetic", "not_fh", "did_not_attend", "declined"])
def test_any_clinic_outcome_after_listing_stops_the_reminder(outcome):
    settings = cfg(reminder_months=6)
    rows = [f.rule("a")]
    history = _listed_on(D, settings, rows)
    outcomes = f.outcomes_frame([("a", D + timedelta(days=20), outcome)])
    planned, _, _ = night(rows, history, date(2026, 8, 1), settings, outcomes=outcomes)
    assert planned.height == 0


def test_an_outcome_from_before_the_listing_does_not_stop_the_reminder():
    settings = cfg(reminder_months=6)
    rows = [f.rule("a")]
    history = _listed_on(D, settings, rows)
    outcomes = f.outcomes_frame([("a", D - timedelta(days=1), "did_not_attend")])
    planned, _, _ = night(rows, history, date(2026, 7, 15), settings, outcomes=outcomes)
    assert events(planned) == {"a": "reminder"}


def test_reminders_are_capped_then_a_new_cycle_after_the_suppression_window():
    settings = cfg(reminder_months=6, suppression_months=12, max_reminders=1)
    rows = [f.rule("a")]
    history = _listed_on(D, settings, rows)
    first, history, _ = night(rows, history, date(2026, 7, 15), settings)
    assert events(first) == {"a": "reminder"}
    quiet, history, _ = night(rows, history, date(2027, 1, 15), settings)   # 6 months after the reminder
    assert quiet.height == 0
    quiet, history, _ = night(rows, history, date(2027, 7, 14), settings)   # 1 day short of 12 months
    assert quiet.height == 0
    again, history, _ = night(rows, history, date(2027, 7, 15), settings)
    assert events(again) == {"a": "listed"}


@pytest.mark.parametrize(
    "outcome, months_later, relisted",
    [("did_not_attend", 11, False), ("did_not_attend", 12, True), ("declined", 12, True),
     ("not_fh", 24, False), ("pending", 24, False)],
)
def test_after_an_outcome_only_non_attendance_or_declining_reopens_after_the_window(outcome, months_later, relisted):
    settings = cfg(suppression_months=12)
    rows = [f.rule("a")]
    history = _listed_on(D, settings, rows)
    outcomes = f.outcomes_frame([("a", D + timedelta(days=30), outcome)])
    when = date(D.year + (D.month - 1 + months_later) // 12, (D.month - 1 + months_later) % 12 + 1, D.day)
    planned, _, _ = night(rows, history, when, settings, outcomes=outcomes)
    assert (events(planned) == {"a": "listed"}) is relisted


def test_reminder_months_zero_is_not_the_same_night():
    # a rerun of the listing night never turns into a reminder: events of tonight are excluded
    settings = cfg(reminder_months=0)
    rows = [f.rule("a")]
    history = _listed_on(D, settings, rows)
    planned, _, _ = night(rows, history, D, settings)
    assert events(planned) == {"a": "listed"}


def test_ledger_from_events_statuses():
    rows = [f.rule("a", dlcn_points=9), f.rule("b", dlcn_points=8), f.rule("c", dlcn_points=7)]
    _, history, _ = night(rows, r.empty_events(), D, cfg(capacity=1))                    # a listed; b, c queued
    _, history, _ = night(rows, history, D + timedelta(days=7), cfg(capacity=2))         # b, c listed
    rows.append(f.rule("d", dlcn_points=6))
    _, history, _ = night(rows, history, date(2026, 7, 15), cfg(capacity=1))             # a reminder; d queued
    outcomes = f.outcomes_frame([("b", date(2026, 1, 30), "fh_genetic")])
    ledger = r.ledger_from_events(history, outcomes)
    by_id = {row["patient_id"]: row for row in ledger.iter_rows(named=True)}
    assert by_id["a"]["status"] == "reminded" and by_id["a"]["times_listed"] == 2
    assert by_id["a"]["first_listed_on"] == D and by_id["a"]["last_listed_on"] == date(2026, 7, 15)
    assert by_id["b"]["status"] == "outcome_received" and by_id["b"]["first_listed_on"] == D + timedelta(days=7)
    assert by_id["c"]["status"] == "listed" and by_id["c"]["clinic_id"] == "A"
    assert by_id["d"]["status"] == "queued" and by_id["d"]["first_listed_on"] is None
    assert by_id["d"]["times_listed"] == 0
