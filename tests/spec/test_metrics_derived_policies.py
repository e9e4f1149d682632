"""Derived pilot metrics of one level (``metrics.derive``): a figure computed from a withheld
count is withheld too (it would give the count back), a zero denominator is "not
applicable", and the figures themselves. One table row per case."""

from __future__ import annotations

import pytest

from fh_screen.stages.metrics.derive import COST_UNITS, yield_and_cost_values, rate_values

COUNTS = {"population": 1000, "tested": 400, "flagged": 40, "referred": 20, "attended": 16, "confirmed": 4,
          "already_diagnosed": 2, "cascade_positive": 3, "cascade_tested": 10, "cascade_contacted": 12,
          "ldl_change_n": 5, "new_cases": 5}


def _c(counts):
    return lambda name: counts.get(name, 0)


def _blocked(withheld):
    return lambda *names: any(n in withheld for n in names)


@pytest.mark.parametrize(
    "withheld, suppressed",
    [
        (set(), set()),
        ({"population"}, {"expected_cases", "share_of_expected_found"}),
        ({"already_diagnosed"}, {"share_of_expected_found"}),
        ({"confirmed"}, {"share_of_expected_found", "cost_per_confirmed_case_dkk"}),
        ({"new_cases"}, {"cost_per_new_case_dkk"}),  # new cases are a count of their own, rounded apart
        ({"cascade_positive"}, set()),
        *[({unit}, {"cost_dkk", "cost_per_new_case_dkk", "cost_per_confirmed_case_dkk"}) for unit in COST_UNITS],
    ],
)
def test_a_figure_from_a_withheld_count_is_withheld(withheld, suppressed):
    out = yield_and_cost_values(_c(COUNTS), _blocked(withheld), expected=4.0, cost=10_000.0)
    assert {k for k, v in out.items() if v["status"] == "suppressed"} == suppressed
    assert all(v["value"] is None for k, v in out.items() if k in suppressed)


def test_yield_and_cost_figures():
    out = yield_and_cost_values(_c(COUNTS), _blocked(set()), expected=4.04, cost=10_000.0)
    assert {k: v["value"] for k, v in out.items()} == {
        "expected_cases": 4.0, "share_of_expected_found": round(6 / 4.04, 4), "cost_dkk": 10_000.0,
        "cost_per_new_case_dkk": 2000.0, "cost_per_confirmed_case_dkk": 2500.0}


@pytest.mark.parametrize(
    "counts, status, value",
    [
        ({**COUNTS, "confirmed": 0}, "not_applicable", None),  # nobody confirmed: no cost per case
        ({**COUNTS, "confirmed": 1}, "ok", 10_000.0),
        ({**COUNTS, "confirmed": 4}, "ok", 2500.0),
    ],
)
def test_cost_per_confirmed_case_needs_a_case(counts, status, value):
    out = yield_and_cost_values(_c(counts), _blocked(set()), expected=4.0, cost=10_000.0)
    assert out["cost_per_confirmed_case_dkk"] == {"value": value, "status": status}


@pytest.mark.parametrize(
    "withheld, rate, expected",
    [
        (set(), "referred_share", {"value": 0.5, "status": "ok"}),
        ({"referred"}, "referred_share", {"value": None, "status": "suppressed"}),  # numerator
        ({"flagged"}, "referred_share", {"value": None, "status": "suppressed"}),  # denominator
        ({"attended"}, "referred_share", {"value": 0.5, "status": "ok"}),  # neither
        (set(), "ldl_change_mean_mmol", {"value": -1.2, "status": "ok"}),
        ({"ldl_change_n"}, "ldl_change_mean_mmol", {"value": None, "status": "suppressed"}),
    ],
)
def test_rates(withheld, rate, expected):
    out = rate_values(_c(COUNTS), _c({"ldl_change_sum_mmol": -6.0}), _blocked(withheld), lambda duration: {})
    assert out[rate] == expected


def test_a_rate_over_zero_is_not_applicable():
    out = rate_values(_c({**COUNTS, "flagged": 0, "referred": 0}), _c({}), _blocked(set()), lambda duration: {})
    assert out["referred_share"] == {"value": None, "status": "not_applicable"}
