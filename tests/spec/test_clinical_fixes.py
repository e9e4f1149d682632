"""Clinical validity of every worklist line: children (EAS 2015), earlier clinic outcomes, FH
codes, numbers that agree with their words, language, and no model-only clinic referral.
Each cut-off a fix introduces is tested at, below and above it."""

import json
import re
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from fh_screen import reference
from fh_screen.outputs import worklists
from fh_screen.stages.features.build import build_features, feature_frame, make_inputs
from fh_screen.stages.referrals import step as referrals
from fh_screen.stages.rules.explain import render
from fh_screen.stages.rules.results import score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

AS_OF = date(2026, 11, 23)
_ids = iter(range(10**6))


def lab(pid, day, value, analyte="ldl"):
    return {"patient_id": pid, "result_id": f"r{next(_ids)}", "analyte": analyte, "method": "measured",
            "value": value, "sampled_at": datetime(day.year, day.month, day.day, 8)}


def built(patients, labs=(), **tables) -> dict[str, dict]:
    frame = build_features(make_inputs(patients=patients, lab_results=list(labs), **tables), AS_OF)
    results = score(frame)
    return {r["patient_id"]: r for r in results.iter_rows(named=True)}


def one(**cols) -> dict:
    return score(feature_frame([cols], AS_OF)).row(0, named=True)


# ------------------------------------------------------------------ 4. children (EAS 2015)

def test_adult_lab_flag_does_not_refer_a_child_on_one_ldl_measured_at_10():
    r = built([{"patient_id": "K", "birth_date": date(2013, 6, 1), "sex": "F"}],
              [lab("K", date(2023, 7, 1), 4.2)])["K"]
    assert r["lab_flag"] is False and r["route"] == "none"
    assert r["paediatric"] == "not_met"


def test_adult_lab_flag_still_reads_a_sample_taken_at_18():
    r = built([{"patient_id": "A", "birth_date": date(2000, 6, 1), "sex": "F"}],
              [lab("A", date(2018, 7, 1), 4.2)])["A"]
    assert r["lab_flag"] is True


def child(**cols) -> dict:
    return one(age_years=12, child_ldl_max_date=date(2025, 1, 1), **cols)


@pytest.mark.parametrize("second, met", [(4.99, False), (5.0, True), (5.01, True)])
def test_ldl_5_on_two_occasions(second, met):
    r = child(child_ldl_max_mmol=6.0, child_ldl_second_mmol=second)
    assert (r["paediatric"] == "met") is met
    assert (r["route"] == "refer_lipid_clinic") is met


@pytest.mark.parametrize("ldl, met", [(3.99, False), (4.0, True), (4.01, True)])
def test_ldl_4_with_premature_chd_in_a_close_relative(ldl, met):
    assert (child(child_ldl_max_mmol=ldl, fdr_premature_chd=True)["paediatric"] == "met") is met
    assert child(child_ldl_max_mmol=ldl)["paediatric"] == "not_met"


@pytest.mark.parametrize("ldl, met", [(3.49, False), (3.5, True), (3.51, True)])
def test_ldl_3_5_with_a_parent_with_a_genetic_diagnosis(ldl, met):
    r = child(child_ldl_max_mmol=ldl, parent_genetic_fh=True)
    assert (r["paediatric"] == "met") is met
    if met:
        assert "a parent has a genetic FH diagnosis (EAS 2015 paediatric criteria)" in r["reasons"]


@pytest.mark.parametrize("age, probability", [(17, None), (18, 0.9)])
def test_the_adult_model_does_not_score_children(age, probability):
    rows = [f.rule("c", age_years=age, is_child=age < 18, dlcn_points=None, lab_flag=False, simon_broome="not_met",
                   medped="not_met")]
    scores = pl.DataFrame([{"patient_id": "c", "probability": 0.9, "model_name": "m", "model_version": "1"}])
    out = referrals.with_probability(f.rules_frame(rows), scores)
    assert out["probability"][0] == probability
    planned, _ = referrals.plan_referrals(f.rules_frame(rows), scores, f.patients_frame(rows), f.outcomes_frame(),
                                          referrals.empty_events(), f.settings(clinics=[]), AS_OF)
    assert planned.height == 0  # a child with no criterion is never listed on the model


