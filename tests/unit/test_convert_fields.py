"""The converter's small mapping functions, one rule at a time (fh_screen.convert.fields)."""

import hashlib
from datetime import date, datetime

import polars as pl
import pytest

from fh_screen.convert import fields as f


def one(expr: pl.Expr, **columns):
    return pl.DataFrame({k: [v] for k, v in columns.items()}, schema={k: pl.String for k in columns}).select(expr.alias("x"))["x"][0]


@pytest.mark.parametrize("text, want", [
    ("1995-06-27", date(1995, 6, 27)),
    ("1995-06-27T10:30:00", date(1995, 6, 27)),
    ("27JUN1995", date(1995, 6, 27)),
    ("27jun1995", date(1995, 6, 27)),
    ("7JUN1995", date(1995, 6, 7)),
    ("27JUN1995:10:30:00", date(1995, 6, 27)),
    ("19950627", date(1995, 6, 27)),
    ("12961", date(1995, 6, 27)),          # SAS day number
    ("12961.0", date(1995, 6, 27)),        # ... as a SAS float
    ("0", date(1960, 1, 1)),
    ("-3652", date(1950, 1, 1)),
    (" 27JUN1995 ", date(1995, 6, 27)),
])
def test_register_date_reads_iso_date9_compact_and_sas_days(text, want):
    assert one(f.register_date(pl.col("d")), d=text) == want


@pytest.mark.parametrize("text", ["31FEB2020", "27XYZ1995", "1995-13-01", "abc", "", None, "27.06.1995", "1234567"])
def test_register_date_refuses_what_it_cannot_read(text):
    assert one(f.register_date(pl.col("d")), d=text) is None


@pytest.mark.parametrize("text, want", [
    ("2020-03-01T08:15:00", datetime(2020, 3, 1, 8, 15)),
    ("2020-03-01 08:15", datetime(2020, 3, 1, 8, 15)),
    ("01MAR2020:08:15:00", datetime(2020, 3, 1, 8, 15)),
    ("1898669700", datetime(2020, 3, 1, 8, 15)),   # SAS seconds since 1960
    ("01MAR2020", datetime(2020, 3, 1)),
    ("2020-03-01", datetime(2020, 3, 1)),
])
def test_register_datetime(text, want):
    assert one(f.register_datetime(pl.col("d")), d=text) == want


@pytest.mark.parametrize("clock, want", [
    ("08:15", datetime(2020, 3, 1, 8, 15)), ("08:15:30", datetime(2020, 3, 1, 8, 15, 30)),
    ("0815", datetime(2020, 3, 1, 8, 15)), ("29700", datetime(2020, 3, 1, 8, 15)),   # SAS time: seconds
    (None, datetime(2020, 3, 1)), ("25:00", datetime(2020, 3, 1)),
])
def test_with_time_adds_a_separate_time_column(clock, want):
    assert one(f.with_time(f.register_date(pl.col("d")), pl.col("t")), d="01MAR2020", t=clock) == want


@pytest.mark.parametrize("text, want", [("5,4", "5.4"), ("5.4", "5.4"), ("-0,25", "-0.25"), (",5", ".5"), ("<0,1", "<0.1"),
                                        ("1,234,5", "1,234,5"), ("abc", "abc"), ("12", "12")])
def test_decimal_point_only_rewrites_a_single_decimal_comma(text, want):
    assert one(f.decimal_point(pl.col("v")), v=text) == want


@pytest.mark.parametrize("value, operator, want", [
    ("0,1", "mindre_end", "<0.1"), ("90", "stoerre_end", ">90"), ("5,4", None, "5.4"), ("5,4", "", "5.4"),
    ("0,1", "MINDRE_END", "<0.1"), ("<0,1", "mindre_end", "<0.1"), ("abc", None, "abc"),
    ("0,1", "ca", None),                                   # unknown operator: never dropped silently
])
def test_signed_value_puts_the_operator_sign_in_front(value, operator, want):
    assert one(f.signed_value(pl.col("v"), pl.col("o")), v=value, o=operator) == want


@pytest.mark.parametrize("operator, unknown", [("mindre_end", False), ("stoerre_end", False), (None, False), ("", False), ("ca", True)])
def test_unknown_operator(operator, unknown):
    assert one(f.unknown_operator(pl.col("o")), o=operator) is unknown


@pytest.mark.parametrize("rt, text", [("numerisk", False), ("NUMERISK", False), (None, False), ("", False),
                                      ("alfanumerisk", True), ("ALFANUMERISK", True)])
def test_text_results_are_recognised_before_parsing(rt, text):
    assert one(f.is_text_result(pl.col("r")), r=rt) is text


@pytest.mark.parametrize("num, unit, want", [
    ("40", "mg", 40.0), ("40", "MG", 40.0), ("0,04", "g", 40.0), ("0.04", "g", 40.0), ("500", "mikrog", 0.5),
    ("500", "µg", 0.5), ("10", "mg/ml", None), ("100000", "IE", None), ("abc", "mg", None), ("40", None, None),
])
def test_strength_mg_converts_mass_units_only(num, unit, want):
    assert one(f.strength_mg(pl.col("n"), pl.col("u")), n=num, u=unit) == want


@pytest.mark.parametrize("value, want", [("1", "M"), ("2", "F"), ("1.0", "M"), (None, "U"), ("9", "U")])
def test_sex_code_koen(value, want):
    assert one(f.sex_code(pl.col("s"), ["1"], ["2"]), s=value) == want


@pytest.mark.parametrize("value, want", [("M", "M"), ("K", "F"), ("k", "F"), ("", "U")])
def test_sex_code_cpr_m_k(value, want):
    assert one(f.sex_code(pl.col("s"), ["M"], ["K"]), s=value) == want


@pytest.mark.parametrize("value, want", [("Ja", True), ("J", True), ("1", True), ("Nej", False), ("0", False), (None, False)])
def test_retracted(value, want):
    assert one(f.retracted(pl.col("r")), r=value) is want


@pytest.mark.parametrize("code, want", [("DE780", "DE780"), ("de780b", "DE780B"), ("E78.0", "E780"), (" DI21.9 ", "DI219")])
def test_diagnosis_code(code, want):
    assert one(f.diagnosis_code(pl.col("c")), c=code) == want


@pytest.mark.parametrize("value, want", [("P0000101", "P0000101"), (" 123.0 ", "123"), ("", None), (None, None), ("0012", "0012")])
def test_identifier(value, want):
    assert one(f.identifier(pl.col("i")), i=value) == want


def test_result_id_is_a_stable_hash_of_the_key_fields():
    frame = pl.DataFrame({"a": ["P1", "P1", "P2", None], "b": ["x", "x", "x", "x"]})
    ids = frame.select(f.result_id(["a", "b"]).alias("id"))["id"].to_list()
    assert ids[0] == ids[1] != ids[2] != ids[3]
    assert ids[0] == "LAB-" + hashlib.sha256("P1\x1fx".encode()).hexdigest()[:20]
    assert ids[3] == "LAB-" + hashlib.sha256("\x1fx".encode()).hexdigest()[:20]
