"""DLCN spec (EAS 2013 Table 1): tiny patients, expected points, category and status.

Every LDL band edge is tested at, just below and just above, in mmol/L and in mg/dL (converted
the way ingest converts: reference/unit_conversions.csv, mg/dL x 0.025860 = / 38.67).
"""

from datetime import date

import polars as pl
import pytest

from fh_screen.stages.features.build import feature_frame
from fh_screen.reference import csv
from fh_screen.stages.rules.results import Policy, score

AS_OF = date(2026, 11, 23)
LDL_MG_DL = csv("unit_conversions").filter((pl.col("analyte") == "ldl") & (pl.col("unit") == "mg/dL"))["factor"][0]


def ldl(value: float, unit: str = "mmol/L") -> float:
    """An LDL-C as the pipeline stores it after ingest (canonical mmol/L)."""
    return value if unit == "mmol/L" else (value * 38.67) * LDL_MG_DL


def one(policy: Policy = Policy(), **cols) -> dict:
    return score(feature_frame([cols], AS_OF), policy).row(0, named=True)


def with_ldl(value: float, unit: str = "mmol/L", **cols) -> dict:
    v = ldl(value, unit)
    return one(ldl_untreated_estimate_mmol=v, ldl_estimate_measured_mmol=v, ldl_max_mmol=v, n_ldl_results=2,
               ldl_estimate_date=date(2024, 5, 2), ldl_max_date=date(2024, 5, 2), ldl_estimate_age=38,
               ldl_max_age=38, ldl_estimate_source="measured", ldl_max_source="measured", **cols)


@pytest.mark.parametrize("unit", ["mmol/L", "mg/dL"])
@pytest.mark.parametrize(
    "value, points",
    [
        (3.99, 0), (4.0, 1), (4.01, 1),
        (4.99, 1), (5.0, 3), (5.01, 3),
        (6.49, 3), (6.5, 5), (6.51, 5),
        (8.49, 5), (8.5, 8), (8.51, 8),
    ],
)
def test_ldl_bands_are_half_open(value, points, unit):
    r = with_ldl(value, unit)
    assert r["dlcn_status"] == "scored"
    assert r["dlcn_points"] == points


@pytest.mark.parametrize(
    "cols, points, category",
    [
        ({"ldl": 3.9, "fhx_premature_chd_self": True}, 2, "unlikely"),
        ({"ldl": 5.0}, 3, "possible"),
        ({"ldl": 6.5}, 5, "possible"),
        ({"ldl": 5.0, "fhx_premature_chd_self": True, "fhx_premature_chd_first_degree": True}, 6, "probable"),
        ({"ldl": 8.5}, 8, "probable"),
        ({"ldl": 8.5, "fhx_premature_chd_first_degree": True}, 9, "definite"),
    ],
)
def test_categories_definite_above_8_probable_6_to_8_possible_3_to_5(cols, points, category):
    cols = dict(cols)
    r = with_ldl(cols.pop("ldl"), **cols)
    assert (r["dlcn_points"], r["dlcn_category"]) == (points, category)


def test_eas_footnote_example_family_history_scores_2_not_1_plus_2():
    """Family with CHD, xanthoma and dyslipidaemia: 2 points for family history, not 1+2."""
    r = with_ldl(3.0, fdr_premature_chd=True, fdr_xanthoma_or_arcus=True, fdr_ldl_pct_max=99.0)
    assert r["dlcn_points"] == 2
    assert {"dlcn.fdr_premature_chd", "dlcn.fdr_xanthoma_or_arcus", "dlcn.fdr_ldl_above_p95"} <= set(r["criteria"])


def test_only_highest_item_counts_in_clinical_and_examination_groups():
    r = with_ldl(3.0, fhx_premature_chd_self=True, fhx_premature_pvd_self=True,
                 fhx_tendon_xanthoma=True, fhx_arcus_before_45=True)
    assert r["dlcn_points"] == 2 + 6


