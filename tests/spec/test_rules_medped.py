"""MEDPED spec (Williams 1993): total cholesterol cut-offs by age and closest relative with FH."""

from datetime import date

import polars as pl
import pytest

from fh_screen.stages.features.build import feature_frame
from fh_screen.reference import csv
from fh_screen.stages.rules.results import score

AS_OF = date(2026, 11, 23)
CHOL_MG_DL = csv("unit_conversions").filter((pl.col("analyte") == "tc") & (pl.col("unit") == "mg/dL"))["factor"][0]


def medped(tc, age, unit="mmol/L", **cols) -> dict:
    value = tc if unit == "mmol/L" else tc * 38.67 * CHOL_MG_DL
    row = {"tc_max_mmol": value, "tc_max_untreated_mmol": value, "tc_max_untreated_age": age, "tc_max_age": age,
           "age_years": max(age, 1), **cols}
    return score(feature_frame([row], AS_OF)).row(0, named=True)


@pytest.mark.parametrize("unit", ["mmol/L", "mg/dL"])
@pytest.mark.parametrize(
    "age, cutoff",
    [(10, 7.0), (19, 7.0), (20, 7.5), (29, 7.5), (30, 8.8), (39, 8.8), (40, 9.3), (75, 9.3)],
)
def test_general_population_cutoffs(age, cutoff, unit):
    assert medped(cutoff, age, unit)["medped"] == "not_met"
    assert medped(round(cutoff + 0.01, 2), age, unit)["medped"] == "met"
    assert medped(round(cutoff - 0.01, 2), age, unit)["medped"] == "not_met"


@pytest.mark.parametrize(
    "relative, age, cutoff",
    [("fdr_confirmed_fh", 19, 5.7), ("fdr_confirmed_fh", 25, 6.2), ("fdr_confirmed_fh", 35, 7.0),
     ("fdr_confirmed_fh", 45, 7.5), ("fhx_fh_first_degree", 45, 7.5),
     ("sdr_confirmed_fh", 19, 5.9), ("sdr_confirmed_fh", 25, 6.5), ("sdr_confirmed_fh", 35, 7.2),
     ("sdr_confirmed_fh", 45, 7.8)],
)
def test_relative_columns(relative, age, cutoff):
    assert medped(cutoff, age, **{relative: True})["medped"] == "not_met"
    r = medped(round(cutoff + 0.01, 2), age, **{relative: True})
    assert r["medped"] == "met"
    assert r["medped_cutoff_mmol"] == cutoff


def test_first_degree_wins_over_second_degree():
    assert medped(7.6, 45, fdr_confirmed_fh=True, sdr_confirmed_fh=True)["medped_column"] == "first_degree"


def test_only_on_treatment_tc_is_not_calculable():
    row = {"tc_max_mmol": 12.0, "tc_max_age": 50, "tc_max_treated": True}
    assert score(feature_frame([row], AS_OF))["medped"][0] == "not_calculable"


def test_reason_states_value_cutoff_and_column():
    assert ("MEDPED: total cholesterol 9.4 mmol/L at age 45 is above 9.3 mmol/L (general-population cut-off)"
            in medped(9.4, 45)["reasons"])
