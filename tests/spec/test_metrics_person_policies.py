"""Who counts where in the pilot metrics (``metrics.compute``'s per-person policies): one
table row per case, each at, below and above its cut-off. A person is one row of the
columns ``compute.people`` gives; the policy's expressions are evaluated on it alone."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from fh_screen.config import SelectionSettings
from fh_screen.stages.metrics import compute

SEL = SelectionSettings(dlcn_min_points=6, min_probability=0.2)

PERSON = {
    "_referred": (None, pl.Int32), "excluded_reason": (None, pl.Utf8), "triggered": (False, pl.Boolean),
    "tested": (False, pl.Boolean), "outcome": (None, pl.Utf8), "clinic_id": (None, pl.Utf8),
    "practice_id": ("P1", pl.Utf8), "sex": ("F", pl.Utf8), "age_years": (45, pl.Int64),
    "listed_on": (None, pl.Date), "treated_before": (None, pl.Boolean), "treated_after": (None, pl.Boolean),
    "new_or_stronger": (None, pl.Boolean), "ldl_change_mmol": (None, pl.Float64),
    "cascade_identified": (None, pl.Int64), "cascade_contacted": (None, pl.Int64),
    "cascade_tested": (None, pl.Int64), "cascade_positive": (None, pl.Int64),
    "listed_dlcn_points": (None, pl.Int64), "dlcn_points": (None, pl.Int64), "simon_broome": (None, pl.Utf8),
    "medped": (None, pl.Utf8), "lab_flag": (None, pl.Boolean), "listed_probability": (None, pl.Float64),
    "probability": (None, pl.Float64), "days_flag_to_listed": (None, pl.Int64),
    "days_listed_to_visit": (None, pl.Int64),
}
REFERRED = {"_referred": 1, "listed_on": date(2026, 3, 9), "clinic_id": "LK"}


def evaluate(columns: list[pl.Expr], **person) -> dict:
    """The policy's values for one person (defaults: an adult never tested, flagged or referred)."""
    row = {name: person.get(name, default) for name, (default, _) in PERSON.items()}
    frame = pl.DataFrame([row], schema={name: dtype for name, (_, dtype) in PERSON.items()}, orient="row")
    return frame.select(columns).row(0, named=True)


FUNNEL = ("tested", "flagged", "referred", "attended", "confirmed")


@pytest.mark.parametrize(
    "person, counted",
    [
        ({}, ()),
        ({"tested": True}, ("tested",)),
        ({"triggered": True}, ("tested", "flagged")),                      # flagged counts as tested
        ({"triggered": True, "excluded_reason": "already_diagnosed"}, ()),  # excluded: not flagged
        ({**REFERRED, "excluded_reason": "deceased"}, ("tested", "flagged", "referred")),  # ever referred counts
        ({**REFERRED, "outcome": "pending"}, ("tested", "flagged", "referred")),
        ({**REFERRED, "outcome": "did_not_attend"}, ("tested", "flagged", "referred")),
        ({**REFERRED, "outcome": "not_fh"}, ("tested", "flagged", "referred", "attended")),
        ({**REFERRED, "outcome": "fh_clinical"}, FUNNEL),
        ({**REFERRED, "outcome": "fh_genetic"}, FUNNEL),
        ({"outcome": "fh_clinical"}, ()),                                   # an outcome without a referral
    ],
)
def test_funnel_nests(person, counted):
    out = evaluate(compute.funnel_columns(), **person)
    assert out == {"population": 1, **{m: int(m in counted) for m in FUNNEL}}


@pytest.mark.parametrize(
    "person, outcome",
    [({}, None), (REFERRED, "none"), ({**REFERRED, "outcome": "declined"}, "declined"),
     ({**REFERRED, "outcome": "fh_genetic"}, "fh_genetic"), ({"outcome": "not_fh"}, None)],
)
def test_each_referred_person_has_one_outcome_indicator(person, outcome):
    out = evaluate(compute.outcome_columns(), **person)
    assert {k for k, v in out.items() if v} == ({f"outcome_{outcome}"} if outcome else set())


