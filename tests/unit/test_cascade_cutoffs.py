"""Relatives' LDL-C cut-offs by age and sex (fh_screen.relatives_ldl) at every boundary."""

import polars as pl
import pytest

from fh_screen import relatives_ldl

# shared/clinical README §8, as published (unlikely < a; uncertain a..b; likely >= c), mmol/L.
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
    return relatives_ldl.classify(pl.DataFrame({"sex": [sex], "age_years": [age], "ldl_mmol": [ldl]})).to_list()[0]


def test_reference_table_matches_the_cited_table():
    table = relatives_ldl.cutoffs()
    got = [
        (r["sex"], r["age_min"], r["age_max"], r["uncertain_from"], r["likely_from"])
        for r in table.iter_rows(named=True)
    ]
    assert sorted(got, key=str) == sorted(CASES, key=str)
    assert relatives_ldl.table_version() == "relatives_ldl_v1"


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


def test_unknown_sex_uses_both_tables_and_says_uncertain_when_they_disagree():
    assert classify("U", 40, 3.0) == "unlikely"  # M 4.0 / F 3.7: both unlikely
    assert classify("U", 40, 3.8) == "uncertain"  # M unlikely, F uncertain
    assert classify("U", 40, 4.5) == "uncertain"  # M uncertain, F likely
    assert classify("U", 40, 4.8) == "likely"  # both likely


def test_missing_age_is_not_classified():
    assert classify("M", None, 5.0) is None
    assert classify("M", -1, 5.0) is None


def test_vectorised_rows_keep_their_order():
    frame = pl.DataFrame({"sex": ["F", "M", "F"], "age_years": [60, 10, 30], "ldl_mmol": [5.3, 3.0, 4.0]})
    assert relatives_ldl.classify(frame).to_list() == ["likely", "unlikely", "uncertain"]
