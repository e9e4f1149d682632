"""Small pure functions that turn register values into the contract's values.

Every function takes and returns polars expressions (or plain values for the strength
table), so a register of millions of rows is converted without a Python loop and each
rule is tested on its own (tests/unit/test_convert_fields.py).

Register text arrives in several shapes; each function says which it accepts. None of
them guesses: a value that fits no accepted shape becomes NULL, and the caller sets the
row aside with a reason.
"""

from __future__ import annotations

import hashlib

import polars as pl

SAS_EPOCH = "1960-01-01"
"""SAS counts dates in days (and date-times in seconds) from 1 January 1960."""

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}

# A SAS day number for 1900-2100 has at most 6 characters (-21915 .. 51134); a compact
# YYYYMMDD date has 8 digits. A trailing ".0" comes from SAS numerics written as floats.
_SAS_DAYS = r"^-?\d{1,6}(\.0+)?$"
_SAS_SECONDS = r"^-?\d{1,11}(\.\d+)?$"
_COMPACT = r"^\d{8}$"
_DATE9 = r"^(\d{1,2})([A-Za-z]{3})(\d{4})"          # 27JUN1995, 27jun1995, DATETIME20 27JUN1995:10:30:00
_ISO = r"^\d{4}-\d{2}-\d{2}"

OPERATOR_SIGN = {"mindre_end": "<", "stoerre_end": ">", "<": "<", ">": ">", "lig_med": "", "=": ""}
"""Lab register OPERATOR words (and bare signs) -> the sign put in front of the value.
An operator not listed here is a problem for the caller, never dropped."""

NUMERIC_RESULT = {"numerisk", "numeric", "num", "n"}
"""RESULTTYPE values that mean a numeric result; anything else (``alfanumerisk``) is text."""

MG_PER_UNIT = {"mg": 1.0, "g": 1000.0, "gram": 1000.0, "mikrog": 0.001, "µg": 0.001, "ug": 0.001,
               "mcg": 0.001, "microg": 0.001, "ng": 0.000001}
"""Strength units that are masses, with their factor to milligrams. A unit per volume
(``mg/ml``) or in international units (``IE``) is not a tablet strength: strength stays empty."""

RETRACTED = {"ja", "j", "y", "yes", "1", "true", "sand"}
"""LPR3 ``senere_afkraeftet`` values that mean the diagnosis was later retracted."""


def register_date(text: pl.Expr) -> pl.Expr:
    """A date column as delivered -> Date.

    Accepts ISO ``1995-06-27`` (a time part is ignored), DATE9 ``27JUN1995`` (any case, a
    DATETIME20 time part ignored), compact ``19950627`` and SAS day numbers ``12961``
    (``12961.0`` too). Everything else -> NULL.
    """
    t = text.cast(pl.String).str.strip_chars()
    iso = t.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    compact = pl.when(t.str.contains(_COMPACT)).then(t.str.to_date("%Y%m%d", strict=False))
    date9 = _date9(t)
    sas = pl.when(t.str.contains(_SAS_DAYS)).then(
        pl.lit(SAS_EPOCH).str.to_date() + pl.duration(days=t.cast(pl.Float64, strict=False).cast(pl.Int64)))
    return pl.coalesce(pl.when(t.str.contains(_ISO)).then(iso), compact, date9, sas)


def register_datetime(text: pl.Expr) -> pl.Expr:
    """A date-time column as delivered -> Datetime(us).

    Accepts ISO date-times (``T`` or space, seconds optional), DATETIME20
    ``27JUN1995:10:30:00``, SAS seconds since 1960 and any date ``register_date`` accepts
    except SAS day numbers (midnight). Everything else -> NULL.
    """
    t = text.cast(pl.String).str.strip_chars()
    s = t.str.replace("T", " ", literal=True)
    iso = pl.coalesce(
        s.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"),
        s.str.to_datetime("%Y-%m-%d %H:%M", strict=False, time_unit="us"),
        s.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us"),
    )
    date9_time = pl.when(t.str.contains(_DATE9 + r":\d{2}:\d{2}(:\d{2})?$")).then(
        _date9(t).cast(pl.Datetime("us")) + _clock(t.str.extract(r":(\d{2}:\d{2}(:\d{2})?)$", 1)))
    seconds = pl.when(t.str.contains(_SAS_SECONDS) & ~t.str.contains(_COMPACT)).then(
        pl.lit(SAS_EPOCH).str.to_datetime(time_unit="us")
        + pl.duration(microseconds=(t.cast(pl.Float64, strict=False) * 1_000_000).round(0).cast(pl.Int64)))
    plain_date = pl.when(~t.str.contains(_SAS_DAYS)).then(register_date(t).cast(pl.Datetime("us")))
    return pl.coalesce(pl.when(t.str.contains(_ISO)).then(iso), date9_time, seconds, plain_date)


