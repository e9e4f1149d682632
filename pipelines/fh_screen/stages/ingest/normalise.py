"""Turning delivered text into typed values: numbers, dates, codes, units, ICD-10.

Pure polars expressions and small lookups, so ten million lab rows are parsed without a
Python loop. The decimal rule is the one the contract insists on: ``5,4`` is read as 5.4
only in a file whose decimal mark is the comma; anywhere else it is quarantined as
ambiguous, never guessed (and never read as 54).
"""

from __future__ import annotations

from functools import lru_cache, reduce
from typing import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from fh_screen.reference import REFERENCE_DIR
from fh_screen.errors import UserError

REFERENCE = REFERENCE_DIR

# Rule codes written to the quarantine table (machine codes; reasons are plain language).
MALFORMED_ROW = "ingest.malformed_row"
MISSING_VALUE = "ingest.missing_required_value"
BAD_DATE = "ingest.bad_date"
UNPARSEABLE = "ingest.unparseable_value"
AMBIGUOUS_DECIMAL = "ingest.ambiguous_decimal"
UNKNOWN_CODE = "ingest.unknown_analyte_code"
UNIT_MISMATCH = "ingest.unit_mismatch"
DUPLICATE_KEY = "ingest.duplicate_key"
BAD_ENCODING = "ingest.bad_encoding"
FIELD_TOO_LONG = "ingest.field_too_long"

# Longest value accepted in any delivered field, in UTF-8 bytes. Ids, codes, names and
# addresses are far shorter; a longer value is a fault or an attack (rendering and memory
# costs grow with it), so its row is quarantined with the reason, never loaded.
MAX_FIELD_BYTES = 1000
# Dates before this are placeholders (1900-01-01, 1900-01-00 exported as 1900-...), not
# dates of birth, samples, prescriptions or diagnoses of living patients.
EARLIEST_DATE = "1901-01-01"

_CENSOR = r"^(<=|>=|<|>|≤|≥)"
_CENSOR_SIGN = {"<": "<", "<=": "<", "≤": "<", ">": ">", ">=": ">", "≥": ">"}
# A number with a comma somewhere in it, in a file whose decimal mark is '.' (or vice versa).
_HAS_COMMA_NUMBER = r"^[+-]?[\d.]*,[\d.,]*$"
_HAS_DOT_NUMBER = r"^[+-]?[\d,]*\.[\d.,]*$"
# Danish dialect: "5,4", or "1.234,5" (dot groups thousands only when a decimal comma follows).
_COMMA_PLAIN = r"^[+-]?\d+(,\d+)?$"
_COMMA_GROUPED = r"^[+-]?\d{1,3}(\.\d{3})+,\d+$"
_DOT_PLAIN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# Used to decide the decimal mark of a ';' / tab / '|' file when it is not configured.
DECIMAL_COMMA_VALUE = r"^\s*(<=|>=|<|>|≤|≥)?\s*[+-]?\d+,\d+\s*$"


