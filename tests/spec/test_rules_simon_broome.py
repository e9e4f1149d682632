"""Simon Broome spec (NICE CG71 Appendix F): cholesterol criterion A by age, definite, possible."""

from datetime import date

import polars as pl
import pytest

from fh_screen.stages.features.build import feature_frame
from fh_screen.reference import csv
from fh_screen.stages.rules.results import score

AS_OF = date(2026, 11, 23)
CHOL_MG_DL = csv("unit_conversions").filter((pl.col("analyte") == "tc") & (pl.col("unit") == "mg/dL"))["factor"][0]


def conv(value: float, unit: str) -> float:
    return value if unit == "mmol/L" else value * 38.67 * CHOL_MG_DL


def sb(ldl=None, tc=None, age=45, unit="mmol/L", treated=False, **cols) -> str:
    row = {"age_years": max(age, 18) if age >= 16 else age, **cols}
    if ldl is not None:
        row |= {"ldl_max_mmol": conv(ldl, unit), "ldl_max_age": age, "ldl_max_treated": treated,
                "ldl_untreated_estimate_mmol": conv(ldl, unit), "ldl_estimate_age": age}
        if not treated:
            row |= {"ldl_max_untreated_mmol": conv(ldl, unit), "ldl_max_untreated_age": age}
    if tc is not None:
        row |= {"tc_max_mmol": conv(tc, unit), "tc_max_age": age}
        if not treated:
            row |= {"tc_max_untreated_mmol": conv(tc, unit), "tc_max_untreated_age": age}
    return score(feature_frame([row], AS_OF))["simon_broome"][0]


XANTHOMA = {"fhx_tendon_xanthoma": True}
FAMILY_MI = {"fdr_chd_before_60": True}


@pytest.mark.parametrize("unit", ["mmol/L", "mg/dL"])
@pytest.mark.parametrize("age, ldl, met", [(16, 4.9, False), (16, 4.91, True), (45, 4.89, False),
                                           (15, 4.0, False), (15, 4.01, True), (15, 3.99, False)])
def test_ldl_criterion_adult_above_4_9_child_above_4_0(age, ldl, met, unit):
    assert sb(ldl=ldl, age=age, unit=unit, **XANTHOMA) == ("definite" if met else "not_met")


@pytest.mark.parametrize("unit", ["mmol/L", "mg/dL"])
@pytest.mark.parametrize("age, tc, met", [(16, 7.5, False), (16, 7.51, True), (15, 6.7, False), (15, 6.71, True)])
def test_tc_criterion_adult_above_7_5_child_above_6_7(age, tc, met, unit):
    assert sb(tc=tc, age=age, unit=unit, **FAMILY_MI) == ("possible" if met else "not_met")


@pytest.mark.parametrize("xanthoma", ["fhx_tendon_xanthoma", "fdr_tendon_xanthoma", "sdr_tendon_xanthoma"])
def test_definite_needs_tendon_xanthoma_in_patient_or_relative(xanthoma):
    assert sb(ldl=5.5, **{xanthoma: True}) == "definite"


def test_dna_alone_is_definite_even_without_lipids():
    assert sb(clinic_dna_variant=True) == "definite"


@pytest.mark.parametrize("family", ["fdr_chd_before_60", "sdr_chd_before_50", "fhx_premature_chd_first_degree",
                                    "fdr_tc_raised", "sdr_tc_raised", "fdr_confirmed_fh", "fhx_fh_first_degree",
                                    "fhx_high_ldl_first_degree_adult", "fhx_high_ldl_child_relative"])
def test_possible_needs_family_history_of_mi_or_raised_cholesterol(family):
    assert sb(ldl=5.5, **{family: True}) == "possible"


def test_cholesterol_alone_is_not_met():
    assert sb(ldl=9.0, tc=11.0) == "not_met"


def test_family_history_without_cholesterol_criterion_is_not_met():
    assert sb(ldl=4.5, **FAMILY_MI, **XANTHOMA) == "not_met"


def test_pre_treatment_value_is_used_when_present():
    row = {"ldl_max_mmol": 5.5, "ldl_max_age": 50, "ldl_max_treated": True, "ldl_max_untreated_mmol": 4.5,
           "ldl_max_untreated_age": 40, "ldl_untreated_estimate_mmol": 9.0, **XANTHOMA}
    assert score(feature_frame([row], AS_OF))["simon_broome"][0] == "not_met"


def test_highest_on_treatment_value_when_no_pre_treatment_value():
    assert sb(ldl=5.5, treated=True, **XANTHOMA) == "definite"


def test_no_lipids_and_no_dna_is_not_calculable():
    assert sb(**XANTHOMA) == "not_calculable"