def with_time(day: pl.Expr, clock: pl.Expr) -> pl.Expr:
    """A Date plus a separate time column (``08:15``, ``08:15:00``, ``0815`` or SAS seconds
    since midnight) -> Datetime; a missing or unreadable time gives midnight."""
    return day.cast(pl.Datetime("us")) + _clock(clock).fill_null(pl.duration(seconds=0))


def _clock(text: pl.Expr) -> pl.Expr:
    t = text.cast(pl.String).str.strip_chars()
    hhmm = t.str.extract(r"^(\d{1,2}):?(\d{2})(?::?(\d{2}))?$", 0)
    h = t.str.extract(r"^(\d{1,2}):?(\d{2})(?::?(\d{2}))?$", 1).cast(pl.Int64, strict=False)
    m = t.str.extract(r"^(\d{1,2}):?(\d{2})(?::?(\d{2}))?$", 2).cast(pl.Int64, strict=False)
    s = t.str.extract(r"^(\d{1,2}):?(\d{2})(?::?(\d{2}))?$", 3).cast(pl.Int64, strict=False).fill_null(0)
    # A bare number without ':' longer than 4 digits, or with a decimal part, is SAS seconds.
    sas = t.str.contains(r"^\d+(\.\d+)?$") & ~t.str.contains(r"^\d{3,4}$")
    clock = pl.when(hhmm.is_not_null() & ~sas & (h < 24) & (m < 60)).then(
        pl.duration(hours=h, minutes=m, seconds=s))
    return pl.coalesce(clock, pl.when(sas).then(pl.duration(seconds=t.cast(pl.Float64, strict=False).cast(pl.Int64))))


def _date9(t: pl.Expr) -> pl.Expr:
    day = t.str.extract(_DATE9, 1)
    month = t.str.extract(_DATE9, 2).str.to_uppercase().replace_strict(
        {k: f"{v:02d}" for k, v in _MONTHS.items()}, default=None, return_dtype=pl.String)
    year = t.str.extract(_DATE9, 3)
    return pl.concat_str([year, pl.lit("-"), month, pl.lit("-"), day.str.zfill(2)]).str.to_date("%Y-%m-%d", strict=False)


def decimal_point(text: pl.Expr) -> pl.Expr:
    """A register number as text with a '.' decimal mark: ``5,4`` -> ``5.4``, ``<0,1`` -> ``<0.1``.

    Registers write a decimal comma and never group thousands, so exactly one comma
    between digits is the decimal mark. Anything else is left as it is (the pipeline
    then quarantines what it cannot read, with its own reason)."""
    t = text.cast(pl.String).str.strip_chars()
    return pl.when(t.str.contains(r"^(<=|>=|<|>)?[+-]?\d*,\d+$")).then(t.str.replace(",", ".", literal=True)).otherwise(t)


def signed_value(value: pl.Expr, operator: pl.Expr) -> pl.Expr:
    """The lab value as the contract reads it: the operator's sign in front of the number.

    ``VALUE 0,1`` with ``OPERATOR mindre_end`` -> ``<0.1``. A value that already carries a
    sign keeps it. An unknown operator gives NULL (the caller sets the row aside)."""
    number = decimal_point(value)
    op = operator.cast(pl.String).str.strip_chars().str.to_lowercase()
    sign = op.replace_strict(OPERATOR_SIGN, default=None, return_dtype=pl.String)
    has_sign = number.str.contains(r"^(<=|>=|<|>)")
    return (pl.when(op.is_null() | (op == "") | has_sign).then(number)
            .when(sign.is_not_null()).then(pl.concat_str([sign, number])))


