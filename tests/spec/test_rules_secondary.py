"""Secondary causes (secondary_v2, graded): each threshold at, below and above; a cause that
explains the LDL-C routes to a check first, a weaker one is information only."""

from datetime import date

import pytest

from fh_screen.stages.features.build import feature_frame
from fh_screen.stages.rules.results import score

AS_OF = date(2026, 11, 23)
D = date(2025, 3, 2)
# DLCN 7 (LDL-C 7.0 = 5, premature CHD = 2): flagged by the score, so a secondary cause changes the route.
HIGH_LDL = {"ldl_untreated_estimate_mmol": 7.0, "ldl_estimate_age": 50, "ldl_max_age_ge40_mmol": 7.0,
            "fhx_premature_chd_self": True}


def run(**cols) -> dict:
    return score(feature_frame([{**HIGH_LDL, **cols}], AS_OF)).row(0, named=True)


@pytest.mark.parametrize(
    "cols, found",
    [
        ({"sec_tsh_max_miu_l": 9.99}, False), ({"sec_tsh_max_miu_l": 10.0}, True), ({"sec_tsh_max_miu_l": 10.01}, True),
        ({"sec_tsh_max_miu_l": 4.3}, False),  # raised but below 10: information only
        ({"sec_hba1c_max_mmol_mol": 74.9}, False), ({"sec_hba1c_max_mmol_mol": 75.0}, True),
        ({"sec_hba1c_max_mmol_mol": 75.1}, True), ({"sec_hba1c_max_mmol_mol": 48.0}, False),
        ({"sec_tg_max_mmol": 4.0}, False), ({"sec_tg_max_mmol": 4.01}, True),
        ({"sec_albumin_min_g_l": 30.0, "sec_uacr_max_mg_mmol": 300.0}, False),
        ({"sec_albumin_min_g_l": 29.9, "sec_uacr_max_mg_mmol": 220.0}, True),
        ({"sec_albumin_min_g_l": 29.9, "sec_uacr_max_mg_mmol": 221.0}, True),
        ({"sec_albumin_min_g_l": 29.9, "sec_uacr_max_mg_mmol": 219.9}, False),  # albuminuria: information
        ({"sec_albumin_min_g_l": 29.9, "sec_uacr_max_mg_mmol": 31.0}, False),
        ({"sec_albumin_min_g_l": 20.0}, False),
        ({"sec_alp_max_u_l": 105.0, "sec_ggt_max_u_l": 56.0}, False),
        ({"sec_alp_max_u_l": 106.0, "sec_ggt_max_u_l": 56.0}, True),
        ({"sec_alp_max_u_l": 106.0, "sec_ggt_max_u_l": 55.0}, False),
        ({"sec_egfr_min": 29.9}, False),  # information only
        ({"sec_drug_atc": "H02AB06", "sec_drug_date": D}, True),
        ({"sec_drug_atc": "A14AA04", "sec_drug_date": D}, True),    # anabolic steroid
        ({"sec_drug_atc": "L04AH01", "sec_drug_date": D}, True),    # sirolimus
        ({"sec_drug_atc": "L04AD02", "sec_drug_date": D}, False),   # tacrolimus: information
        ({"sec_drug_atc": "C03BA11", "sec_drug_date": D}, False),   # indapamide: information
        ({"sec_drug_atc": "J05AR03", "sec_drug_date": D}, False),   # tenofovir/emtricitabine PrEP: not a cause
    ],
)
def test_thresholds(cols, found):
    r = run(**cols)
    assert (r["secondary_cause"] is not None) is found
    assert r["route"] == ("check_secondary_cause_first" if found else "refer_lipid_clinic")


@pytest.mark.parametrize(
    "cols, text",
    [
        ({"sec_tsh_max_miu_l": 14.0, "sec_tsh_date": D}, "TSH 14 mIU/L on 2025-03-02"),
        ({"sec_hba1c_max_mmol_mol": 82.0, "sec_hba1c_date": D}, "HbA1c 82 mmol/mol on 2025-03-02"),
        ({"sec_tg_max_mmol": 5.4, "sec_tg_date": D}, "triglycerides 5.4 mmol/L on 2025-03-02"),
        ({"sec_albumin_min_g_l": 25.0, "sec_uacr_max_mg_mmol": 300.0, "sec_albumin_date": D},
         "albumin 25 g/L with urine albumin/creatinine 300 mg/mmol on 2025-03-02"),
        ({"sec_alp_max_u_l": 250.0, "sec_ggt_max_u_l": 180.0, "sec_alp_date": D}, "ALP 250 U/L and GGT 180 U/L on 2025-03-02"),
        ({"sec_drug_atc": "L04AD01", "sec_drug_date": D}, "ciclosporin (L04AD01) dispensed on 2025-03-02"),
        ({"sec_drug_atc": "H02AB06", "sec_drug_date": D}, "systemic corticosteroid (H02AB06) dispensed on 2025-03-02"),
    ],
)
def test_finding_text_has_value_and_date(cols, text):
    assert run(**cols)["secondary_cause"] == text


def test_several_findings_are_listed_and_the_score_is_kept():
    r = run(sec_tsh_max_miu_l=19.0, sec_tsh_date=D, sec_hba1c_max_mmol_mol=80.0, sec_hba1c_date=D)
    assert r["secondary_cause"] == "TSH 19 mIU/L on 2025-03-02; HbA1c 80 mmol/mol on 2025-03-02"
    assert r["dlcn_points"] == 7 and {"secondary.tsh_high", "secondary.hba1c_high"} <= set(r["criteria"])


@pytest.mark.parametrize("cols, text", [
    ({"sec_tsh_max_miu_l": 4.6, "sec_tsh_date": D},
     "For information, not enough to explain this LDL-C level: TSH 4.6 mIU/L on 2025-03-02 (below 10)"),
    ({"sec_hba1c_max_mmol_mol": 52.0, "sec_hba1c_date": D},
     "For information, not enough to explain this LDL-C level: HbA1c 52 mmol/mol on 2025-03-02 (diabetes range, below 75)"),
    ({"sec_egfr_min": 22.0, "sec_egfr_date": D},
     "For information, not enough to explain this LDL-C level: eGFR 22 mL/min/1.73m2 on 2025-03-02"),
])
def test_weaker_findings_are_shown_as_information_and_keep_the_clinic_route(cols, text):
    r = run(**cols)
    assert r["secondary_cause"] is None and r["route"] == "refer_lipid_clinic"
    assert text in r["reasons"]


def test_missing_secondary_tests_are_named():
    r = run()
    assert {"tsh_not_measured", "hba1c_not_measured", "tg_not_measured"} <= set(r["missing_items"])
    assert "no TSH within 90 days of the high LDL-C" in r["missing_information"]


def test_no_secondary_cause_and_not_flagged_routes_nowhere():
    r = score(feature_frame([{"ldl_untreated_estimate_mmol": 3.0, "ldl_max_age_ge40_mmol": 3.0,
                              "sec_tsh_max_miu_l": 12.0}], AS_OF)).row(0, named=True)
    assert r["secondary_cause"] is not None and r["route"] == "none"


TG_MG_DL = 0.011290  # reference/unit_conversions.csv: triglycerides mg/dL -> mmol/L (/ 88.57)


@pytest.mark.parametrize("mmol, found", [(3.99, False), (4.0, False), (4.01, True)])
def test_triglyceride_threshold_in_mg_dl(mmol, found):
    r = run(sec_tg_max_mmol=mmol * 88.57 * TG_MG_DL, sec_tg_date=D)
    assert (r["secondary_cause"] is not None) is found