# ------------------------------------------------------------------ 5. earlier clinic outcomes

NOT_FH = {"clinic_last_outcome": "not_fh", "clinic_last_outcome_date": date(2020, 5, 1),
          "clinic_not_fh_date": date(2020, 5, 1)}
HIGH = {"ldl_untreated_estimate_mmol": 9.0, "ldl_estimate_age": 50, "ldl_max_age_ge40_mmol": 9.0,
        "ldl_estimate_date": date(2024, 1, 1)}


@pytest.mark.parametrize("before, listed", [(9.01, False), (9.0, False), (8.99, True)])
def test_relisting_after_not_fh_needs_a_higher_ldl_after_the_outcome(before, listed):
    r = one(**HIGH, **NOT_FH, ldl_max_to_not_fh_mmol=before)
    assert (r["excluded_reason"] is None) is listed
    if listed:
        assert ("Listed again although the lipid clinic found no FH on 2020-05-01: new LDL-C 9.0 mmol/L on "
                "2024-01-01 is higher than any before that outcome (highest 8.99 mmol/L)") in r["reasons"]
    else:
        assert r["excluded_reason"] == "clinic_not_fh" and r["route"] == "none"


def test_not_fh_with_only_older_ldl_is_not_listed_again():
    r = one(**{**HIGH, "ldl_estimate_date": date(2019, 1, 1)}, **NOT_FH, ldl_max_to_not_fh_mmol=9.0)
    assert r["excluded_reason"] == "clinic_not_fh"


def test_did_not_attend_gets_a_reminder_not_a_fresh_referral_and_the_list_says_so():
    rows = [f.rule("d", clinic_last_outcome="did_not_attend", clinic_last_outcome_date=AS_OF - timedelta(days=30))]
    outcomes = f.outcomes_frame([("d", AS_OF - timedelta(days=30), "did_not_attend")])
    planned, _ = referrals.plan_referrals(f.rules_frame(rows), None, f.patients_frame(rows), outcomes,
                                          referrals.empty_events(), f.settings(clinics=[]), AS_OF)
    assert planned["event"].to_list() == ["reminder"]
    r = one(**HIGH, clinic_last_outcome="did_not_attend", clinic_last_outcome_date=date(2026, 10, 20))
    assert "Earlier lipid-clinic outcome: did not attend on 2026-10-20" in r["reasons"]
    assert "Tidligere svar fra lipidklinikken: udeblev den 20-10-2026" in "; ".join(
        render(json.loads(r["reason_items"]), "da"))


# ------------------------------------------------------------------ 7. codes

def test_plain_e78_0_is_information_and_de780b_is_a_diagnosis():
    people = [{"patient_id": p, "birth_date": date(1970, 1, 1), "sex": "F"} for p in ("plain", "fh")]
    labs = [lab(p, date(2024, 1, 1), 9.0) for p in ("plain", "fh")]
    dx = [{"patient_id": "plain", "icd10_code": "E780", "diagnosed_on": date(2019, 1, 1)},
          {"patient_id": "fh", "icd10_code": "E780B", "diagnosed_on": date(2019, 1, 1)}]
    r = built(people, labs, diagnoses=dx)
    assert r["plain"]["excluded_reason"] is None and r["plain"]["route"] == "refer_lipid_clinic"
    assert "Recorded diagnosis E780 (pure hypercholesterolaemia) on 2019-01-01: not an FH diagnosis" in r["plain"]["reasons"]
    assert r["fh"]["excluded_reason"] == "already_diagnosed"


@pytest.mark.parametrize("code, counts", [("I730", False), ("I731", False), ("I739", True), ("I702", True)])
def test_raynaud_is_not_premature_peripheral_vascular_disease(code, counts):
    people = [{"patient_id": "A", "birth_date": date(1980, 1, 1), "sex": "F"}]
    r = built(people, [lab("A", date(2024, 1, 1), 5.5)],
              diagnoses=[{"patient_id": "A", "icd10_code": code, "diagnosed_on": date(2020, 1, 1)}])["A"]
    assert (r["dlcn_clinical_points"] == 1) is counts


