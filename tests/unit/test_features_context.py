"""Patient features around the LDL-C: secondary-cause evidence windows, diagnoses with age at
onset, family-history records, clinic outcomes, relatives' evidence, life events."""

from datetime import date, datetime, timedelta

import pytest

from fh_screen.stages.features.build import build_features, make_inputs

AS_OF = date(2026, 11, 23)
SAMPLE = date(2024, 5, 2)
_seq = iter(range(10**6))


def lab(day, analyte, value, pid="A"):
    return {"patient_id": pid, "result_id": f"r{next(_seq)}", "sampled_at": datetime(day.year, day.month, day.day, 8),
            "analyte": analyte, "method": "measured", "value": value}


def person(pid, birth=date(1980, 6, 15), sex="M", **kw):
    return {"patient_id": pid, "birth_date": birth, "sex": sex, **kw}


def build(patients=None, labs=(), **tables):
    patients = patients or [person("A")]
    labs = [lab(SAMPLE, "ldl", 6.0), *labs]
    return {r["patient_id"]: r for r in build_features(
        make_inputs(patients=patients, lab_results=labs, **tables), AS_OF).iter_rows(named=True)}


@pytest.mark.parametrize("offset, seen", [(-91, False), (-90, True), (0, True), (90, True), (91, False)])
def test_secondary_lab_evidence_within_90_days_of_the_high_sample(offset, seen):
    f = build(labs=[lab(SAMPLE + timedelta(days=offset), "tsh", 12.0)])["A"]
    assert (f["sec_tsh_max_miu_l"] == 12.0) is seen
    assert (f["sec_tsh_date"] == SAMPLE + timedelta(days=offset)) is seen


@pytest.mark.parametrize("offset, seen", [(-15, False), (-14, True), (0, True), (1, False)])
def test_alp_and_ggt_within_14_days_before(offset, seen):
    day = SAMPLE + timedelta(days=offset)
    f = build(labs=[lab(day, "alp", 200.0), lab(day, "ggt", 90.0)])["A"]
    assert (f["sec_alp_max_u_l"] is not None, f["sec_ggt_max_u_l"] is not None) == (seen, seen)


def test_extremes_are_kept_with_their_dates():
    f = build(labs=[lab(SAMPLE - timedelta(days=10), "albumin", 35.0), lab(SAMPLE + timedelta(days=5), "albumin", 28.0),
                    lab(SAMPLE, "egfr", 70.0), lab(SAMPLE + timedelta(days=3), "egfr", 25.0)])["A"]
    assert (f["sec_albumin_min_g_l"], f["sec_albumin_date"]) == (28.0, SAMPLE + timedelta(days=5))
    assert (f["sec_egfr_min"], f["sec_egfr_date"]) == (25.0, SAMPLE + timedelta(days=3))


@pytest.mark.parametrize("days_before, seen", [(-1, False), (0, True), (100, True), (101, False)])
def test_lipid_raising_drug_in_the_100_days_before(days_before, seen):
    meds = [{"patient_id": "A", "atc_code": "H02AB06", "dispensed_on": SAMPLE - timedelta(days=days_before)}]
    assert (build(medications=meds)["A"]["sec_drug_atc"] == "H02AB06") is seen


def test_diagnoses_give_age_at_onset_and_fh_codes():
    dx = [{"patient_id": "A", "icd10_code": "I200", "diagnosed_on": date(2025, 6, 14)},
          {"patient_id": "A", "icd10_code": "I639", "diagnosed_on": date(2026, 1, 1)},
          {"patient_id": "A", "icd10_code": "E780", "diagnosed_on": date(2022, 1, 1)}]
    f = build(diagnoses=dx)["A"]
    assert (f["chd_first_date"], f["chd_first_age"]) == (date(2025, 6, 14), 44)
    assert f["other_cvd_first_age"] == 45
    assert (f["fh_diagnosis"], f["fh_diagnosis_specific"], f["fh_diagnosis_code"]) == (True, False, "E780")
    g = build(diagnoses=[{"patient_id": "A", "icd10_code": "E780B", "diagnosed_on": date(2022, 1, 1)}])["A"]
    assert (g["fh_diagnosis"], g["fh_diagnosis_specific"]) == (True, True)


