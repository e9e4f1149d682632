"""Relatives' LDL-C cut-offs by age and sex, as the cascade reads a relative's latest LDL-C
(fh_screen.stages.rules.relatives_cutoffs_v1.category), at every boundary."""

import polars as pl
import pytest

from fh_screen.stages.rules import relatives_cutoffs_v1

# docs/clinical-reference.md §8, as published (unlikely < a; uncertain a..b; likely >= c), mmol/L.
GUIDELINE = {
    "M": [((0, 15), 3.1, 3.5), ((15, 25), 3.0, 3.5), ((25, 35), 3.8, 4.6), ((35, 45), 4.0, 4.8), ((45, 55), 4.4, 5.3), ((55, None), 4.3, 5.3)],
    "F": [((0, 15), 3.4, 3.8), ((15, 25), 3.3, 3.9), ((25, 35), 3.6, 4.3), ((35, 45), 3.7, 4.4), ((45, 55), 4.0, 4.9), ((55, None), 4.4, 5.3)],
}
CASES = [
    (sex, lo, hi, uncertain, likely)
    for sex, bands in GUIDELINE.items()
    for (lo, hi), uncertain, likely in bands
]


def classify(sex, age, ldl):
    frame = pl.DataFrame({"sex": [sex], "age": [age], "ldl": [ldl]}, schema={"sex": pl.Utf8, "age": pl.Int32, "ldl": pl.Float64})
    return frame.select(relatives_cutoffs_v1.category(pl.col("ldl"), pl.col("age"), pl.col("sex"))).item()


def test_reference_table_matches_the_cited_table():
    got = [
        (sex, r["age_from"], None if r["age_to"] >= 200 else r["age_to"] + 1, r["uncertain_from"], r["likely_from"])
        for sex, rows in relatives_cutoffs_v1.RULE["table"].items()
        for r in rows
    ]
    assert sorted(got, key=str) == sorted(CASES, key=str)


@pytest.mark.parametrize(("sex", "lo", "hi", "uncertain", "likely"), CASES)
def test_ldl_boundaries_are_half_open(sex, lo, hi, uncertain, likely):
    for age in {lo, (hi - 1) if hi else lo + 40}:
        assert classify(sex, age, round(uncertain - 0.01, 2)) == "unlikely"
        assert classify(sex, age, uncertain) == "uncertain"
        assert classify(sex, age, round(likely - 0.01, 2)) == "uncertain"
        assert classify(sex, age, likely) == "likely"
        assert classify(sex, age, round(likely + 0.01, 2)) == "likely"


@pytest.mark.parametrize(
    ("sex", "ldl", "younger_age", "younger", "older"),
    [
        ("M", 3.05, 14, "unlikely", "uncertain"),  # 0-14: uncertain from 3.1; 15-24: from 3.0
        ("M", 3.9, 24, "likely", "uncertain"),  # likely from 3.5 at 24; 25-34 uncertain from 3.8
        ("M", 4.35, 54, "unlikely", "uncertain"),  # 45-54 from 4.4; >=55 from 4.3
        ("F", 3.35, 14, "unlikely", "uncertain"),  # 0-14 from 3.4; 15-24 from 3.3
        ("F", 4.35, 44, "uncertain", "uncertain"),
        ("F", 4.9, 54, "likely", "uncertain"),  # 45-54 likely from 4.9; >=55 from 5.3
    ],
)
def test_age_band_edges(sex, ldl, younger_age, younger, older):
    assert classify(sex, younger_age, ldl) == younger
    assert classify(sex, younger_age + 1, ldl) == older


def test_unknown_sex_or_age_is_not_classified():
    # the table is sex-specific: the cascade reports such a result as not_classifiable
    assert classify("U", 40, 5.0) is None
    assert classify("M", None, 5.0) is None
    assert classify("M", -1, 5.0) is None


def test_vectorised_rows_keep_their_order():
    frame = pl.DataFrame({"sex": ["F", "M", "F"], "age": [60, 10, 30], "ldl": [5.3, 3.0, 4.0]})
    out = frame.select(relatives_cutoffs_v1.category(pl.col("ldl"), pl.col("age"), pl.col("sex")))
    assert out.to_series().to_list() == ["likely", "unlikely", "uncertain"]