@pytest.mark.parametrize(
    "age, band",
    [(0, "0-17"), (17, "0-17"), (18, "18-39"), (39, "18-39"), (40, "40-59"), (59, "40-59"),
     (60, "60-79"), (79, "60-79"), (80, "80+"), (104, "80+")],
)
def test_age_bands_at_each_cut_off(age, band):
    assert evaluate(compute.dimension_columns("r"), age_years=age)["dim_age_band"] == band


@pytest.mark.parametrize(
    "person, clinic, month, practice, sex",
    [
        ({}, "not_referred", "not_referred", "P1", "F"),
        ({**REFERRED}, "LK", "2026-03", "P1", "F"),
        ({**REFERRED, "clinic_id": None}, "unassigned", "2026-03", "P1", "F"),
        ({"practice_id": None, "sex": None}, "not_referred", "not_referred", "no_practice", "U"),
    ],
)
def test_dimension_levels(person, clinic, month, practice, sex):
    out = evaluate(compute.dimension_columns("hov"), **person)
    assert (out["dim_all"], out["dim_region"], out["dim_clinic"], out["dim_month"], out["dim_practice"],
            out["dim_sex"]) == ("all", "hov", clinic, month, practice, sex)


@pytest.mark.parametrize(
    "person, started, intensified",
    [
        ({"treated_after": True}, 0, 0),                                    # not referred
        ({**REFERRED, "treated_after": True}, 1, 0),
        ({**REFERRED, "treated_after": True, "treated_before": False}, 1, 0),
        ({**REFERRED, "treated_after": True, "treated_before": True, "new_or_stronger": False}, 0, 0),
        ({**REFERRED, "treated_after": True, "treated_before": True, "new_or_stronger": True}, 0, 1),
        ({**REFERRED, "treated_before": True}, 0, 0),
    ],
)
def test_treatment_started_or_intensified(person, started, intensified):
    out = evaluate(compute.treatment_columns(), **person)
    assert out == {"treatment_changed": started | intensified, "treatment_started": started,
                   "treatment_intensified": intensified}


@pytest.mark.parametrize(
    "person, n, total",
    [({}, 0, 0.0), ({"ldl_change_mmol": -1.5}, 0, 0.0), (REFERRED, 0, 0.0),
     ({**REFERRED, "ldl_change_mmol": -1.5}, 1, -1.5), ({**REFERRED, "ldl_change_mmol": 0.0}, 1, 0.0)],
)
def test_ldl_change_counts_referred_people_with_a_change(person, n, total):
    assert evaluate(compute.ldl_change_columns(), **person) == {"ldl_change_n": n, "ldl_change_sum_mmol": total}


@pytest.mark.parametrize(
    "person, known, cascade, new_cases",
    [
        ({}, 0, (0, 0, 0, 0), 0),
        ({"excluded_reason": "already_diagnosed"}, 1, (0, 0, 0, 0), 0),
        ({"excluded_reason": "deceased"}, 0, (0, 0, 0, 0), 0),
        ({**REFERRED, "outcome": "fh_clinical"}, 0, (0, 0, 0, 0), 1),
        ({**REFERRED, "outcome": "fh_genetic", "cascade_identified": 4, "cascade_contacted": 3,
          "cascade_tested": 2, "cascade_positive": 1}, 0, (4, 3, 2, 1), 2),      # index case + relative found
        ({**REFERRED, "outcome": "not_fh", "cascade_positive": 1}, 0, (0, 0, 0, 1), 1),
    ],
)
def test_known_cases_cascade_and_new_cases(person, known, cascade, new_cases):
    out = evaluate(compute.case_columns(), **person)
    assert (out["already_diagnosed"], (out["cascade_identified"], out["cascade_contacted"], out["cascade_tested"],
            out["cascade_positive"]), out["new_cases"]) == (known, cascade, new_cases)


ATTENDED = {**REFERRED, "outcome": "not_fh"}
CONFIRMED = {**REFERRED, "outcome": "fh_clinical"}