def test_family_history_items_and_clinic_outcomes():
    fam = [{"patient_id": "A", "item": "tendon_xanthoma", "recorded_on": date(2023, 1, 1)},
           {"patient_id": "A", "item": "premature_chd_first_degree", "recorded_on": date(2024, 1, 1)}]
    out = [{"patient_id": "A", "outcome_date": date(2025, 1, 1), "outcome": "pending"},
           {"patient_id": "A", "outcome_date": date(2025, 6, 1), "outcome": "fh_genetic", "gene": "LDLR"}]
    f = build(family_history=fam, clinic_outcomes=out)["A"]
    assert (f["fhx_tendon_xanthoma"], f["fhx_premature_chd_first_degree"], f["fhx_arcus_before_45"]) == (True, True, False)
    assert (f["fhx_any_recorded"], f["fhx_recorded_on"]) == (True, date(2024, 1, 1))
    assert (f["clinic_confirmed_fh"], f["clinic_gene"], f["clinic_dna_variant"]) == (True, "LDLR", True)
    assert (f["clinic_last_outcome"], f["clinic_last_outcome_date"]) == ("fh_genetic", date(2025, 6, 1))


def test_life_events_after_the_run_date_are_not_known():
    f = build(patients=[person("A", deceased_date=date(2027, 1, 1), moved_out_date=date(2020, 1, 1))])["A"]
    assert (f["is_deceased"], f["deceased_date"], f["is_moved_out"]) == (False, None, True)


def test_relatives_evidence_is_symmetric_and_first_degree():
    patients = [person("A"), person("DAD", date(1950, 1, 1)), person("KID", date(2012, 1, 1), "F")]
    rel = [{"patient_id": "DAD", "relative_id": "A", "relationship": "child"},
           {"patient_id": "A", "relative_id": "KID", "relationship": "child"}]
    dx = [{"patient_id": "DAD", "icd10_code": "I219", "diagnosed_on": date(1999, 6, 1)}]  # age 49
    out = [{"patient_id": "DAD", "outcome_date": date(2010, 1, 1), "outcome": "fh_clinical"}]
    labs = [lab(date(2024, 1, 1), "ldl", 5.0, "KID"), lab(date(2000, 1, 1), "tc", 8.0, "DAD")]
    f = build(patients, labs, relations=rel, diagnoses=dx, clinic_outcomes=out)
    a, kid = f["A"], f["KID"]
    assert (a["n_fdr"], a["fdr_confirmed_fh"], a["fdr_premature_chd"], a["fdr_chd_before_60"]) == (2, True, True, True)
    assert a["fdr_tc_raised"] is True
    assert a["child_ldl_pct_max"] > 99 and a["fdr_ldl_likely"] is True
    assert (kid["n_fdr"], kid["n_sdr"], kid["sdr_confirmed_fh"], kid["sdr_chd_before_50"]) == (1, 1, True, True)
    assert kid["fdr_confirmed_fh"] is False


def test_co_parents_are_not_second_degree_relatives():
    patients = [person("A"), person("B", sex="F"), person("KID", date(2012, 1, 1))]
    rel = [{"patient_id": "A", "relative_id": "KID", "relationship": "child"},
           {"patient_id": "B", "relative_id": "KID", "relationship": "child"}]
    f = build(patients, relations=rel)
    assert (f["A"]["n_fdr"], f["A"]["n_sdr"]) == (1, 0)
    assert (f["KID"]["n_fdr"], f["KID"]["n_sdr"]) == (2, 0)


def test_relatives_missing_from_patients_count_without_evidence():
    f = build(relations=[{"patient_id": "A", "relative_id": "GHOST", "relationship": "sibling"}])["A"]
    assert (f["n_fdr"], f["fdr_confirmed_fh"], f["fdr_ldl_pct_max"]) == (1, False, None)


def test_completeness_counts_what_is_missing():
    f = build()["A"]
    # tc, family history, physical exam, DNA, TSH, HbA1c missing; LDL present
    assert f["n_missing_core"] == 6
