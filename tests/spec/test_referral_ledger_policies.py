"""A patient's referral state before tonight (``referrals.step.ledger_state``), one table row
per case: what counts as shown on a worklist, which reminders belong to the current cycle,
since when a patient has waited in the queue, and which clinic outcome answers the cycle.
Dates are tested the day before, on and after each boundary (the cycle's listing night and
the run date)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from fh_screen.stages.referrals.backlog import backlog_clearance
from fh_screen.stages.referrals.step import ledger_state

AS_OF = date(2026, 6, 1)
D = [date(2026, 1, 5) + timedelta(weeks=k) for k in range(8)]
DAY = timedelta(days=1)


def _state(events: list[tuple[date, str]], outcomes: list[tuple[date, str]] = ()) -> dict:
    ev = pl.DataFrame({"patient_id": ["P1"] * len(events), "as_of": [d for d, _ in events],
                       "event": [e for _, e in events]}, schema={"patient_id": pl.Utf8, "as_of": pl.Date, "event": pl.Utf8})
    out = pl.DataFrame({"patient_id": ["P1"] * len(outcomes), "outcome_date": [d for d, _ in outcomes],
                        "outcome": [o for _, o in outcomes]},
                       schema={"patient_id": pl.Utf8, "outcome_date": pl.Date, "outcome": pl.Utf8})
    rows = ledger_state(ev, out, AS_OF).to_dicts()
    return rows[0] if rows else {}


@pytest.mark.parametrize(
    "events, expected",
    [
        ([(D[0], "listed"), (D[2], "reminder")], {"first_listed_on": D[0], "last_listed_on": D[2], "times_listed": 2}),
        ([(D[0], "queued"), (D[1], "listed")], {"first_listed_on": D[1], "last_listed_on": D[1], "times_listed": 1}),
        ([(D[0], "queued")], {"first_listed_on": None, "last_listed_on": None, "times_listed": 0}),
        ([(AS_OF, "listed")], {}),  # tonight's own events are not history
        ([(AS_OF - DAY, "listed")], {"first_listed_on": AS_OF - DAY, "last_listed_on": AS_OF - DAY, "times_listed": 1}),
    ],
)
def test_shown_on_a_worklist(events, expected):
    state = _state(events)
    assert {k: state.get(k) for k in expected} == expected


@pytest.mark.parametrize(
    "events, expected_cycle, expected_reminders",
    [
        ([(D[0], "listed"), (D[1], "reminder"), (D[2], "reminder")], D[0], 2),
        ([(D[0], "listed"), (D[1], "reminder"), (D[3], "listed"), (D[4], "reminder")], D[3], 1),  # a new cycle
        ([(D[0], "listed"), (D[0], "reminder")], D[0], 0),  # on the listing night: not after it
        ([(D[0], "listed")], D[0], 0),
        ([(D[0], "reminder")], None, 0),  # no listing: no cycle
    ],
)
def test_reminders_count_after_the_cycle_start(events, expected_cycle, expected_reminders):
    state = _state(events)
    assert (state["cycle_start"], state["reminders_in_cycle"]) == (expected_cycle, expected_reminders)


@pytest.mark.parametrize(
    "events, expected",
    [
        ([(D[0], "queued"), (D[1], "queued")], D[0]),
        ([(D[0], "queued"), (D[1], "listed"), (D[2], "queued"), (D[3], "queued")], D[2]),  # since the last listing
        ([(D[0], "queued"), (D[1], "listed")], None),  # listed last: not waiting
        ([(D[0], "listed"), (D[1], "reminder")], None),
    ],
)
def test_queued_since(events, expected):
    assert _state(events)["queued_since"] == expected


@pytest.mark.parametrize(
    "outcomes, expected",
    [
        ([(D[2] - DAY, "not_fh")], None),  # before the cycle's listing
        ([(D[2], "not_fh")], "not_fh"),  # on it
        ([(D[2] + DAY, "fh_clinical")], "fh_clinical"),
        ([(D[3], "did_not_attend"), (D[5], "fh_genetic")], "fh_genetic"),  # the latest
        ([(AS_OF, "fh_genetic")], "fh_genetic"),  # on the run date
        ([(AS_OF + DAY, "fh_genetic")], None),  # after it
        ([], None),
    ],
)
def test_outcome_in_cycle(outcomes, expected):
    state = _state([(D[0], "listed"), (D[2], "listed")], outcomes)
    assert state["outcome_in_cycle"] == expected


@pytest.mark.parametrize(
    "capacity, expected_prospective, queued, below, places, weeks",
    [
        (10, 9, 4, 6, 1, 10.0),  # one place a week left for the backlog
        (10, 10, 4, 6, 0, None),  # none left: no date to clear
        (10, 11, 4, 6, 0, None),  # more expected than capacity: still none
        (10, 7, 4, 6, 3, 3.3),  # one decimal
        (10, 0, 0, 0, 10, 0.0),  # no backlog
        (None, 0, 3, 0, 0, None),  # candidates without a clinic
    ],
)
def test_backlog_clearance(capacity, expected_prospective, queued, below, places, weeks):
    frame = pl.DataFrame({"weekly_capacity": [capacity], "expected_prospective_weekly": [expected_prospective],
                          "backlog_queued": [queued], "below_line": [below]}, schema={
        "weekly_capacity": pl.Int64, "expected_prospective_weekly": pl.Int64, "backlog_queued": pl.Int64,
        "below_line": pl.Int64})
    row = backlog_clearance(frame).row(0, named=True)
    assert (row["backlog_size"], row["backlog_weekly_places"], row["weeks_to_clear"]) == (queued + below, places, weeks)