def unknown_operator(operator: pl.Expr) -> pl.Expr:
    """True where OPERATOR holds a word this converter does not know."""
    op = operator.cast(pl.String).str.strip_chars().str.to_lowercase()
    return op.is_not_null() & (op != "") & ~op.is_in(list(OPERATOR_SIGN))


def is_text_result(result_type: pl.Expr) -> pl.Expr:
    """True for a result the lab reports as text (``alfanumerisk``: POSITIV, NEGATIV ...).

    Such results are set aside before any number parsing; a missing RESULTTYPE counts as
    numeric, and the pipeline then quarantines a value that is not a number."""
    rt = result_type.cast(pl.String).str.strip_chars().str.to_lowercase()
    return rt.is_not_null() & (rt != "") & ~rt.is_in(list(NUMERIC_RESULT))


def strength_mg(strnum: pl.Expr, strunit: pl.Expr) -> pl.Expr:
    """Tablet strength in mg from ``STRNUM`` (number, decimal comma allowed) and ``STRUNIT``.

    ``40``/``mg`` -> 40.0; ``0,04``/``g`` -> 40.0; ``500``/``mikrog`` -> 0.5. A unit that is
    not a mass (``mg/ml``, ``IE``) or an unreadable number -> NULL."""
    number = decimal_point(strnum).cast(pl.Float64, strict=False)
    unit = strunit.cast(pl.String).str.strip_chars().str.to_lowercase()
    factor = unit.replace_strict(MG_PER_UNIT, default=None, return_dtype=pl.Float64)
    return (number * factor).round(6)


def mass_unit(strunit: pl.Expr) -> pl.Expr:
    """True where STRUNIT is a mass unit that ``strength_mg`` converts."""
    return strunit.cast(pl.String).str.strip_chars().str.to_lowercase().is_in(list(MG_PER_UNIT))


def sex_code(value: pl.Expr, male: list[str], female: list[str]) -> pl.Expr:
    """A register's sex code -> ``M``/``F``/``U`` (e.g. KOEN 1/2, C_KON M/K)."""
    v = value.cast(pl.String).str.strip_chars().str.to_uppercase().str.replace(r"\.0+$", "")
    return (pl.when(v.is_in([m.upper() for m in male])).then(pl.lit("M"))
            .when(v.is_in([f.upper() for f in female])).then(pl.lit("F"))
            .otherwise(pl.lit("U")))


def retracted(value: pl.Expr) -> pl.Expr:
    """True where an LPR3 diagnosis was later retracted (``senere_afkraeftet``)."""
    return value.cast(pl.String).str.strip_chars().str.to_lowercase().is_in(list(RETRACTED)).fill_null(False)


def diagnosis_code(value: pl.Expr) -> pl.Expr:
    """An LPR code in the contract's Danish SKS form: upper case, no dot or space.

    The contract accepts ``DE780`` as it is (the pipeline removes the 'D'); codes without
    the SKS prefix (``E780``) are kept as the WHO spelling they are."""
    return value.cast(pl.String).str.strip_chars().str.to_uppercase().str.replace_all(r"[.\s]", "")


def identifier(value: pl.Expr) -> pl.Expr:
    """A person or product id as text: trimmed, and ``123.0`` (a SAS numeric) -> ``123``."""
    v = value.cast(pl.String).str.strip_chars()
    return pl.when(v == "").then(None).otherwise(v.str.replace(r"^(\d+)\.0+$", "$1"))


RESULT_ID_PREFIX = "LAB-"


def result_id(columns: list[str]) -> pl.Expr:
    """A stable ``result_id`` from the row's key fields, for registers that carry no row id.

    SHA-256 of the key fields joined by a unit separator (a missing field is written as
    an empty string), first 20 hex digits. The same result delivered again gets the same
    id, so a later delivery replaces it (contract: last delivery wins); two rows with the
    same key but different values share an id and the pipeline quarantines the second as a
    duplicate instead of keeping two conflicting results silently.
    """
    joined = pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in columns], separator="\x1f")
    return joined.map_batches(
        lambda s: pl.Series([RESULT_ID_PREFIX + hashlib.sha256(v.encode("utf-8")).hexdigest()[:20] for v in s],
                            dtype=pl.String),
        return_dtype=pl.String,
    )
