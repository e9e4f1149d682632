"""One delivered table (text) -> typed staging rows + the rows that could not be parsed.

Every check is a column expression, so a table is parsed in a few vectorised passes.
Each rejected row gets the first rule it breaks, in the order the checks are listed.
Duplicate keys within one delivery keep the last row (by position in the file); the
earlier ones are quarantined so that received = staged + quarantined holds exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from fh_screen import db
from fh_screen import normalise as nz
from fh_screen.contract import CURATED_COLUMNS, DATE, DATETIME, LOWER, NUMBER, TABLES, UPPER, TableSpec
from fh_screen.errors import DeliveryError
from fh_screen.readers import EXTRA, ROW, Delivered

RAW_MAX_CHARS = 1000   # a huge field is cut in quarantine.csv, not copied whole

_KIND_WORDS = {DATE: "a date (YYYY-MM-DD)", DATETIME: "a date or date-time (ISO)", NUMBER: "a number"}


@dataclass
class Staged:
    table: str
    good: pl.DataFrame      # curated columns (sql/schema.sql, no delivery_id) + _row
    bad: pl.DataFrame       # row_number, row_key, rule, reason, raw: for db.add_quarantine
    decimal: str | None

    @property
    def rules(self) -> dict[str, int]:
        counts = self.bad.group_by("rule").len().sort("rule")
        return dict(zip(counts["rule"], counts["len"]))


class _Checks:
    """Ordered (condition, rule, reason) list folded into two columns: rule and reason."""

    def __init__(self) -> None:
        self.items: list[tuple[pl.Expr, str, pl.Expr]] = []

    def add(self, condition: pl.Expr, rule: str | pl.Expr, reason: str | pl.Expr) -> None:
        rule = pl.lit(rule) if isinstance(rule, str) else rule
        reason = pl.lit(reason) if isinstance(reason, str) else reason
        self.items.append((condition.fill_null(False), rule, reason))

    def columns(self) -> list[pl.Expr]:
        rule = reason = None
        for condition, r, why in self.items:
            rule = pl.when(condition).then(r) if rule is None else rule.when(condition).then(r)
            reason = pl.when(condition).then(why) if reason is None else reason.when(condition).then(why)
        return [
            rule.otherwise(pl.lit(None, dtype=pl.String)).alias("_rule"),
            reason.otherwise(pl.lit(None, dtype=pl.String)).alias("_reason"),
        ]


def stage_table(delivered: Delivered, extra_codes: dict[str, str]) -> Staged:
    """Parse one delivered table; raise DeliveryError if a whole column is unreadable."""
    spec = TABLES[delivered.table]
    raw = delivered.frame
    text = raw.select(*(nz.clean(pl.col(c)).alias(c) for c in spec.column_names), ROW, EXTRA)
    numbers = [c.name for c in spec.columns if c.kind == NUMBER]
    decimal = delivered.decimal or nz.decide_decimal(text, numbers, delivered.delimiter)

    checks = _Checks()
    checks.add(pl.col(EXTRA).is_not_null(), nz.MALFORMED_ROW,
               "row has more fields than the header (an unquoted delimiter or decimal comma?)")
    if spec.name == "lab_results":
        text, typed, readable = _lab_columns(text, checks, decimal, extra_codes)
    else:
        typed, readable = _generic_columns(spec, checks, decimal)
    # One context: every check sees the delivered text, not the typed replacement.
    parsed = text.with_columns(
        *(expr.alias(name) for name, expr in typed.items()),
        *checks.columns(),
        *(pl.col(name).is_not_null().alias(f"_has_{name}") for name in readable),
        *(expr.is_not_null().alias(f"_read_{name}") for name, expr in readable.items()),
    )
    _refuse_unreadable_columns(delivered, spec, parsed, list(readable), decimal)

    failed = parsed.filter(pl.col("_rule").is_not_null()).select(ROW, "_rule", "_reason")
    good = parsed.filter(pl.col("_rule").is_null()).select(*CURATED_COLUMNS[spec.name], ROW)
    key = pl.col(spec.key[0]) if len(spec.key) == 1 else pl.struct(spec.key)
    last = good.select(key.is_last_distinct()).to_series()
    duplicates = good.filter(~last).select(
        ROW,
        pl.lit(nz.DUPLICATE_KEY).alias("_rule"),
        pl.lit("the same key appears again later in this delivery; the later row is kept").alias("_reason"),
    )
    good = good.filter(last)
    rejected = pl.concat([failed, duplicates]).sort(ROW)
    return Staged(spec.name, good, _quarantine_rows(spec, raw, rejected), decimal)


def _generic_columns(
    spec: TableSpec, checks: _Checks, decimal: str
) -> tuple[dict[str, pl.Expr], dict[str, pl.Expr]]:
    """(typed columns, parsed values of the typed columns for the whole-column check)."""
    typed: dict[str, pl.Expr] = {}
    readable: dict[str, pl.Expr] = {}
    for column in spec.columns:
        if column.required_value:
            checks.add(pl.col(column.name).is_null(), nz.MISSING_VALUE,
                       f"required value missing in column {column.name}")
    for column in spec.columns:
        c = pl.col(column.name)
        if column.kind == DATE:
            typed[column.name] = readable[column.name] = nz.parse_date(c)
            checks.add(c.is_not_null() & typed[column.name].is_null(), nz.BAD_DATE,
                       f"{column.name} is not a valid date in YYYY-MM-DD form")
        elif column.kind == NUMBER:
            value, _, problem = nz.parse_number(c, decimal)
            typed[column.name] = readable[column.name] = value
            checks.add(problem.is_not_null(), problem, _number_reason(column.name, problem, decimal))
        elif column.kind == LOWER:
            typed[column.name] = c.str.to_lowercase()
        elif column.kind == UPPER:
            typed[column.name] = c.str.to_uppercase()
    if spec.name == "patients":
        typed["sex"] = pl.col("sex").str.to_uppercase().fill_null("U")
    if spec.name == "diagnoses":
        typed["icd10_code"] = nz.normalise_icd10(pl.col("icd10_code"))
        typed["icd10_raw"] = pl.col("icd10_code")
    return typed, readable


def _lab_columns(
    text: pl.DataFrame, checks: _Checks, decimal: str, extra_codes: dict[str, str]
) -> tuple[pl.DataFrame, dict[str, pl.Expr], dict[str, pl.Expr]]:
    """Lab rows: code map, unit conversion, censored values; cancellations need no value.

    Codes and units are looked up once per distinct (code, unit) pair and joined back.
    """
    codes = nz.code_map(extra_codes).rename(
        {"code_key": "_code_key", "analyte": "_analyte", "method": "_method", "canonical_unit": "_canonical_unit"}
    )
    units = nz.unit_map().rename(
        {"analyte": "_analyte", "unit_key": "_unit_key", "factor": "_factor", "offset": "_offset"}
    )
    pairs = (
        text.select(pl.col("analyte").alias("_code"), pl.col("unit").alias("_unit"))
        .unique()
        .with_columns(
            pl.col("_code").str.to_uppercase().alias("_code_key"),
            nz.unit_key(pl.col("_unit")).alias("_unit_key"),
        )
        .join(codes, on="_code_key", how="left")
        .join(units, on=["_analyte", "_unit_key"], how="left")
        .drop("_code_key", "_unit_key")
    )
    text = text.join(pairs, left_on=["analyte", "unit"], right_on=["_code", "_unit"], how="left",
                     nulls_equal=True, maintain_order="left")

    status = pl.col("status").str.to_lowercase().fill_null("final")
    cancelled = status == "cancelled"
    value, censored, problem = nz.parse_number(pl.col("value"), decimal)
    converted = pl.when(pl.col("_factor").is_not_null()).then(value * pl.col("_factor") + pl.col("_offset"))
    sampled = nz.parse_datetime(pl.col("sampled_at"))

    for name in ("result_id", "patient_id", "sampled_at", "analyte"):
        checks.add(pl.col(name).is_null(), nz.MISSING_VALUE, f"required value missing in column {name}")
    for name in ("value", "unit"):
        checks.add(pl.col(name).is_null() & ~cancelled, nz.MISSING_VALUE,
                   f"required value missing in column {name}")
    checks.add(sampled.is_null(), nz.BAD_DATE, "sampled_at is not a valid ISO date or date-time")
    checks.add(pl.col("_analyte").is_null(), nz.UNKNOWN_CODE,
               "analyte code is not in the code map (reference/analyte_codes.csv or ingest.extra_codes)")
    checks.add(problem.is_not_null() & ~cancelled, problem, _number_reason("value", problem, decimal))
    checks.add(
        pl.col("_factor").is_null() & ~cancelled,
        nz.UNIT_MISMATCH,
        pl.format("unit '{}' does not fit analyte {} (no conversion to {})",
                  pl.col("unit").str.slice(0, 40), pl.col("_analyte"), pl.col("_canonical_unit")),
    )
    typed = {
        "sampled_at": sampled,
        "code": pl.col("analyte"),
        "analyte": pl.col("_analyte"),
        "method": pl.col("_method"),
        "value": converted,
        "unit": pl.col("_canonical_unit"),
        "censored": pl.when(converted.is_not_null()).then(censored),
        "value_raw": pl.col("value").fill_null(""),
        "unit_raw": pl.col("unit").fill_null(""),
        "status": status,
    }
    return text, typed, {"sampled_at": sampled, "value": value}


def _number_reason(name: str, problem: pl.Expr, decimal: str) -> pl.Expr:
    ambiguous = (
        f"{name} uses a decimal mark that does not match this file's ('{decimal}'), "
        "e.g. 5,4 in a comma-separated file; not guessed"
    )
    return pl.when(problem == nz.AMBIGUOUS_DECIMAL).then(pl.lit(ambiguous)).otherwise(
        pl.lit(f"{name} is not a number")
    )


def _refuse_unreadable_columns(
    delivered: Delivered, spec: TableSpec, parsed: pl.DataFrame, names: list[str], decimal: str
) -> None:
    """A typed column of which not one delivered value could be read is a structural error."""
    if not names:
        return
    counts = parsed.select(
        *(pl.col(f"_has_{n}").sum().alias(f"has_{n}") for n in names),
        *(pl.col(f"_read_{n}").sum().alias(f"read_{n}") for n in names),
    ).row(0, named=True)
    for name in names:
        if counts[f"has_{name}"] and not counts[f"read_{name}"]:
            kind = spec.column(name).kind
            mark = f" with decimal mark '{decimal}'" if kind == NUMBER else ""
            raise DeliveryError(
                f"{delivered.path.name}: column {name}: no value could be read as {_KIND_WORDS[kind]}{mark}"
            )


def _quarantine_rows(spec: TableSpec, raw: pl.DataFrame, rejected: pl.DataFrame) -> pl.DataFrame:
    if rejected.height == 0:
        return pl.DataFrame(
            schema={"row_number": pl.Int64, "row_key": pl.String, "rule": pl.String,
                    "reason": pl.String, "raw": pl.String}
        )
    rows = raw.join(rejected, on=ROW, how="inner").sort(ROW)
    delivered = [pl.col(c).str.slice(0, RAW_MAX_CHARS).alias(c) for c in spec.column_names]
    return rows.with_columns(delivered).select(
        pl.col(ROW).alias("row_number"),
        pl.col(spec.key[0]).str.strip_chars().str.slice(0, 200).alias("row_key"),
        pl.col("_rule").alias("rule"),
        pl.col("_reason").alias("reason"),
        db.raw_json(spec.column_names),
    )