@pytest.mark.parametrize(
    "person, rule, positive",
    [
        ({**ATTENDED, "listed_dlcn_points": 5}, "dlcn", 0),
        ({**ATTENDED, "listed_dlcn_points": 6}, "dlcn", 1),
        ({**ATTENDED, "listed_dlcn_points": 7}, "dlcn", 1),
        ({**ATTENDED, "listed_dlcn_points": 5, "dlcn_points": 9}, "dlcn", 0),   # as listed, not as tonight
        ({**ATTENDED, "dlcn_points": 6}, "dlcn", 1),                             # never listed with points
        ({**ATTENDED, "listed_probability": 0.1999}, "model", 0),
        ({**ATTENDED, "listed_probability": 0.2}, "model", 1),
        ({**ATTENDED, "listed_probability": 0.35}, "model", 1),
        ({**ATTENDED, "listed_probability": 0.1, "probability": 0.9}, "model", 0),
        ({**ATTENDED, "simon_broome": "possible"}, "simon_broome", 1),
        ({**ATTENDED, "simon_broome": "definite"}, "simon_broome", 1),
        ({**ATTENDED, "simon_broome": "not_met"}, "simon_broome", 0),
        ({**ATTENDED, "medped": "met"}, "medped", 1),
        ({**ATTENDED, "medped": "not_met"}, "medped", 0),
        ({**ATTENDED, "lab_flag": True}, "lab_flag", 1),
        ({**ATTENDED, "lab_flag": False}, "lab_flag", 0),
    ],
)
def test_rule_positivity_among_attended_at_each_cut_off(person, rule, positive):
    out = evaluate(compute.rule_positivity_columns(SEL), **person)
    assert out[f"rule_pos_{rule}"] == positive
    assert out[f"rule_pos_confirmed_{rule}"] == 0     # not_fh / declined: never among the confirmed
    confirmed = evaluate(compute.rule_positivity_columns(SEL), **{**person, "outcome": "fh_genetic"})
    assert confirmed[f"rule_pos_confirmed_{rule}"] == positive


@pytest.mark.parametrize("outcome", ["declined", "did_not_attend", "pending", None])
def test_rule_positivity_counts_only_attended_people(outcome):
    out = evaluate(compute.rule_positivity_columns(SEL), **{**REFERRED, "outcome": outcome},
                   listed_dlcn_points=9, listed_probability=0.9, simon_broome="definite", medped="met", lab_flag=True)
    assert not any(out.values())


@pytest.mark.parametrize(
    "probability, bin_",
    [(0.0, "p0"), (0.1999, "p0"), (0.2, "p1"), (0.3999, "p1"), (0.4, "p2"), (0.6, "p3"), (0.7999, "p3"),
     (0.8, "p4"), (0.9999, "p4"), (1.0, "p4")],                               # the top bin is closed at 1
)
def test_calibration_bins_at_each_edge(probability, bin_):
    seen = evaluate(compute.calibration_columns(), **CONFIRMED, listed_probability=probability)
    assert (seen["calib_n"], seen["calib_confirmed"]) == (1, 1)
    assert {k for k, v in seen.items() if v and k.startswith("calib_n_")} == {f"calib_n_{bin_}"}
    assert {k for k, v in seen.items() if v and k.startswith("calib_confirmed_")} == {f"calib_confirmed_{bin_}"}
    assert seen[f"calib_prob_sum_{bin_}"] == probability


@pytest.mark.parametrize("person", [{**REFERRED, "outcome": "declined", "listed_probability": 0.5},
                                    {**ATTENDED}, {"outcome": "not_fh", "probability": 0.5}])
def test_calibration_counts_only_attended_people_with_a_probability(person):
    assert not any(evaluate(compute.calibration_columns(), **person).values())


@pytest.mark.parametrize(
    "person, to_listing, to_visit",
    [({"days_flag_to_listed": 3, "days_listed_to_visit": 20}, None, None),
     ({**REFERRED, "days_flag_to_listed": 3, "days_listed_to_visit": 20, "outcome": "pending"}, 3, None),
     ({**ATTENDED, "days_flag_to_listed": 0, "days_listed_to_visit": 20}, 0, 20)],
)
def test_durations_count_only_who_reached_the_stage(person, to_listing, to_visit):
    assert evaluate(compute.duration_columns(), **person) == {"days_flag_to_listed": to_listing,
                                                               "days_listed_to_visit": to_visit}
