"""One delivered table (text) -> typed staging rows + the rows that could not be parsed.

Values are parsed column by column (``normalise``), then every check is a column
expression evaluated in one pass. Each rejected row gets the first rule it breaks, in
the order the checks are listed. Duplicate keys within one delivery keep the last row
(by position in the file); the earlier ones are quarantined, so that
received = staged + quarantined holds exactly.
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
_QUARANTINE_SCHEMA = {"row_number": pl.Int64, "row_key": pl.String, "rule": pl.String,
                      "reason": pl.String, "raw": pl.String}


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
    """Ordered (condition, rule, reason) list folded into two columns: _rule and _reason."""

    def __init__(self) -> None:
        self.items: list[tuple[pl.Expr, pl.Expr, pl.Expr]] = []

    def add(self, condition: pl.Expr, rule: str | pl.Expr, reason: str | pl.Expr) -> None:
        rule = pl.lit(rule) if isinstance(rule, str) else rule
        reason = pl.lit(reason) if isinstance(reason, str) else reason
        self.items.append((condition.fill_null(False), rule, reason))

    def any_failed(self) -> pl.Expr:
        """True for a row that breaks at least one check."""
        return pl.any_horizontal(condition for condition, _, _ in self.items).alias("_bad")

    def columns(self) -> list[pl.Expr]:
        rule = reason = None
        for condition, r, why in self.items:
            rule = pl.when(condition).then(r) if rule is None else rule.when(condition).then(r)
            reason = pl.when(condition).then(why) if reason is None else reason.when(condition).then(why)
        return [
            rule.otherwise(pl.lit(None, dtype=pl.String)).alias("_rule"),
            reason.otherwise(pl.lit(None, dtype=pl.String)).alias("_reason"),
        ]


@dataclass
class _Parse:
    """What the per-table functions hand back to ``stage_table``."""

    parsed: dict[str, pl.Series]    # pre-computed columns (named _p_*, _q_*) added to the frame
    typed: dict[str, pl.Expr]       # curated column -> expression over the frame
    readable: dict[str, str]        # typed delivered column -> its parsed column (whole-column check)


def stage_table(delivered: Delivered, extra_codes: dict[str, str]) -> Staged:
    """Parse one delivered table; raise DeliveryError if a whole column is unreadable."""
    spec = TABLES[delivered.table]
    raw = delivered.frame
    # Lab code, unit and status are trimmed once per distinct value (_lab_lookup), value and
    # sampled_at by their parsers for the few values that need it: ten million rows stay cheap.
    lookups = ("analyte", "unit", "status", "value", "sampled_at") if spec.name == "lab_results" else ()
    text = nz.clean(raw, [c for c in spec.column_names if c not in lookups])
    numbers = [c.name for c in spec.columns if c.kind == NUMBER]
    decimal = delivered.decimal or nz.decide_decimal(text, numbers, delivered.delimiter)

    checks = _Checks()
    checks.add(pl.col(EXTRA).is_not_null(), nz.MALFORMED_ROW,
               "row has more fields than the header (an unquoted delimiter or decimal comma?)")
    if spec.name == "lab_results":
        text, parse = _lab_columns(text, checks, decimal, extra_codes)
    else:
        parse = _generic_columns(spec, text, checks, decimal)
    # One context: every check sees the delivered text, not its typed replacement.
    frame = text.with_columns(**parse.parsed)
    _refuse_unreadable_columns(delivered, spec, text, frame, parse.readable, decimal)
    # Nearly every row passes: the rule and reason chains are built for the failing rows
    # only, and the ten million good rows are filtered once, after the duplicate check.
    bad = frame.select(checks.any_failed()).to_series()
    failed = frame.filter(bad).select(ROW, *checks.columns())
    good = frame.select(
        *(parse.typed.get(c, pl.col(c)).alias(c) for c in CURATED_COLUMNS[spec.name]), ROW
    )
    repeated = _repeated_keys(good, spec.key, ~bad)
    duplicates = good.filter(repeated).select(
        ROW,
        pl.lit(nz.DUPLICATE_KEY).alias("_rule"),
        pl.lit("the same key appears again later in this delivery; the later row is kept").alias("_reason"),
    )
    good = good.filter(~bad & ~repeated)
    rejected = pl.concat([failed, duplicates]).sort(ROW)
    return Staged(spec.name, good, _quarantine_rows(spec, raw, rejected), decimal)


def _generic_columns(spec: TableSpec, text: pl.DataFrame, checks: _Checks, decimal: str) -> _Parse:
    out = _Parse({}, {}, {})
    for column in spec.columns:
        if column.required_value:
            checks.add(pl.col(column.name).is_null(), nz.MISSING_VALUE,
                       f"required value missing in column {column.name}")
    for column in spec.columns:
        name, c = column.name, pl.col(column.name)
        if column.kind == DATE:
            out.parsed[f"_p_{name}"] = nz.parse_date(text.get_column(name))
            checks.add(c.is_not_null() & pl.col(f"_p_{name}").is_null(), nz.BAD_DATE,
                       f"{name} is not a valid date in YYYY-MM-DD form")
        elif column.kind == NUMBER:
            value, _, problem = nz.parse_number(text.get_column(name), decimal)
            out.parsed[f"_p_{name}"], out.parsed[f"_q_{name}"] = value, problem
            checks.add(pl.col(f"_q_{name}").is_not_null(), pl.col(f"_q_{name}"),
                       _number_reason(name, pl.col(f"_q_{name}"), decimal))
        elif column.kind == LOWER:
            out.typed[name] = c.str.to_lowercase()
        elif column.kind == UPPER:
            out.typed[name] = c.str.to_uppercase()
        if column.kind in (DATE, NUMBER):
            out.typed[name] = pl.col(f"_p_{name}")
            out.readable[name] = f"_p_{name}"
    if spec.name == "patients":
        out.typed["sex"] = pl.col("sex").str.to_uppercase().fill_null("U")
    if spec.name == "diagnoses":
        out.typed["icd10_code"] = nz.normalise_icd10(pl.col("icd10_code"))
        out.typed["icd10_raw"] = pl.col("icd10_code")
    return out


def _lab_columns(
    text: pl.DataFrame, checks: _Checks, decimal: str, extra_codes: dict[str, str]
) -> tuple[pl.DataFrame, _Parse]:
    """Lab rows: code map, unit conversion, censored values; cancellations need no value.

    Code, unit and status have few distinct values, so they are normalised and looked up
    once per distinct combination (``_lab_lookup``) and joined back to the rows.
    """
    text = nz.lookup_join(text, ["analyte", "unit", "status"], lambda d: _lab_lookup(d, extra_codes))
    value, censored, problem = nz.parse_number(text.get_column("value"), decimal)
    parsed = {
        "_p_sampled_at": nz.parse_datetime(text.get_column("sampled_at")),
        "_p_value": value,
        "_p_censored": censored,
        "_q_value": problem,
    }
    cancelled = pl.col("_cancelled")
    converted = pl.when(pl.col("_factor").is_not_null()).then(
        pl.col("_p_value") * pl.col("_factor") + pl.col("_offset")
    )
    for name in ("result_id", "patient_id", "sampled_at"):
        checks.add(pl.col(name).is_null(), nz.MISSING_VALUE, f"required value missing in column {name}")
    checks.add(pl.col("_code").is_null(), nz.MISSING_VALUE, "required value missing in column analyte")
    checks.add(pl.col("value").is_null() & ~cancelled, nz.MISSING_VALUE, "required value missing in column value")
    checks.add(pl.col("_unit").is_null() & ~cancelled, nz.MISSING_VALUE, "required value missing in column unit")
    checks.add(pl.col("_p_sampled_at").is_null(), nz.BAD_DATE, "sampled_at is not a valid ISO date or date-time")
    checks.add(pl.col("_analyte").is_null(), nz.UNKNOWN_CODE,
               "analyte code is not in the code map (reference/analyte_codes.csv or ingest.extra_codes)")
    checks.add(pl.col("_q_value").is_not_null() & ~cancelled, pl.col("_q_value"),
               _number_reason("value", pl.col("_q_value"), decimal))
    checks.add(pl.col("_factor").is_null() & ~cancelled, nz.UNIT_MISMATCH, pl.col("_unit_reason"))
    typed = {
        "sampled_at": pl.col("_p_sampled_at"),
        "code": pl.col("_code"),
        "analyte": pl.col("_analyte"),
        "method": pl.col("_method"),
        "value": converted,
        "unit": pl.col("_canonical_unit"),
        "censored": pl.when(converted.is_not_null()).then(pl.col("_p_censored")),
        "value_raw": pl.col("value").fill_null(""),
        "unit_raw": pl.col("unit").fill_null(""),
        "status": pl.col("_status"),
    }
    return text, _Parse(parsed, typed, {"sampled_at": "_p_sampled_at", "value": "_p_value"})


def _lab_lookup(distinct: pl.DataFrame, extra_codes: dict[str, str]) -> pl.DataFrame:
    """Per distinct (analyte code, unit, status): canonical analyte, method, unit, factor."""
    codes = nz.code_map(extra_codes).rename(
        {"analyte": "_analyte", "method": "_method", "canonical_unit": "_canonical_unit"}
    )
    units = nz.unit_map().rename({"analyte": "_analyte", "factor": "_factor", "offset": "_offset"})
    code = pl.col("analyte").str.strip_chars()
    unit = pl.col("unit").str.strip_chars()
    status = pl.col("status").str.strip_chars().str.to_lowercase()
    out = (
        distinct.with_columns(
            pl.when(code.str.len_bytes() > 0).then(code).alias("_code"),
            pl.when(unit.str.len_bytes() > 0).then(unit).alias("_unit"),
            pl.when(status.str.len_bytes() > 0).then(status).otherwise(pl.lit("final")).alias("_status"),
        )
        .with_columns(
            pl.col("_code").str.to_uppercase().alias("code_key"),
            nz.unit_key(pl.col("_unit")).alias("unit_key"),
            (pl.col("_status") == "cancelled").alias("_cancelled"),
        )
        .join(codes, on="code_key", how="left", maintain_order="left")
        .join(units, on=["_analyte", "unit_key"], how="left", maintain_order="left")
        .with_columns(
            pl.format("unit '{}' does not fit analyte {} (no conversion to {})",
                      pl.col("_unit").str.slice(0, 40), pl.col("_analyte"), pl.col("_canonical_unit"))
            .alias("_unit_reason")
        )
        .drop("code_key", "unit_key")
    )
    return out


def _number_reason(name: str, problem: pl.Expr, decimal: str) -> pl.Expr:
    ambiguous = (
        f"{name} uses a decimal mark that does not match this file's ('{decimal}'), "
        "e.g. 5,4 in a comma-separated file; not guessed"
    )
    return pl.when(problem == nz.AMBIGUOUS_DECIMAL).then(pl.lit(ambiguous)).otherwise(
        pl.lit(f"{name} is not a number")
    )


def _repeated_keys(good: pl.DataFrame, key: tuple[str, ...], ok: pl.Series) -> pl.Series:
    """True for a passing row (``ok``) whose key appears again in a later passing row.

    A 64-bit hash of the key, sorted, finds whether any key repeats at all (the common
    answer is no, or a handful); only the rows whose hash repeats are compared exactly,
    instead of hashing every key text into a table."""
    key_expr = pl.col(key[0]) if len(key) == 1 else pl.struct(key)
    hashes = good.select(key_expr.hash()).to_series()
    ordered = hashes.filter(ok).sort()
    same = ordered.slice(1) == ordered.slice(0, max(len(ordered) - 1, 0))
    repeated = pl.repeat(False, good.height, eager=True)
    if not same.any():
        return repeated
    candidates = (ok & hashes.is_in(ordered.slice(1).filter(same).implode())).arg_true()
    exact = good.select(key_expr).to_series().gather(candidates).is_last_distinct()
    return repeated.scatter(candidates, ~exact)


def _refuse_unreadable_columns(
    delivered: Delivered, spec: TableSpec, text: pl.DataFrame, frame: pl.DataFrame,
    readable: dict[str, str], decimal: str,
) -> None:
    """A typed column of which not one delivered value could be read is a structural error."""
    if not readable or frame.height == 0:
        return
    has = text.select(pl.col(n).is_not_null().any().alias(n) for n in readable).row(0, named=True)
    read = frame.select(pl.col(p).is_not_null().any().alias(n) for n, p in readable.items()).row(0, named=True)
    for name in readable:
        if has[name] and not read[name]:
            kind = spec.column(name).kind
            mark = f" with decimal mark '{decimal}'" if kind == NUMBER else ""
            raise DeliveryError(
                f"{delivered.path.name}: column {name}: no value could be read as {_KIND_WORDS[kind]}{mark}"
            )


def _quarantine_rows(spec: TableSpec, raw: pl.DataFrame, rejected: pl.DataFrame) -> pl.DataFrame:
    if rejected.height == 0:
        return pl.DataFrame(schema=_QUARANTINE_SCHEMA)
    # _row is the 1-based position in ``raw`` (readers._conform): a gather, not a join.
    rows = raw.gather(rejected.get_column(ROW) - 1).with_columns(rejected.select("_rule", "_reason"))
    delivered = [pl.col(c).str.slice(0, RAW_MAX_CHARS).alias(c) for c in spec.column_names]
    return rows.with_columns(delivered).select(
        pl.col(ROW).alias("row_number"),
        pl.col(spec.key[0]).str.strip_chars().str.slice(0, 200).alias("row_key"),
        pl.col("_rule").alias("rule"),
        pl.col("_reason").alias("reason"),
        db.raw_json(spec.column_names),
    )