def test_all_groups_add_up():
    r = with_ldl(8.5, fhx_premature_chd_first_degree=True, fhx_premature_chd_self=True,
                 fhx_tendon_xanthoma=True, clinic_dna_variant=True, clinic_gene="LDLR")
    assert r["dlcn_points"] == 1 + 2 + 6 + 8 + 8
    assert r["dlcn_category"] == "definite"


@pytest.mark.parametrize("sex, age, points", [("M", 54, 2), ("M", 55, 0), ("F", 59, 2), ("F", 60, 0), ("U", 54, 2), ("U", 55, 0)])
def test_premature_chd_is_men_under_55_women_under_60(sex, age, points):
    r = with_ldl(3.0, sex=sex, chd_first_age=age)
    assert r["dlcn_points"] == points


@pytest.mark.parametrize("age, points", [(54, 1), (55, 0)])
def test_premature_cerebral_or_peripheral_disease(age, points):
    assert with_ldl(3.0, other_cvd_first_age=age)["dlcn_points"] == points


@pytest.mark.parametrize("pct, points", [(94.99, 0), (95.0, 0), (95.01, 1)])
def test_relative_ldl_above_95th_percentile(pct, points):
    assert with_ldl(3.0, fdr_ldl_pct_max=pct)["dlcn_points"] == points


@pytest.mark.parametrize("pct, points", [(95.0, 0), (95.01, 2)])
def test_child_under_18_with_ldl_above_95th_percentile(pct, points):
    assert with_ldl(3.0, child_ldl_pct_max=pct)["dlcn_points"] == points


def test_adults_only():
    assert with_ldl(9.0, age_years=17)["dlcn_status"] == "out_of_scope"
    r = with_ldl(9.0, age_years=17)
    assert r["dlcn_points"] is None and r["dlcn_category"] == "not_calculable"
    assert "DLCN not scored: age 17 is under 18" in r["reasons"]
    assert with_ldl(9.0, age_years=18)["dlcn_points"] == 8


def test_no_ldl_is_not_calculable_never_zero():
    r = one(fhx_tendon_xanthoma=True)
    assert (r["dlcn_status"], r["dlcn_category"], r["dlcn_points"]) == ("not_calculable", "not_calculable", None)
    assert r["missing_items"] == ["no_ldl"]


def test_untreated_reason_reads_like_a_gp_note():
    r = with_ldl(7.9)
    assert "LDL-C used for scoring: 7.9 mmol/L measured untreated on 2024-05-02 at age 38" in r["reasons"]
    assert r["reasons"].startswith("Dutch Lipid Clinic Network score 5: possible FH")


def test_treated_reason_shows_estimate_factor_and_source():
    r = one(ldl_estimate_measured_mmol=7.9, ldl_untreated_estimate_mmol=7.9 * 1.937984, ldl_max_mmol=7.9,
            ldl_estimate_date=date(2024, 5, 2), ldl_max_date=date(2024, 5, 2), ldl_estimate_age=38, ldl_max_age=38,
            ldl_estimate_treated=True, ldl_max_treated=True, ldl_estimate_regimen="atorvastatin 40 mg",
            ldl_correction_factor=1.937984, ldl_correction_source="rdrf", n_ldl_results=2)
    assert ("LDL-C used for scoring: estimated untreated 15.31 mmol/L from 7.9 mmol/L on 2024-05-02 at age 38 "
            "on atorvastatin 40 mg (x1.938, rdrf table)") in r["reasons"]
    assert r["dlcn_points"] == 8


def test_missing_information_names_what_would_change_the_score():
    r = with_ldl(6.0)
    assert r["missing_items"][:3] == ["family_history_not_recorded", "physical_exam_not_recorded", "dna_test_not_recorded"]
    assert r["missing_information"].startswith(
        "family history not recorded; no physical examination recorded (tendon xanthoma, corneal arcus); no DNA test")


def test_reason_lists_only_the_counted_item_of_a_group():
    r = with_ldl(3.0, fhx_tendon_xanthoma=True, fhx_arcus_before_45=True)
    assert "The patient has tendon xanthoma (+6)" in r["reasons"]
    assert "corneal arcus before age 45" not in r["reasons"]
    assert {"dlcn.tendon_xanthoma", "dlcn.arcus_before_45"} <= set(r["criteria"])