@pytest.mark.parametrize("outcome, points", [("fh_genetic", 8), ("fh_clinical", 0), ("not_fh", 0)])
def test_dna_points_only_for_a_causative_variant(outcome, points):
    people = [{"patient_id": "A", "birth_date": date(1960, 1, 1), "sex": "F"}]
    outcomes = [{"patient_id": "A", "outcome_date": date(2015, 1, 1), "outcome": outcome, "gene": "LDLR"}]
    r = built(people, [lab("A", date(2024, 1, 1), 5.5)], clinic_outcomes=outcomes)["A"]
    assert r["dlcn_dna_points"] == points
    if not points:
        assert "Lipid clinic named the gene LDLR without concluding genetic FH" in r["reasons"]


# ------------------------------------------------------------------ 8. numbers agree with words

BAND = re.compile(r"LDL-C (\d+\.\d+) mmol/L is (?:in the band (\d+\.\d) to under (\d+\.\d)|(\d+\.\d) mmol/L or above)")


@pytest.mark.parametrize("value", [3.999, 4.0, 4.949, 4.95, 4.995, 4.999, 5.0, 6.449, 6.495, 6.5, 8.449, 8.495, 8.5])
def test_the_printed_ldl_lies_in_the_printed_band(value):
    r = one(ldl_untreated_estimate_mmol=value, ldl_estimate_measured_mmol=value, ldl_estimate_date=date(2024, 1, 1),
            ldl_estimate_age=50)
    m = BAND.search(r["reasons"])
    if m is None:
        assert r["dlcn_ldl_points"] == 0 and float(f"{value:.2f}") < 4.0
        return
    shown = float(m[1])
    lower = float(m[2] or m[4])
    upper = float(m[3]) if m[3] else float("inf")
    assert lower <= shown < upper


def test_referrals_csv_has_at_most_the_stated_decimals():
    rows = [f.rule("a", ldl_max_mmol=11.180122200000001, ldl_untreated_estimate_mmol=4.123456)]
    scores = pl.DataFrame([{"patient_id": "a", "probability": 0.123456789, "model_name": "m", "model_version": "1"}])
    planned, _ = referrals.plan_referrals(f.rules_frame(rows), scores, f.patients_frame(rows), f.outcomes_frame(),
                                          referrals.empty_events(), f.settings(clinics=[]), AS_OF)
    text = referrals.referrals_table(planned).write_csv()
    assert "11.18," in text and "4.12," in text and "0.12," in text
    assert "11.1801" not in text and "0.1234" not in text


# ------------------------------------------------------------------ 9. language

def test_danish_band_text_has_decimal_commas_and_no_english():
    r = one(ldl_untreated_estimate_mmol=4.5, ldl_estimate_measured_mmol=4.5, ldl_estimate_date=date(2024, 1, 1),
            ldl_estimate_age=50)
    da = "; ".join(render(json.loads(r["reason_items"]), "da"))
    assert "Målt ubehandlet LDL-kolesterol 4,5 mmol/L ligger i intervallet 4,0 til under 5,0 mmol/L (+1)".lower() in da.lower()
    assert not re.search(r"\d\.\d", da.replace("2024-01-01", ""))


def test_family_items_say_whose_history_it_is():
    r = one(ldl_untreated_estimate_mmol=5.5, age_years=35, child_ldl_pct_max=99.0)
    assert "Family history: the patient's own child (under 18) has LDL-C above the 95th percentile" in r["reasons"]


def test_danish_secondary_cause_line_is_danish():
    row = {"reason_items": json.dumps([{"code": "sec_tsh", "params": {"value": "14", "date": "2026-10-30"}}]),
           "secondary_cause": "TSH 14 mIU/L on 2026-10-30"}
    assert worklists.secondary_line(row, "da", render) == "TSH 14 mIU/L den 30-10-2026"


