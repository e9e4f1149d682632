"""Who is not newly flagged, and where flagged patients are routed."""

from datetime import date, timedelta

import pytest

from fh_screen.stages.features.build import feature_frame
from fh_screen.stages.rules.results import Policy, score

AS_OF = date(2026, 11, 23)
HIGH = {"ldl_untreated_estimate_mmol": 9.0, "ldl_estimate_age": 50, "ldl_max_age_ge40_mmol": 9.0}


def run(policy=Policy(), **cols) -> dict:
    return score(feature_frame([{**HIGH, **cols}], AS_OF), policy).row(0, named=True)


@pytest.mark.parametrize(
    "cols, reason",
    [
        ({}, None),
        ({"is_deceased": True}, "deceased"),
        ({"is_moved_out": True}, "moved_out"),
        ({"fh_diagnosis_specific": True, "fh_specific_code": "E780B", "fh_specific_date": date(2020, 1, 1)},
         "already_diagnosed"),
        ({"fh_diagnosis": True, "e780_code": "E780", "e780_date": date(2020, 1, 1)}, None),  # pure hypercholesterolaemia
        ({"clinic_confirmed_fh": True, "clinic_confirmed_date": date(2021, 1, 1)}, "already_diagnosed"),
        ({"clinic_last_outcome": "pending", "clinic_last_outcome_date": date(2019, 1, 1)}, "under_clinic_care"),
        ({"clinic_last_outcome": "not_fh", "clinic_last_outcome_date": AS_OF - timedelta(days=365),
          "clinic_not_fh_date": AS_OF - timedelta(days=365)}, "clinic_not_fh"),
        ({"clinic_last_outcome": "not_fh", "clinic_last_outcome_date": date(2020, 5, 1),
          "clinic_not_fh_date": date(2020, 5, 1)}, "clinic_not_fh"),
        ({"clinic_last_outcome": "did_not_attend", "clinic_last_outcome_date": AS_OF - timedelta(days=10)}, None),
        ({"clinic_last_outcome": "declined", "clinic_last_outcome_date": AS_OF - timedelta(days=10)}, None),
        ({"is_deceased": True, "fh_diagnosis_specific": True}, "deceased"),
        ({"is_moved_out": True, "clinic_last_outcome": "pending"}, "moved_out"),
    ],
)
def test_excluded_reason(cols, reason):
    r = run(**cols)
    assert r["excluded_reason"] == reason
    assert r["route"] == ("refer_lipid_clinic" if reason is None else "none")


def test_excluded_patient_still_gets_scores_and_a_reason():
    r = run(fh_diagnosis_specific=True, fh_specific_code="E780B", fh_specific_date=date(2020, 1, 1))
    assert r["dlcn_points"] == 8
    assert r["reasons"].startswith("already diagnosed: E780B on 2020-01-01")


@pytest.mark.parametrize("cutoff, ldl, route", [(6, 6.5, "none"), (5, 6.5, "refer_lipid_clinic"),
                                                (6, 8.5, "refer_lipid_clinic")])
def test_dlcn_cutoff_comes_from_policy(cutoff, ldl, route):
    r = score(feature_frame([{"ldl_untreated_estimate_mmol": ldl, "ldl_estimate_age": 50}], AS_OF),
              Policy(dlcn_min_points=cutoff)).row(0, named=True)
    assert r["route"] == route


def test_dlcn_6_refers_dlcn_5_does_not():
    six = run(ldl_untreated_estimate_mmol=5.0, ldl_max_age_ge40_mmol=None, fhx_premature_chd_self=True,
              fhx_premature_chd_first_degree=True)
    five = run(ldl_untreated_estimate_mmol=6.5, ldl_max_age_ge40_mmol=None)
    assert (six["dlcn_points"], six["route"]) == (6, "refer_lipid_clinic")
    assert (five["dlcn_points"], five["route"]) == (5, "none")


def test_simon_broome_possible_refers_a_child():
    r = score(feature_frame([{"age_years": 12, "ldl_max_mmol": 4.5, "ldl_max_age": 12, "ldl_max_untreated_mmol": 4.5,
                              "ldl_max_untreated_age": 12, "ldl_untreated_estimate_mmol": 4.5, "ldl_estimate_age": 12,
                              "fdr_chd_before_60": True}], AS_OF)).row(0, named=True)
    assert (r["dlcn_status"], r["simon_broome"], r["route"]) == ("out_of_scope", "possible", "refer_lipid_clinic")
