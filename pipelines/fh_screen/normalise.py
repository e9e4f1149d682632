"""Turning delivered text into typed values: numbers, dates, codes, units, ICD-10.

Pure polars expressions and small lookups, so ten million lab rows are parsed without a
Python loop. The decimal rule is the one the contract insists on: ``5,4`` is read as 5.4
only in a file whose decimal mark is the comma; anywhere else it is quarantined as
ambiguous, never guessed (and never read as 54).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import polars as pl

from fh_screen.errors import UserError

REFERENCE = Path(__file__).with_name("reference")

# Rule codes written to the quarantine table (machine codes; reasons are plain language).
MALFORMED_ROW = "ingest.malformed_row"
MISSING_VALUE = "ingest.missing_required_value"
BAD_DATE = "ingest.bad_date"
UNPARSEABLE = "ingest.unparseable_value"
AMBIGUOUS_DECIMAL = "ingest.ambiguous_decimal"
UNKNOWN_CODE = "ingest.unknown_analyte_code"
UNIT_MISMATCH = "ingest.unit_mismatch"
DUPLICATE_KEY = "ingest.duplicate_key"

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


def clean(expr: pl.Expr) -> pl.Expr:
    """Trimmed text; an empty or blank value is missing (NULL)."""
    text = expr.str.strip_chars()
    return pl.when(text.str.len_bytes() > 0).then(text)


def parse_number(text: pl.Expr, decimal: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(value, censored, problem) from cleaned text such as ``5.4``, ``<0,1`` or ``>20``.

    ``censored`` is '<' or '>' when the lab reported a bound (the value is the bound).
    ``problem`` is NULL, or the rule code for text that is not a number in this dialect.
    """
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
        pl.when(text.is_null() | ok)
        .then(pl.lit(None, dtype=pl.String))
        .when(ambiguous)
        .then(pl.lit(AMBIGUOUS_DECIMAL))
        .otherwise(pl.lit(UNPARSEABLE))
    )
    return value, pl.when(ok).then(censored), problem


def parse_date(text: pl.Expr) -> pl.Expr:
    """ISO ``YYYY-MM-DD`` -> Date; anything else (including impossible dates) -> NULL."""
    return text.str.to_date("%Y-%m-%d", strict=False)


def parse_datetime(text: pl.Expr) -> pl.Expr:
    """ISO date or date-time (``T`` or space, seconds and fraction optional) -> Datetime."""
    s = text.str.replace("T", " ", literal=True).str.strip_suffix("Z")
    n = s.str.len_bytes()
    full = pl.when(n == 10).then(s + " 00:00:00").when(n == 16).then(s + ":00").otherwise(s)
    return full.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us")


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


def decide_decimal(frame: pl.DataFrame, number_columns: list[str], delimiter: str | None) -> str:
    """The decimal mark of a CSV file whose dialect was not configured.

    A comma cannot be the decimal mark of a comma-separated file (values like ``"5,4"``
    are then ambiguous). In a ';', tab or '|' file it is the comma if any number is
    written with one, else the dot.
    """
    if delimiter == "," or not number_columns:
        return "."
    found = frame.select(
        pl.any_horizontal(pl.col(c).str.contains(DECIMAL_COMMA_VALUE).any() for c in number_columns)
    ).item()
    return "," if found else "."


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