def clean(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Trimmed text in ``columns``; an empty or blank value is missing (NULL).

    Trimming ten million values costs seconds, so it is done only for the columns that
    have a value with surrounding white space or an empty value (a cheap check). The
    number and date parsers trim for themselves, on the values that need it.
    """
    def needs(c: pl.Expr) -> pl.Expr:
        return (
            c.str.starts_with(" ") | c.str.ends_with(" ") | c.str.starts_with("\t")
            | c.str.ends_with("\t") | (c.str.len_bytes() == 0)
        ).any()

    flags = frame.select(needs(pl.col(c)).alias(c) for c in columns).row(0, named=True)
    dirty = [c for c in columns if flags[c]]
    if not dirty:
        return frame
    stripped = [pl.col(c).str.strip_chars().alias(c) for c in dirty]
    return frame.with_columns(stripped).with_columns(
        pl.when(pl.col(c).str.len_bytes() > 0).then(pl.col(c)).alias(c) for c in dirty
    )


def parse_number(text: pl.Series, decimal: str) -> tuple[pl.Series, pl.Series, pl.Series]:
    """(value, censored, problem) from cleaned text such as ``5.4``, ``<0,1`` or ``>20``.

    ``censored`` is '<' or '>' when the lab reported a bound (the value is the bound).
    ``problem`` is NULL, or the rule code for text that is not a number in this dialect.
    Plain numbers take one fast cast; only the rest go through the full grammar.
    """
    if decimal == ",":
        # "5.4" must not pass the fast path of a decimal-comma file: '.' may group thousands.
        plain = text.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
        fast = pl.select(pl.when(~text.str.contains(".", literal=True)).then(plain)).to_series()
    else:
        fast = text.cast(pl.Float64, strict=False)
    fast = pl.select(pl.when(fast.is_finite()).then(fast)).to_series().alias(text.name)
    slow = (fast.is_null() & text.is_not_null()).arg_true()
    censored = pl.repeat(None, len(text), dtype=pl.String, eager=True).alias(text.name)
    problem = censored.clone()
    if len(slow) == 0:
        return fast, censored, problem
    parts = pl.DataFrame({"t": text.gather(slow)}).select(
        *(e.alias(n) for n, e in zip(("v", "c", "p"), _parse_number_exprs(pl.col("t"), decimal)))
    )
    return fast.scatter(slow, parts["v"]), censored.scatter(slow, parts["c"]), problem.scatter(slow, parts["p"])


def _parse_number_exprs(text: pl.Expr, decimal: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """The full (slow) number grammar: censoring signs, decimal marks, thousands groups."""
    raw, text = text, text.str.strip_chars()
    sign = text.str.extract(_CENSOR, 1)
    censored = sign.replace_strict(_CENSOR_SIGN, default=None, return_dtype=pl.String)
    body = text.str.replace(_CENSOR, "").str.strip_chars()
    if decimal == ",":
        grouped = body.str.contains(_COMMA_GROUPED)
        ok = body.str.contains(_COMMA_PLAIN) | grouped
        number = (
            pl.when(grouped).then(body.str.replace_all(".", "", literal=True)).otherwise(body)
        ).str.replace(",", ".", literal=True)
        ambiguous = body.str.contains(_HAS_DOT_NUMBER)
    else:
        ok = body.str.contains(_DOT_PLAIN)
        number = body
        ambiguous = body.str.contains(_HAS_COMMA_NUMBER)
    # The patterns' \d also matches non-ASCII digits ('٣', '５') that do not cast, and an
    # exponent can overflow to inf: such text is a problem, never a silent NULL or inf.
    cast = number.cast(pl.Float64, strict=False)
    ok = ok & cast.is_finite().fill_null(False)
    value = pl.when(ok).then(cast)
    problem = (
        pl.when(raw.is_null() | ok)
        .then(pl.lit(None, dtype=pl.String))
        .when(ambiguous)
        .then(pl.lit(AMBIGUOUS_DECIMAL))
        .otherwise(pl.lit(UNPARSEABLE))
    )
    return value, pl.when(ok).then(censored), problem


def parse_date(text: pl.Series) -> pl.Series:
    """ISO ``YYYY-MM-DD`` -> Date; anything else (including impossible dates) -> NULL.

    Arrow's ISO parser reads a clean column in one fast pass; a column with any bad
    value is parsed again value by value with polars, where bad values become NULL.
    """
    try:
        return pl.from_arrow(pc.cast(text.to_arrow(), pa.date32())).alias(text.name)
    except pa.ArrowInvalid:
        return text.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)


def parse_datetime(text: pl.Series) -> pl.Series:
    """ISO date or date-time (``T`` or space, minutes, seconds and fraction optional)."""
    try:
        return pl.from_arrow(pc.cast(text.to_arrow(), pa.timestamp("us"))).alias(text.name)
    except pa.ArrowInvalid:
        pass
    # A time with a zone (Z, +01:00) is not accepted: the contract asks for local time, and
    # dropping the zone would shift it silently.
    s = text.str.strip_chars().str.replace("T", " ", literal=True)
    return pl.select(
        pl.coalesce(
            s.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, cache=False, time_unit="us"),
            s.str.to_datetime("%Y-%m-%d %H:%M", strict=False, cache=False, time_unit="us"),
            s.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")),
            s.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, cache=False, time_unit="us"),
        )
    ).to_series().alias(text.name)


def normalise_icd10(text: pl.Expr) -> pl.Expr:
    """Upper case, no dot or space, Danish SKS 'D' prefix removed.

    DE780B -> E780B, DI219 -> I219, I21.9 -> I219, E78.01 -> E7801. The 'D' is removed only
    when a letter and a digit follow, so ICD-10 chapter D codes (D50.0 -> D500) stay intact.
    """
    code = text.str.to_uppercase().str.replace_all(r"[.\s]", "")
    return code.str.replace(r"^D([A-Z]\d)", "$1")


def unit_key(text: pl.Expr) -> pl.Expr:
    """Unit text compared case-insensitively: 'MMOL/L', 'mmol/l' and 'µmol/L' ~ 'umol/l'."""
    return (
        text.str.strip_chars()
        .str.to_lowercase()
        .str.replace_all(r"\s+", "")
        .str.replace_all("[µμ]", "u")
        .str.replace_all("²", "2", literal=True)
        .str.replace_all("1,73", "1.73", literal=True)
    )


def lookup_join(
    frame: pl.DataFrame, columns: list[str], build: Callable[[pl.DataFrame], pl.DataFrame]
) -> pl.DataFrame:
    """Compute ``build`` once per distinct combination of ``columns`` and join it to every row.

    ``build`` receives the distinct combinations (columns as delivered) and returns them
    with added result columns, keeping its input columns and their order. A 64-bit hash of
    the combination finds each row's entry: the few distinct hashes are sorted and every
    row's hash is found by binary search, and the entry's columns are gathered (several
    times cheaper than a join of ten million rows, on text or on the hash). The gathered
    text is compared with the row's own text, and if a hash collision ever made them
    differ, the join is redone on the text itself.
    """
    hashes = frame.select(_combined_hash(columns)).to_series()
    distinct = frame.select(columns).with_columns(_h=hashes).unique(subset="_h", keep="any").sort("_h")
    kept = {c: f"_k_{c}" for c in columns}
    table = build(distinct.select(columns)).rename(kept)
    entry = distinct.get_column("_h").search_sorted(hashes)
    joined = frame.hstack([column.gather(entry) for column in table.iter_columns()])
    exact = joined.select(pl.all_horizontal(pl.col(c).eq_missing(pl.col(k)) for c, k in kept.items()).all())
    if exact.item():
        return joined.drop(*kept.values())
    table = build(frame.select(columns).unique()).rename(kept)
    return frame.join(table, left_on=columns, right_on=list(kept.values()), how="left",
                      nulls_equal=True, maintain_order="left").drop(*kept.values(), strict=False)


def _combined_hash(columns: list[str]) -> pl.Expr:
    """One 64-bit hash of several columns, chained from each column's own hash (a struct
    hash over text columns costs several times more)."""
    return reduce(lambda acc, h: (acc ^ h).hash(), [pl.col(c).hash() for c in columns]).alias("_h")


def decide_decimal(frame: pl.DataFrame, number_columns: list[str], delimiter: str | None) -> str:
    """The decimal mark of a CSV file whose dialect was not configured.

    A comma cannot be the decimal mark of a comma-separated file (values like ``"5,4"``
    are then ambiguous). In a ';', tab or '|' file it is the comma if any number is
    written with one, else the dot.
    """
    if delimiter == "," or not number_columns:
        return "."
    for column in number_columns:
        with_comma = frame.get_column(column).filter(frame.get_column(column).str.contains(",", literal=True))
        if with_comma.str.contains(DECIMAL_COMMA_VALUE).any():
            return ","
    return "."


@lru_cache(maxsize=1)
def _reference_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    codes = pl.read_csv(REFERENCE / "analyte_codes.csv", infer_schema=False)
    units = pl.read_csv(
        REFERENCE / "unit_conversions.csv",
        schema_overrides={"factor": pl.Float64, "offset": pl.Float64},
        infer_schema_length=0,
    )
    return codes, units


def code_map(extra_codes: dict[str, str]) -> pl.DataFrame:
    """code_key -> analyte, method, canonical_unit; local codes from settings added.

    Raises:
        UserError: a local code that points at a code not in ``reference/analyte_codes.csv``.
    """
    codes, _ = _reference_frames()
    base = codes.select(
        pl.col("code").str.strip_chars().str.to_uppercase().alias("code_key"),
        "analyte", "method", "canonical_unit",
    )
    if not extra_codes:
        return base
    known = dict(zip(base["code_key"], range(base.height)))
    rows = []
    for local, target in extra_codes.items():
        index = known.get(target.strip().upper())
        if index is None:
            raise UserError(
                f"settings ingest.extra_codes: {local} maps to {target}, which is not in reference/analyte_codes.csv"
            )
        rows.append(base.row(index, named=True) | {"code_key": local.strip().upper()})
    extra = pl.DataFrame(rows, schema=base.schema)
    return pl.concat([base.filter(~pl.col("code_key").is_in(extra["code_key"].implode())), extra])


def unit_map() -> pl.DataFrame:
    """(analyte, unit_key) -> factor, offset converting to the analyte's canonical unit."""
    _, units = _reference_frames()
    return units.select("analyte", unit_key(pl.col("unit")).alias("unit_key"), "factor", "offset")
