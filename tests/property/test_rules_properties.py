"""Invariants of the rules and the untreated-LDL estimate, checked on generated patients."""

from datetime import date, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from fh_screen.stages.features.build import build_features, feature_frame, make_inputs
from fh_screen.stages.rules import dlcn_v1
from fh_screen.reference import csv
from fh_screen.stages.rules.results import evaluate

AS_OF = date(2026, 11, 23)
BASE = feature_frame([{}], AS_OF)
SCHEMA, DEFAULTS = BASE.schema, BASE.row(0, named=True)
MG_DL = csv("unit_conversions").filter((pl.col("analyte") == "ldl") & (pl.col("unit") == "mg/dL"))["factor"][0]
EVIDENCE = ("fdr_premature_chd", "fhx_premature_chd_first_degree", "fdr_xanthoma_or_arcus",
            "fhx_high_ldl_first_degree_adult", "fhx_high_ldl_child_relative", "fhx_premature_chd_self",
            "fhx_premature_pvd_self", "fhx_tendon_xanthoma", "fhx_arcus_before_45", "clinic_dna_variant")
GROUP_MAX = {"dlcn_family_points": 2, "dlcn_clinical_points": 2, "dlcn_exam_points": 6, "dlcn_ldl_points": 8,
             "dlcn_dna_points": 8}

ldl_values = st.integers(min_value=100, max_value=1500).map(lambda x: x / 100)  # reported at 0.01 mmol/L
patients = st.fixed_dictionaries(
    {
        "age_years": st.integers(min_value=0, max_value=95),
        "sex": st.sampled_from(["M", "F", "U"]),
        "ldl_untreated_estimate_mmol": st.one_of(st.none(), ldl_values),
        "chd_first_age": st.one_of(st.none(), st.integers(min_value=20, max_value=90)),
        "other_cvd_first_age": st.one_of(st.none(), st.integers(min_value=20, max_value=90)),
        "fdr_ldl_pct_max": st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
        "child_ldl_pct_max": st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
        **{name: st.booleans() for name in EVIDENCE},
    }
)


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([{**DEFAULTS, **r, "patient_id": f"P{i}"} for i, r in enumerate(rows)], schema=SCHEMA)


def score(features: pl.DataFrame) -> pl.DataFrame:
    """The rule columns (``results.evaluate``; texts are tested in the spec tests)."""
    return evaluate(features).collect()


@settings(max_examples=40, deadline=None)
@given(st.lists(patients, min_size=1, max_size=20), st.sampled_from(EVIDENCE), st.integers(0, 300))
def test_adding_a_criterion_never_lowers_dlcn_points(rows, criterion, ldl_increase):
    more = [{**r, criterion: True} for r in rows]
    higher_ldl = [{**r, "ldl_untreated_estimate_mmol": None if r["ldl_untreated_estimate_mmol"] is None
                   else r["ldl_untreated_estimate_mmol"] + ldl_increase / 100} for r in rows]
    before = score(frame(rows))["dlcn_points"].to_list()
    for after in (score(frame(more))["dlcn_points"], score(frame(higher_ldl))["dlcn_points"]):
        for b, a in zip(before, after.to_list()):
            assert (b is None) == (a is None)
            assert b is None or a >= b


@settings(max_examples=40, deadline=None)
@given(st.lists(patients, min_size=1, max_size=20))
def test_points_are_the_sum_of_capped_groups_and_match_the_category(rows):
    out = score(frame(rows))
    for r in out.iter_rows(named=True):
        if r["dlcn_status"] != "scored":
            assert r["dlcn_points"] is None and r["dlcn_category"] == "not_calculable"
            continue
        assert r["dlcn_points"] == sum(r[c] for c in GROUP_MAX)
        assert all(0 <= r[c] <= cap for c, cap in GROUP_MAX.items())
        expected = next(c["category"] for c in sorted(dlcn_v1.RULE["categories"], key=lambda c: -c["min_points"])
                        if r["dlcn_points"] >= c["min_points"])
        assert r["dlcn_category"] == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(ldl_values, ldl_values, st.integers(1, 90), st.booleans()), min_size=1, max_size=20))
def test_rescaled_mg_dl_input_gives_the_same_results(values):
    def rows(conv):
        return [{"age_years": max(age, 18) if age >= 16 else age, "ldl_untreated_estimate_mmol": conv(ldl),
                 "ldl_max_mmol": conv(ldl), "ldl_max_untreated_mmol": conv(ldl), "ldl_max_age": age,
                 "ldl_max_untreated_age": age, "ldl_estimate_age": age, "tc_max_mmol": conv(tc + 1),
                 "tc_max_untreated_mmol": conv(tc + 1), "tc_max_age": age, "tc_max_untreated_age": age,
                 "ldl_max_age_lt40_mmol": conv(ldl) if age < 40 else None,
                 "ldl_max_age_ge40_mmol": conv(ldl) if age >= 40 else None, "fdr_confirmed_fh": rel,
                 "fdr_chd_before_60": rel}
                for ldl, tc, age, rel in values]

    cols = ["dlcn_points", "dlcn_category", "dlcn_status", "simon_broome", "medped", "lab_flag", "route",
            "relative_cutoff_category"]
    mmol = score(frame(rows(lambda v: v))).select(cols)
    mg_dl = score(frame(rows(lambda v: (v * 38.67) * MG_DL))).select(cols)
    assert mmol.equals(mg_dl)


MEDS = [("C10AA01", 40), ("C10AA05", 80), ("C10AA07", 5), ("C10AA03", 20), ("C10BA02", 20), ("C10AX09", 10),
        ("C10AX13", 140), ("C10AX16", 284), ("C10AA05", 30), ("C10AB05", 145), ("C10AC01", 4000), ("C10AA08", 2)]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3000), ldl_values), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 3000), st.sampled_from(MEDS)), max_size=8),
)
def test_measured_untreated_ldl_scores_first_and_estimates_stay_capped(samples, dispensings):
    start = date(2017, 1, 1)
    labs = [{"patient_id": "A", "result_id": f"r{i}", "analyte": "ldl", "method": "measured", "value": v,
             "sampled_at": datetime.combine(start + timedelta(days=d), datetime.min.time())}
            for i, (d, v) in enumerate(samples)]
    meds = [{"patient_id": "A", "atc_code": atc, "strength_mg": mg, "dispensed_on": start + timedelta(days=d)}
            for d, (atc, mg) in dispensings]
    f = build_features(make_inputs(patients=[{"patient_id": "A", "birth_date": date(1970, 1, 1), "sex": "F"}],
                                   lab_results=labs, medications=meds), AS_OF).row(0, named=True)
    if f["ldl_max_untreated_mmol"] is not None:  # decision ldl_precedence
        assert f["ldl_untreated_estimate_mmol"] == f["ldl_max_untreated_mmol"]
        assert f["ldl_estimate_basis"] == "measured_untreated"
    assert f["ldl_untreated_estimate_mmol"] >= f["ldl_estimate_measured_mmol"]
    assert 1.0 <= f["ldl_correction_factor"] <= 2.5  # decision ldl_factor_cap
    assert (f["ldl_correction_factor"] > 1.0) == (f["ldl_estimate_basis"] == "estimated_from_treated")