@pytest.mark.parametrize("age, older", [(44, False), (45, True), (46, True), (96, True)])
def test_arcus_is_examined_only_before_45(age, older):
    """dlcn_v1 decision arcus_before_age: examined below 45, asked about from 45 on (both languages)."""
    row = {"age_years": age, "missing_items": ["physical_exam_not_recorded"]}
    english = worklists.check_lines(row, "en", render)[0]["text"]
    danish = worklists.check_lines(row, "da", render)[0]["text"]
    assert ("ask whether corneal arcus was seen before age 45" in english) is older
    assert ("and corneal arcus before age 45" in english) is not older
    assert ("spørg, om arcus corneae blev set før 45 års alder" in danish) is older
    assert ("og arcus corneae før 45 år" in danish) is not older


def test_arcus_age_is_the_rules_named_threshold():
    """The cut-off is data in the versioned, cited DLCN rule, with its decision, not a literal in the code."""
    rule = reference.load("dlcn_v1")
    assert rule["arcus_before_age"] == 45 == worklists.ARCUS_BEFORE_AGE
    assert any(d.startswith("arcus_before_age (") and "Table 1" in d for d in rule["decisions"])
    assert "arcus_before_45" in {i["code"] for g in rule["groups"] for i in g["items"]}


def test_one_point_is_singular():
    row = {**f.rule("a", dlcn_points=1, dlcn_category="unlikely"), "rank": 1, "event": "listed"}
    view = worklists.patient_view(row, {"labs": {}, "drugs": [], "name": None}, "en", render, {})
    assert view["dlcn"] == "1 point (unlikely)"


# ------------------------------------------------------------------ 10. no model-only clinic referral

def test_no_clinic_referral_on_the_model_alone():
    features = [{"ldl_untreated_estimate_mmol": 3.4, "ldl_estimate_age": 50, "ldl_max_age_ge40_mmol": 3.4,
                 "fhx_premature_chd_first_degree": True, "fhx_premature_chd_self": False}]
    r = score(feature_frame(features, AS_OF)).row(0, named=True)
    assert (r["dlcn_points"], r["clinical_criterion"], r["route"]) == (1, False, "none")
    rows = [f.rule("m", dlcn_points=2, dlcn_category="unlikely", lab_flag=False, simon_broome="not_met",
                   medped="not_met", route="none", ldl_untreated_estimate_mmol=3.4)]
    scores = pl.DataFrame([{"patient_id": "m", "probability": 0.95, "model_name": "m", "model_version": "1"}])
    planned, _ = referrals.plan_referrals(f.rules_frame(rows), scores, f.patients_frame(rows), f.outcomes_frame(),
                                          referrals.empty_events(), f.settings(clinics=[]), AS_OF)
    assert planned.height == 0


@pytest.mark.parametrize("points, criterion", [(2, False), (3, True), (4, True)])
def test_dlcn_3_is_the_clinical_criterion_the_model_needs(points, criterion):
    rows = [f.rule("m", dlcn_points=points, lab_flag=False, simon_broome="not_met", medped="not_met", route="none")]
    scores = pl.DataFrame([{"patient_id": "m", "probability": 0.95, "model_name": "m", "model_version": "1"}])
    planned, _ = referrals.plan_referrals(f.rules_frame(rows), scores, f.patients_frame(rows), f.outcomes_frame(),
                                          referrals.empty_events(), f.settings(clinics=[]), AS_OF)
    assert (planned.height == 1) is criterion


def test_simon_broome_possible_routes_and_selects_alike():
    rows = [f.rule("s", dlcn_points=4, lab_flag=False, simon_broome="possible", medped="not_met")]
    planned, _ = referrals.plan_referrals(f.rules_frame(rows), None, f.patients_frame(rows), f.outcomes_frame(),
                                          referrals.empty_events(), f.settings(clinics=[]), AS_OF)
    assert planned["selected_by"].to_list() == ["simon_broome"]
    assert planned["route"].to_list() == ["refer_lipid_clinic"]
