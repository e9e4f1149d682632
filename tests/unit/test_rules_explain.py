"""Reason texts: one template per code, rendered the same by Python and polars, in da and en."""

import json
import re
from datetime import date

import polars as pl
import pytest

from fh_screen.stages.features.build import feature_frame
from fh_screen.stages.rules import explain, results, versions
from fh_screen.stages.rules.explain import TEMPLATES, render, text_expr

FIELDS = re.compile(r"\{(\w+)\}")
SAMPLE = {"ldl": "7.9", "date": "2024-05-02", "age": "38", "regimen": "atorvastatin 40 mg", "estimate": "15.3",
          "factor": "1.938", "provenance": "rdrf", "points": "7", "category": "probable", "band": "6.5-8.4",
          "gene": "LDLR", "tc": "9.4", "cutoff": "9.3", "column": "general", "threshold": "5.0",
          "age_band": "40 and over", "value": "14", "albumin": "25", "uacr": "300", "alp": "250", "ggt": "180",
          "drug": "systemic corticosteroid", "atc": "H02AB06", "code": "E780B", "outcome": "pending",
          "equation": "sampson", "basis": "measured_untreated", "lower": "6.5", "upper": "8.5", "days": "10",
          "tc_mg": "364", "second": "5.2", "chd_date": "2025-01-01", "fhx_date": "2025-01-01", "ldl_date": "2025-01-01",
          "before": "5.1"}


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_both_languages_use_the_same_placeholders(code):
    assert set(TEMPLATES[code]) == {"da", "en"}
    assert set(FIELDS.findall(TEMPLATES[code]["da"])) == set(FIELDS.findall(TEMPLATES[code]["en"]))


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_polars_and_python_renderings_agree(code):
    params = {k: SAMPLE[k] for k in FIELDS.findall(TEMPLATES[code]["en"])}
    frame = pl.DataFrame({k: [v] for k, v in params.items()} or {"x": [1]})
    via_polars = frame.select(text_expr(code, {k: pl.col(k) for k in params})).item()
    assert via_polars == render([{"code": code, "params": params}], "en")[0]


def test_english_and_danish_examples():
    item = {"code": "ldl_treated", "params": {k: SAMPLE[k] for k in
                                              ("ldl", "date", "age", "regimen", "estimate", "factor", "provenance")}}
    assert render([item], "en") == ["LDL-C used for scoring: estimated untreated 15.3 mmol/L from 7.9 mmol/L on "
                                    "2024-05-02 at age 38 on atorvastatin 40 mg (x1.938, rdrf table); no untreated "
                                    "value on record"]
    assert render([item], "da") == ["LDL-kolesterol brugt i vurderingen: anslået ubehandlet 15,3 mmol/L ud fra "
                                    "7,9 mmol/L den 02-05-2024 som 38-årig i behandling med atorvastatin 40 mg "
                                    "(x1,938, rdrf-tabel); ingen ubehandlet værdi registreret"]
    score = {"code": "dlcn_score", "params": {"points": "7", "category": "probable"}}
    assert render([score], "da") == ["Dutch Lipid Clinic Network-score 7 point: sandsynlig FH"]


def test_missing_codes_render_without_params():
    assert render(["family_history_not_recorded", "dna_test_not_recorded"], "da") == [
        "familieanamnese ikke registreret", "ingen gentest"]


def test_unknown_language_or_code_is_an_error():
    with pytest.raises(KeyError):
        render(["no_ldl"], "de")
    with pytest.raises(KeyError):
        render(["not_a_code"], "en")


def test_rule_results_items_round_trip_to_the_reasons_column():
    rows = [{"ldl_untreated_estimate_mmol": 7.9 * 1.937984, "ldl_estimate_measured_mmol": 7.9, "ldl_max_mmol": 9.1,
             "ldl_estimate_date": date(2024, 5, 2), "ldl_max_date": date(2019, 1, 1), "ldl_estimate_age": 38,
             "ldl_max_age": 33, "ldl_estimate_treated": True, "ldl_estimate_regimen": "atorvastatin 40 mg",
             "ldl_correction_factor": 1.937984, "ldl_correction_source": "rdrf", "ldl_max_age_lt40_mmol": 9.1,
             "fhx_tendon_xanthoma": True, "clinic_last_outcome": "not_fh",
             "clinic_last_outcome_date": date(2026, 6, 1), "sec_tsh_max_miu_l": 6.2, "sec_tsh_date": date(2024, 5, 1)},
            {"age_years": 12}]
    out = results.score(feature_frame(rows, date(2026, 11, 23)))
    for r in out.iter_rows(named=True):
        items = json.loads(r["reason_items"])
        assert "; ".join(render(items, "en")) == r["reasons"]
        assert len(render(items, "da")) == len(items)
        assert "; ".join(render(r["missing_items"], "en")) == (r["missing_information"] or "")
    first = out.row(0, named=True)
    assert first["reasons"].startswith(
        "the lipid clinic found no FH on 2026-06-01, and there is no new evidence since")
    assert first["rule_versions"].startswith("dlcn 1.2.0")


def test_every_reason_code_has_a_template():
    codes = {r.code for r in results._reason_list()}
    assert codes <= set(TEMPLATES)


def test_versions_name_every_rule_with_a_source():
    v = versions()
    assert {"dlcn", "simon_broome", "medped", "paediatric", "lab_flag", "secondary", "relatives_cutoffs",
            "ldl_estimation", "exclusions"} == set(v)
    assert all(entry["version"] and len(entry["source"]) > 40 for entry in v.values())
    assert "Eur Heart J 2013" in v["dlcn"]["source"]
    assert explain.LANGS == ("da", "en")
