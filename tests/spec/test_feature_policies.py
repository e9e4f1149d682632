"""The named policies of the patient features, one table row per case: the treated LDL-C
factor (``features.build``: base regimen, PCSK9 add-on, time to effect and cap, regimen
text), the paediatric LDL-C, a relative's evidence and what first- and second-degree
relatives add up to, and the family graph's second-degree labels (``features.family``).
Each cut-off is tested below, at and above. Tiny frames, no database."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from fh_screen import reference
from fh_screen.stages.features import family
from fh_screen.stages.features.build import (
    applied_factor, base_regimen_cases, child_ldl, feature_frame, first_case, first_degree_summary, pcsk9_addon,
    regimen_text, relative_evidence, second_degree_summary,
)

AS_OF = date(2026, 11, 23)
TREATMENT = reference.load("ldl_estimation_v2")["treatment"]
FALLBACK, CAP = TREATMENT["fallback_factor"], TREATMENT["max_factor"]
EZE = {"factor": 1.236094, "provenance": "rdrf"}
ON = date(2026, 1, 1)
SAMPLE_SCHEMA = {"statin_on": pl.Date, "eze_on": pl.Date, "other_on": pl.Date, "pcsk9_on": pl.Date,
                 "f_statin": pl.Float64, "p_statin": pl.Utf8, "f_combo": pl.Float64, "p_combo": pl.Utf8,
                 "pcsk9_class": pl.Utf8, "pcsk9_drug": pl.Utf8, "other_drug": pl.Utf8, "statin_drug": pl.Utf8,
                 "statin_mg": pl.Float64}


def _sample(**fields) -> pl.DataFrame:
    on = {f"{k}_on": ON for k in ("statin", "eze", "other", "pcsk9") if fields.pop(k, False)}
    return pl.DataFrame([{**on, **fields}], schema=SAMPLE_SCHEMA)


@pytest.mark.parametrize("fields, factor, provenance", [
    ({}, 1.0, None),
    ({"statin": True, "eze": True, "f_combo": 2.0, "p_combo": "rdrf", "f_statin": 1.6}, 2.0, "rdrf"),
    ({"statin": True, "eze": True, "f_statin": 1.6, "p_statin": "rdrf"}, 1.6 * EZE["factor"], "rdrf_product"),
    ({"statin": True, "f_statin": 1.6, "p_statin": "nice_derived"}, 1.6, "nice_derived"),
    ({"statin": True, "f_combo": 2.0, "p_combo": "rdrf"}, FALLBACK, "fallback_1.43"),   # combo row needs ezetimibe
    ({"statin": True}, FALLBACK, "fallback_1.43"),                                      # dose not tabulated
    ({"statin": True, "eze": True}, FALLBACK, "fallback_1.43"),
    ({"eze": True}, EZE["factor"], "rdrf"),
    ({"eze": True, "other": True}, EZE["factor"], "rdrf"),                              # ezetimibe before other
    ({"other": True}, FALLBACK, "fallback_1.43"),
    ({"pcsk9": True}, 1.0, None),                                                       # the add-on is apart
])
def test_base_regimen_first_matching_row_wins(fields, factor, provenance):
    cases = base_regimen_cases(EZE, FALLBACK)
    got = _sample(**fields).select(first_case(cases, 1, pl.lit(1.0)).alias("f"), first_case(cases, 2).alias("p"))
    assert got.row(0) == (pytest.approx(factor), provenance)


@pytest.mark.parametrize("fields, factor, provenance", [
    ({"pcsk9": True, "pcsk9_class": "pcsk9_mab"}, 2.5, "eas2014_derived"),
    ({"pcsk9": True, "pcsk9_class": "pcsk9_sirna"}, 2.0, "memory_unverified"),
    ({}, 1.0, None),
])
def test_pcsk9_addon_multiplies_onto_the_base(fields, factor, provenance):
    addon = {r["drug"]: r for r in reference.csv("ldl_correction_factors").filter(pl.col("regimen") == "addon")
             .iter_rows(named=True)}
    f, p = pcsk9_addon(addon)
    assert _sample(**fields).select(f.alias("f"), p.alias("p")).row(0) == (factor, provenance)


@pytest.mark.parametrize("raw, early, applied", [
    (2.0, True, 1.0),                      # before the drug had time to act: as measured
    (CAP - 0.01, False, CAP - 0.01), (CAP, False, CAP), (CAP + 0.01, False, CAP),
    (CAP + 1, True, 1.0),
])
def test_applied_factor_time_to_effect_and_cap(raw, early, applied):
    assert pl.select(applied_factor(pl.lit(raw), pl.lit(early), CAP)).item() == pytest.approx(applied)


@pytest.mark.parametrize("fields, text", [
    ({}, None),
    ({"statin": True, "statin_drug": "atorvastatin", "statin_mg": 40.0}, "atorvastatin 40 mg"),
    ({"statin": True, "statin_drug": "simvastatin", "statin_mg": 12.5, "eze": True}, "simvastatin 12.5 mg + ezetimibe"),
    ({"statin": True, "statin_drug": "unknown"}, "unknown"),
    ({"pcsk9": True, "pcsk9_drug": "evolocumab", "other": True, "other_drug": "colestyramine"},
     "evolocumab + colestyramine"),
])
def test_regimen_text(fields, text):
    assert _sample(**fields).select(regimen_text()).item() == text


@pytest.mark.parametrize("samples, expected", [
    ([(17, False, 5.0), (17, False, 6.0), (17, False, 4.0)], (6.0, 5.0, 2)),   # (value, second, day of value)
    ([(18, False, 9.0), (17, False, 4.0)], (4.0, None, 2)),        # 18: an adult's sample
    ([(17, True, 9.0), (17, False, 4.0)], (4.0, None, 2)),         # treated samples do not count
    ([(18, False, 9.0)], (None, None, None)),
])
def test_child_ldl_is_untreated_and_before_18(samples, expected):
    frame = pl.DataFrame([{"patient_id": "A", "age_at_sample": a, "treated": t, "ldl": v,
                           "sample_date": date(2020, 1, 1 + i)} for i, (a, t, v) in enumerate(samples)])
    highest, second, day = frame.group_by("patient_id").agg(*child_ldl()).drop("patient_id").row(0)
    assert (highest, second, None if day is None else day.day) == expected


def _evidence(**fields) -> dict:
    return relative_evidence(feature_frame([fields], AS_OF)).row(0, named=True)


@pytest.mark.parametrize("sex, age, premature", [
    ("M", 54, True), ("M", 55, False), ("M", 56, False),
    ("F", 59, True), ("F", 60, False), ("F", 61, False),
    ("U", 54, True), ("U", 55, False),
])
def test_premature_chd_of_a_relative_by_sex(sex, age, premature):
    assert _evidence(sex=sex, chd_first_age=age)["premature_chd"] is premature


@pytest.mark.parametrize("age, chd60, chd50", [(49, True, True), (50, True, False), (59, True, False),
                                               (60, False, False), (61, False, False)])
def test_simon_broome_mi_ages_of_relatives(age, chd60, chd50):
    e = _evidence(chd_first_age=age)
    assert (e["chd60"], e["chd50"]) == (chd60, chd50)


@pytest.mark.parametrize("tc_age, tc, raised", [
    (15, 6.69, False), (15, 6.7, False), (15, 6.71, True),      # a child below 16: above 6.7
    (16, 6.71, False), (16, 7.5, False), (16, 7.51, True),      # from 16: above 7.5
])
def test_raised_total_cholesterol_of_a_relative(tc_age, tc, raised):
    e = _evidence(tc_max_mmol=tc, tc_max_age=tc_age)
    assert e["tc_raised"] is raised and e["high_cholesterol"] is raised


@pytest.mark.parametrize("fields, flags", [
    ({"clinic_confirmed_fh": True}, {"confirmed", "high_cholesterol"}),
    ({"fh_diagnosis_specific": True}, {"confirmed"}),
    ({"fhx_tendon_xanthoma": True}, {"xanthoma", "xanthoma_or_arcus"}),
    ({"fhx_arcus_before_45": True}, {"xanthoma_or_arcus"}),
    ({"clinic_dna_variant": True}, {"genetic"}),
    ({"age_years": 17}, {"is_child"}),
    ({"age_years": 18}, set()),
    ({}, set()),
])
def test_relative_evidence_flags(fields, flags):
    e = _evidence(**fields)
    assert {k for k, v in e.items() if v is True} == flags


def _summed(rows: list[dict], summary) -> dict:
    ev = relative_evidence(feature_frame([{"patient_id": r["relative_id"], **r["features"]} for r in rows], AS_OF))
    links = pl.DataFrame([{"patient_id": "I", "relative_id": r["relative_id"], "relationship": r["relationship"]}
                          for r in rows])
    return links.join(ev, on="relative_id").group_by("patient_id").agg(*summary()).row(0, named=True)


@pytest.mark.parametrize("relationship, features, item, value", [
    ("parent", {"clinic_dna_variant": True}, "parent_genetic_fh", True),
    ("sibling", {"clinic_dna_variant": True}, "parent_genetic_fh", False),
    ("parent", {"tc_max_mmol": 7.51, "tc_max_age": 40}, "parent_high_cholesterol", True),
    ("child", {"tc_max_mmol": 7.51, "tc_max_age": 40}, "parent_high_cholesterol", False),
    ("child", {"ldl_percentile": 97.0, "age_years": 10}, "child_ldl_pct_max", 97.0),
    ("child", {"ldl_percentile": 97.0, "age_years": 18}, "child_ldl_pct_max", None),   # an adult child
    ("sibling", {"ldl_percentile": 97.0, "age_years": 10}, "child_ldl_pct_max", None),
    ("sibling", {"ldl_percentile": 97.0}, "fdr_ldl_pct_max", 97.0),
    ("sibling", {"chd_first_age": 59}, "fdr_chd_before_60", True),
])
def test_first_degree_items(relationship, features, item, value):
    summary = _summed([{"relative_id": "R", "relationship": relationship, "features": features}], first_degree_summary)
    assert summary[item] == value and summary["n_fdr"] == 1


def test_second_degree_items_count_each_relative_once():
    rows = [{"relative_id": "G", "relationship": "grandparent", "features": {"chd_first_age": 49}},
            {"relative_id": "U", "relationship": "aunt_uncle", "features": {"fhx_tendon_xanthoma": True}}]
    s = _summed(rows, second_degree_summary)
    assert (s["n_sdr"], s["sdr_chd_before_50"], s["sdr_tendon_xanthoma"], s["sdr_confirmed_fh"]) == (2, True, True, False)


@pytest.mark.parametrize("rows, relative, relationship", [
    ([("I", "P", "parent"), ("P", "G", "parent")], "G", "grandparent"),
    ([("I", "P", "parent"), ("P", "A", "sibling")], "A", "aunt_uncle"),
    ([("I", "C", "child"), ("C", "G", "child")], "G", "grandchild"),
    ([("I", "S", "sibling"), ("S", "N", "child")], "N", "niece_nephew"),
    ([("I", "C", "child"), ("C", "X", "parent")], "X", None),      # the other parent of one's child
    ([("I", "P", "parent"), ("P", "Q", "child")], "Q", "sibling"),  # a shared parent, other parent unknown
    ([("I", "P", "parent"), ("I", "M", "parent"), ("Q", "P", "parent"), ("Q", "N", "parent")], "Q", "half_sibling"),
    ([("I", "P", "parent"), ("P", "G", "parent"), ("I", "G", "parent")], "G", "parent"),   # closest path wins
])
def test_second_degree_labels(rows, relative, relationship):
    relations = pl.DataFrame(rows, schema=["patient_id", "relative_id", "relationship"], orient="row")
    graph = family.relatives(relations, pl.Series(["I"]), None)
    found = graph.filter(pl.col("relative_id") == relative)
    assert (found["relationship"].item() if found.height else None) == relationship
    if relationship is not None:
        assert found["degree"].item() == family.DEGREE[relationship]
