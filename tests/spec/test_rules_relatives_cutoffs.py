"""LDL-C cut-offs for relatives of a known FH case (Starr / rdrf catrelative table)."""

from datetime import date

import pytest

from fh_screen.stages.features.build import feature_frame
from fh_screen.stages.rules.results import score

AS_OF = date(2026, 11, 23)


def category(ldl, age, sex, confirmed=True) -> str:
    row = {"sex": sex, "age_years": max(age, 1), "ldl_untreated_estimate_mmol": ldl, "ldl_estimate_age": age,
           "fdr_confirmed_fh": confirmed}
    return score(feature_frame([row], AS_OF))["relative_cutoff_category"][0]


@pytest.mark.parametrize(
    "sex, age, ldl, expected",
    [
        ("M", 10, 3.09, "unlikely"), ("M", 10, 3.1, "uncertain"), ("M", 10, 3.49, "uncertain"), ("M", 10, 3.5, "likely"),
        ("M", 15, 2.99, "unlikely"), ("M", 15, 3.0, "uncertain"), ("M", 15, 3.5, "likely"),
        ("M", 35, 3.99, "unlikely"), ("M", 35, 4.0, "uncertain"), ("M", 44, 4.79, "uncertain"), ("M", 44, 4.8, "likely"),
        ("M", 45, 5.29, "uncertain"), ("M", 54, 5.3, "likely"), ("M", 55, 4.29, "unlikely"), ("M", 80, 4.3, "uncertain"),
        ("F", 14, 3.39, "unlikely"), ("F", 14, 3.4, "uncertain"), ("F", 14, 3.79, "uncertain"), ("F", 14, 3.8, "likely"),
        ("F", 24, 3.89, "uncertain"), ("F", 24, 3.9, "likely"), ("F", 25, 3.59, "unlikely"), ("F", 34, 4.3, "likely"),
        ("F", 35, 4.39, "uncertain"), ("F", 44, 4.4, "likely"), ("F", 50, 4.89, "uncertain"), ("F", 54, 4.9, "likely"),
        ("F", 55, 4.39, "unlikely"), ("F", 70, 5.3, "likely"),
    ],
)
def test_table_edges(sex, age, ldl, expected):
    assert category(ldl, age, sex) == expected


@pytest.mark.parametrize("ldl, expected", [(4.79, "uncertain"), (4.8, "likely"), (3.99, "unlikely"), (4.0, "uncertain")])
def test_table_edges_in_mg_dl(ldl, expected):
    assert category(ldl * 38.67 * 0.025860, 40, "M") == expected


def test_age_band_edge_14_to_15_men():
    assert category(3.05, 14, "M") == "unlikely"
    assert category(3.05, 15, "M") == "uncertain"


def test_sex_unknown_is_not_calculable():
    assert category(6.0, 40, "U") == "not_calculable"


def test_only_for_relatives_of_a_confirmed_case():
    assert category(6.0, 40, "M", confirmed=False) == "not_applicable"


def test_reason_for_a_relative():
    row = {"sex": "F", "age_years": 30, "ldl_untreated_estimate_mmol": 4.5, "ldl_estimate_age": 30,
           "fdr_confirmed_fh": True}
    r = score(feature_frame([row], AS_OF)).row(0, named=True)
    assert "Family history: a first-degree relative has confirmed FH" in r["reasons"]
    assert ("as a relative of a person with FH, the patient's LDL-C 4.5 mmol/L makes FH likely by the cut-offs "
            "for relatives of that age and sex") in r["reasons"]
