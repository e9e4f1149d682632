"""MEDPED spec (Williams 1993): total cholesterol cut-offs by age and closest relative with FH,
checked in whole mg/dL as published (medped_v2 decision medped_mg_dl): at, below and above."""

from datetime import date

import pytest

from fh_screen.stages.features.build import feature_frame
from fh_screen.stages.rules.results import score

AS_OF = date(2026, 11, 23)
MG = 38.67


def medped(tc_mg_dl: float, age: int, **cols) -> dict:
    value = tc_mg_dl / MG  # stored in mmol/L, as ingest stores it
    row = {"tc_max_mmol": value, "tc_max_untreated_mmol": value, "tc_max_untreated_age": age, "tc_max_age": age,
           "age_years": max(age, 1), **cols}
    return score(feature_frame([row], AS_OF)).row(0, named=True)


@pytest.mark.parametrize(
    "age, cutoff",
    [(10, 270), (19, 270), (20, 290), (29, 290), (30, 340), (39, 340), (40, 360), (75, 360)],
)
def test_general_population_cutoffs(age, cutoff):
    assert medped(cutoff, age)["medped"] == "not_met"          # at: must exceed
    assert medped(cutoff + 1, age)["medped"] == "met"          # above
    assert medped(cutoff - 1, age)["medped"] == "not_met"      # below


@pytest.mark.parametrize(
    "relative, age, cutoff",
    [("fdr_confirmed_fh", 19, 220), ("fdr_confirmed_fh", 25, 240), ("fdr_confirmed_fh", 35, 270),
     ("fdr_confirmed_fh", 45, 290), ("fhx_fh_first_degree", 45, 290),
     ("sdr_confirmed_fh", 19, 230), ("sdr_confirmed_fh", 25, 250), ("sdr_confirmed_fh", 35, 280),
     ("sdr_confirmed_fh", 45, 300)],
)
def test_relative_columns(relative, age, cutoff):
    assert medped(cutoff, age, **{relative: True})["medped"] == "not_met"
    assert medped(cutoff - 1, age, **{relative: True})["medped"] == "not_met"
    r = medped(cutoff + 1, age, **{relative: True})
    assert r["medped"] == "met"
    assert r["medped_cutoff_mg_dl"] == cutoff


def test_240_mg_dl_is_not_above_240_even_though_it_is_above_6_2_mmol():
    # 240 mg/dL = 6.206 mmol/L: 1.0.0 compared 6.21 > 6.2 and printed "6.2 is above 6.2".
    assert medped(240, 25, fdr_confirmed_fh=True)["medped"] == "not_met"
    assert medped(6.2 * MG, 25, fdr_confirmed_fh=True)["medped"] == "not_met"  # 239.75 -> 240


def test_first_degree_wins_over_second_degree():
    assert medped(300, 45, fdr_confirmed_fh=True, sdr_confirmed_fh=True)["medped_column"] == "first_degree"


def test_only_on_treatment_tc_is_not_calculable():
    row = {"tc_max_mmol": 12.0, "tc_max_age": 50, "tc_max_treated": True}
    assert score(feature_frame([row], AS_OF))["medped"][0] == "not_calculable"


def test_reason_states_value_in_both_units_cutoff_and_column():
    assert ("MEDPED: total cholesterol 9.41 mmol/L (364 mg/dL) at age 45 is above 360 mg/dL "
            "(general-population cut-off)") in medped(364, 45)["reasons"]
