"""A cascade relative's status and the evidence behind it (``fh_screen.stages.cascade.step``),
one table row per case. Dates are tested the day before, on and after the run date: a death
or a move on the run date counts (the relative can no longer be reached that day)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from fh_screen.stages.cascade.step import (
    closes_loop, evidence_policy, first_applicable, relative_facts, reminder_due, status_policy,
)

AS_OF = date(2026, 11, 23)
DAY = timedelta(days=1)
SCHEMA = {"_known": pl.Boolean, "deceased_date": pl.Date, "moved_out_date": pl.Date, "outcome": pl.Utf8,
          "outcome_date": pl.Date, "outcome_arrived_on": pl.Date, "fh_diagnosed_on": pl.Date, "dx_arrived_on": pl.Date,
          "ldl_mmol": pl.Float64, "ldl_date": pl.Date, "ldl_arrived_on": pl.Date, "ldl_result": pl.Utf8}


def _relative(**fields) -> pl.DataFrame:
    return pl.DataFrame([{"_known": True, **fields}], schema=SCHEMA)


def _status(frame: pl.DataFrame) -> str:
    return frame.select(first_applicable(status_policy(relative_facts(AS_OF)))).item()


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"_known": None}, "outside_region"),
        ({"_known": None, "outcome": "fh_genetic"}, "outside_region"),  # not in the register comes first
        ({"deceased_date": AS_OF - DAY}, "deceased"),
        ({"deceased_date": AS_OF}, "deceased"),
        ({"deceased_date": AS_OF + DAY}, "untested"),
        ({"deceased_date": AS_OF, "moved_out_date": AS_OF}, "deceased"),
        ({"moved_out_date": AS_OF - DAY}, "moved"),
        ({"moved_out_date": AS_OF}, "moved"),
        ({"moved_out_date": AS_OF + DAY}, "untested"),
        ({"moved_out_date": AS_OF, "outcome": "fh_clinical"}, "moved"),
        ({"outcome": "fh_genetic"}, "already_diagnosed"),
        ({"outcome": "fh_clinical", "ldl_mmol": 3.0}, "already_diagnosed"),
        ({"fh_diagnosed_on": AS_OF - DAY}, "already_diagnosed"),
        ({"outcome": "not_fh", "fh_diagnosed_on": AS_OF - DAY}, "already_diagnosed"),
        ({"outcome": "not_fh"}, "tested"),
        ({"ldl_mmol": 4.2}, "tested"),
        ({"outcome": "did_not_attend"}, "untested"),
        ({}, "untested"),
    ],
)
def test_status_precedence(fields, expected):
    assert _status(_relative(**fields)) == expected


D1, D2, D3 = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"outcome": "fh_genetic", "outcome_date": D1, "outcome_arrived_on": D2, "fh_diagnosed_on": D3},
         ("fh_genetic", D1, D2)),  # a confirmed outcome before a diagnosis code
        ({"fh_diagnosed_on": D1, "dx_arrived_on": D2}, ("fh_diagnosis", D1, D2)),
        ({"outcome": "not_fh", "outcome_date": D1, "outcome_arrived_on": D2, "ldl_mmol": 6.0, "ldl_date": D3,
          "ldl_result": "likely"}, ("not_fh", D1, D2)),  # a clinic's no-FH before an LDL-C reading
        ({"ldl_mmol": 6.0, "ldl_date": D1, "ldl_arrived_on": D2, "ldl_result": "likely"}, ("likely", D1, D2)),
        ({"ldl_mmol": 6.0, "ldl_date": D1}, ("not_classifiable", D1, None)),  # e.g. sex U
        ({"moved_out_date": D1, "ldl_mmol": 6.0, "ldl_date": D1}, (None, None, None)),  # no result when moved
        ({}, (None, None, None)),
    ],
)
def test_evidence_gives_the_result(fields, expected):
    facts = relative_facts(AS_OF)
    evidence = evidence_policy(facts)
    frame = _relative(**fields).with_columns(first_applicable(status_policy(facts)).alias("status"))
    got = frame.select(
        first_applicable([(e.when, e.result) for e in evidence]).alias("result"),
        first_applicable([(e.when, e.date) for e in evidence]).cast(pl.Date).alias("date"),
        first_applicable([(e.when, e.arrived_on) for e in evidence]).cast(pl.Date).alias("arrived"),
    ).row(0)
    assert got == expected


SENT = date(2026, 3, 2)


@pytest.mark.parametrize(
    "status, result_date, arrived_on, expected",
    [
        ("tested", SENT - DAY, SENT + DAY, False),  # sampled before the letter
        ("tested", SENT, SENT + DAY, True),  # sampled on the letter's night, delivered later
        ("tested", SENT, SENT, False),  # ... but delivered that night: known when written
        ("tested", SENT + DAY, SENT + DAY, True),
        ("tested", SENT, None, False),  # no delivery date: the sample must be dated after
        ("tested", SENT + DAY, None, True),
        ("already_diagnosed", SENT + DAY, SENT + DAY, True),
        ("untested", SENT + DAY, SENT + DAY, False),
        ("moved", SENT + DAY, SENT + DAY, False),
    ],
)
def test_a_result_closes_the_loop_only_after_the_letter(status, result_date, arrived_on, expected):
    frame = pl.DataFrame({"status": [status], "letter_sent_on": [SENT], "result_date": [result_date],
                          "result_arrived_on": [arrived_on]}, schema={"status": pl.Utf8, "letter_sent_on": pl.Date,
                                                                       "result_date": pl.Date, "result_arrived_on": pl.Date})
    assert frame.select(closes_loop()).item() is expected


@pytest.mark.parametrize(
    "status, sent, closed, expected",
    [
        ("untested", SENT, None, SENT + timedelta(weeks=6)),
        ("tested", SENT, None, SENT + timedelta(weeks=6)),
        ("tested", SENT, SENT + DAY, None),  # loop closed
        ("untested", None, None, None),  # never written to
        ("already_diagnosed", SENT, None, None),
        ("moved", SENT, None, None),
        ("deceased", SENT, None, None),
    ],
)
def test_reminder_due(status, sent, closed, expected):
    frame = pl.DataFrame({"status": [status], "letter_sent_on": [sent], "closed_on": [closed]},
                         schema={"status": pl.Utf8, "letter_sent_on": pl.Date, "closed_on": pl.Date})
    assert frame.select(reminder_due(6).cast(pl.Date)).item() == expected
