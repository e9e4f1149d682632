"""Parsing of delivered text: numbers and decimal marks, censored values, dates, units,
analyte codes and ICD-10 codes."""

import math

import polars as pl
import pytest

from fh_screen.stages.ingest import normalise as nz
from fh_screen.errors import UserError


def number(values, decimal="."):
    value, censored, problem = nz.parse_number(pl.Series("v", values, dtype=pl.String), decimal)
    return list(zip(value.to_list(), censored.to_list(), problem.to_list()))


def test_plain_numbers_in_a_dot_file():
    assert number(["5.4", "5", "+5", ".5", "1e2", None]) == [
        (5.4, None, None), (5.0, None, None), (5.0, None, None), (0.5, None, None),
        (100.0, None, None), (None, None, None),
    ]


def test_decimal_comma_is_read_only_in_a_decimal_comma_file():
    assert number(["5,4"], ",") == [(5.4, None, None)]
    # In a '.' file 5,4 is never 54 and never 5.4: it is quarantined as ambiguous.
    assert number(["5,4", "1,234.5", "1,234"], ".") == [
        (None, None, nz.AMBIGUOUS_DECIMAL)] * 3


def test_dot_in_a_decimal_comma_file_is_ambiguous_unless_it_groups_thousands():
    assert number(["5.4", "1.234"], ",") == [(None, None, nz.AMBIGUOUS_DECIMAL)] * 2
    assert number(["1.234,5", "12"], ",") == [(1234.5, None, None), (12.0, None, None)]


@pytest.mark.parametrize("decimal", [".", ","])
def test_censored_values_keep_the_bound_and_the_sign(decimal):
    mark = decimal
    got = number([f"<0{mark}1", f"> 20", f"<=0{mark}5", "≥3", " <2 "], decimal)
    assert got == [(0.1, "<", None), (20.0, ">", None), (0.5, "<", None), (3.0, ">", None), (2.0, "<", None)]


def test_text_that_is_not_a_number_is_unparseable():
    got = number(["positive", "inf", "nan", "5 mmol", "<", "  "])
    assert [p for _, _, p in got] == [nz.UNPARSEABLE] * 6
    assert all(v is None for v, _, _ in got)


def test_whitespace_around_a_number_is_trimmed():
    assert number([" 5.4 "]) == [(5.4, None, None)]
    assert number([" 5,4 "], ",") == [(5.4, None, None)]


def test_dates_fast_path_and_bad_values():
    clean = nz.parse_date(pl.Series(["2024-01-31", None]))
    assert [str(d) if d else None for d in clean.to_list()] == ["2024-01-31", None]
    mixed = nz.parse_date(pl.Series(["2024-02-29", "2023-02-29", "31-01-2024", " 2024-03-01", "2024-13-01"]))
    assert [str(d) if d else None for d in mixed.to_list()] == ["2024-02-29", None, None, "2024-03-01", None]


def test_datetimes_accept_iso_variants_in_local_time_only():
    """A time with a zone (Z, +02:00) is not read: dropping the zone would shift it silently."""
    values = ["2024-01-02", "2024-01-02 10:11:12", "2024-01-02T10:11", "2024-01-02T10:11:12Z",
              "2024-01-02 10:11:12.5", "02/01/2024", "2024-01-32", "2024-01-02T10:11:12+02:00"]
    got = nz.parse_datetime(pl.Series(values)).to_list()
    assert [str(v) if v else None for v in got] == [
        "2024-01-02 00:00:00", "2024-01-02 10:11:12", "2024-01-02 10:11:00", None,
        "2024-01-02 10:11:12.500000", None, None, None,
    ]


@pytest.mark.parametrize(
    "raw, code",
    [("DE780B", "E780B"), ("DI219", "I219"), ("I21.9", "I219"), ("E78.01", "E7801"), ("e78.0", "E780"),
     ("DD500", "D500"), ("D50.0", "D500"), ("Z83.42", "Z8342"), ("DZ834", "Z834")],
)
def test_icd10_normalisation(raw, code):
    assert pl.select(nz.normalise_icd10(pl.lit(raw))).item() == code


@pytest.mark.parametrize("raw, key", [("mmol/L", "mmol/l"), ("MMOL/L", "mmol/l"), ("µmol/L", "umol/l"),
                                      ("μmol/l", "umol/l"), (" mg/dl ", "mg/dl"),
                                      ("mL/min/1,73 m²", "ml/min/1.73m2")])
def test_unit_text_is_compared_case_insensitively(raw, key):
    assert pl.select(nz.unit_key(pl.lit(raw))).item() == key


def conversion(analyte, unit):
    table = nz.unit_map().filter((pl.col("analyte") == analyte) & (pl.col("unit_key") == unit))
    assert table.height == 1
    return table.row(0, named=True)


def test_cholesterol_mg_per_dl_converts_exactly_by_38_67():
    ldl = conversion("ldl", "mg/dl")
    assert math.isclose(193.35 * ldl["factor"] + ldl["offset"], 5.0, rel_tol=1e-9)
    tc = conversion("tc", "mg/dl")
    assert math.isclose(386.7 * tc["factor"], 10.0, rel_tol=1e-9)


def test_triglyceride_mg_per_dl_converts_by_88_57():
    tg = conversion("tg", "mg/dl")
    assert math.isclose(177.14 * tg["factor"], 2.0, rel_tol=1e-9)


def test_every_canonical_unit_has_factor_one():
    codes = nz.code_map({})
    units = nz.unit_map()
    canonical = codes.select("analyte", nz.unit_key(pl.col("canonical_unit")).alias("unit_key")).unique()
    joined = canonical.join(units, on=["analyte", "unit_key"], how="left")
    assert joined["factor"].null_count() == 0
    assert set(joined["factor"].to_list()) == {1.0}
    assert set(joined["offset"].to_list()) == {0.0}


def test_code_map_knows_npu_loinc_and_dnk_codes():
    codes = nz.code_map({})
    lookup = {r["code_key"]: (r["analyte"], r["method"]) for r in codes.iter_rows(named=True)}
    assert lookup["NPU01568"] == ("ldl", "measured")
    assert lookup["DNK35308"] == ("ldl", "calculated")
    assert lookup["13457-7"] == ("ldl", "calculated")
    assert lookup["18262-6"] == ("ldl", "measured")
    assert lookup["NPU01566"][0] == lookup["2093-3"][0] == "tc"
    assert lookup["NPU04094"][0] == lookup["2571-8"][0] == "tg"
    assert lookup["NPU03577"][0] == lookup["3016-3"][0] == "tsh"


def test_local_codes_from_settings_map_to_known_codes():
    codes = nz.code_map({"aab00101": "NPU01568"})
    row = codes.filter(pl.col("code_key") == "AAB00101").row(0, named=True)
    assert (row["analyte"], row["method"], row["canonical_unit"]) == ("ldl", "measured", "mmol/L")


def test_a_local_code_pointing_nowhere_is_a_configuration_error():
    with pytest.raises(UserError, match="AAB1 maps to NPU99999"):
        nz.code_map({"AAB1": "NPU99999"})


def test_decimal_mark_is_decided_per_file():
    frame = pl.DataFrame({"value": ["5", "5,4", None]})
    assert nz.decide_decimal(frame, ["value"], ";") == ","
    assert nz.decide_decimal(frame, ["value"], ",") == "."        # never in a comma-separated file
    assert nz.decide_decimal(pl.DataFrame({"value": ["5.4", "6"]}), ["value"], ";") == "."
    assert nz.decide_decimal(pl.DataFrame({"value": ["<0,1"]}), ["value"], "\t") == ","
