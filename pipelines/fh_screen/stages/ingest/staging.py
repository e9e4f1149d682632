"""One delivered table (text) -> typed staging rows + the rows that could not be parsed.

Values are parsed column by column (``normalise``), then every check is a column
expression evaluated in one pass. Each rejected row gets the first rule it breaks, in
the order the checks are listed. Duplicate keys within one delivery keep the last row
(by position in the file); the earlier ones are quarantined, so that
received = staged + quarantined holds exactly.

The file is read and parsed one batch at a time (``readers.Delivered.batches``: about
32 MiB of text, some 450,000 lab rows) and each batch's accepted rows are written at
once to an owner-only Parquet part in the run's private work folder; its rejected rows
become quarantine rows at once, while its text is still at hand. Nothing of the file is
kept whole: a 10-million-row lab file read whole held 1.9 GB of text before parsing, and
parsed at once needed about 10 GB. Parsing is row by row, so batches give the same
result as the whole file. What needs the whole file is decided over all batches:

* the decimal mark (``auto``) is the comma as soon as one number is written with one; a
  file whose first decimal comma comes after the first batch is read again with it;
* a typed column of which no value can be read is refused after the last batch;
* repeated keys are found from one 64-bit hash per staged row, read back from the parts
  (8 bytes a row), and compared exactly where a hash repeats; the batches that hold a
  superseded row are read again for its delivered text.

The parts go into DuckDB in one statement (``ingest``) and are removed then.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from fh_screen.store import db, files
from fh_screen.stages.ingest import normalise as nz
from fh_screen.schemas import CURATED_COLUMNS, DATE, DATETIME, LOWER, NUMBER, TABLES, UPPER, TableSpec
from fh_screen.errors import DeliveryError
from fh_screen.stages.ingest.readers import BATCH_BYTES, EXTRA, ROW, Delivered, Reread
from fh_screen.store.erasure import ErasureRegister

RAW_MAX_CHARS = 1000   # a huge field is cut in quarantine.csv, not copied whole

_KIND_WORDS = {DATE: "a date (YYYY-MM-DD)", DATETIME: "a date or date-time (ISO)", NUMBER: "a number"}
_QUARANTINE_SCHEMA = {"row_number": pl.Int64, "row_key": pl.String, "rule": pl.String,
                      "reason": pl.String, "raw": pl.String}


@dataclass
class Staged:
    table: str
    parts: list[Path]       # Parquet parts of the accepted rows: curated columns (sql/schema.sql,
                            # no delivery_id) + _row, in file order
    duplicates: list[int]   # _row of accepted rows superseded by a later row with the same key
    rows: int               # accepted rows net of the duplicates
    bad: pl.DataFrame       # row_number, row_key, rule, reason, raw: for db.add_quarantine
    decimal: str | None
    received: int = 0       # data rows in the delivered file
    erased: int = 0         # of which set aside for erasure (never parsed)

    def good(self) -> pl.DataFrame:
        """The staged rows read back from the parts (for checks and tests; the run hands the
        parts to DuckDB directly)."""
        return pl.scan_parquet(self.parts).filter(~pl.col(ROW).is_in(self.duplicates)).collect()

    def remove_parts(self) -> None:
        for path in self.parts:
            path.unlink(missing_ok=True)

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


def stage_table(
    delivered: Delivered, extra_codes: dict[str, str], scratch: Path,
    register: ErasureRegister | None = None, batch_bytes: int = BATCH_BYTES,
) -> Staged:
    """Parse one delivered table into Parquet parts under ``scratch`` (a private folder),
    people on the erasure ``register`` set aside first; raise DeliveryError if the table
    is unusable (no part is left behind then)."""
    decimal = delivered.decimal
    while True:
        # Parts left by a killed attempt (no clean-up ran) would break the exclusive create
        # and must not be published with the work folder.
        for stale in scratch.glob(f".stg_{delivered.table}.*.parquet"):
            stale.unlink()
        try:
            return _stage_batches(delivered, extra_codes, scratch, register, batch_bytes, decimal)
        except _DecimalComma:
            decimal = ","
        except Reread:
            pass


class _DecimalComma(Exception):
    """A decimal comma came after batches were parsed with the dot: parse them again."""


@dataclass
class _Pass:
    """What one pass over the batches collects."""

    parts: list[Path]
    quarantine: list[pl.DataFrame]
    first_rows: dict[int, int]          # batch number -> its first _row
    values: dict[str, tuple[bool, bool]]   # typed column -> (has a delivered value, one was read)
    received: int = 0
    erased: int = 0
    staged: int = 0


def _stage_batches(delivered: Delivered, extra_codes: dict[str, str], scratch: Path,
                   register: ErasureRegister | None, batch_bytes: int, decimal: str | None) -> Staged:
    spec = TABLES[delivered.table]
    numbers = [c.name for c in spec.columns if c.kind == NUMBER]
    # Until a value says otherwise, a file whose mark is not configured is read with the dot.
    mark = decimal or "."
    run = _Pass([], [], {}, {})
    try:
        for number, raw in delivered.batches(batch_bytes):
            run.received += raw.height
            if raw.height:
                run.first_rows[number] = int(raw.get_column(ROW)[0])
            if register is not None:
                raw, erased = register.set_aside(raw)
                run.erased += erased
            # The decimal pattern allows surrounding blanks, so the raw text decides as the cleaned would.
            if decimal is None and mark == "." and nz.decide_decimal(raw, numbers, delivered.delimiter) == ",":
                if run.parts:
                    raise _DecimalComma()
                mark = ","
            batch = _stage_batch(spec, raw, mark, extra_codes, delivered.replaced)
            run.parts.append(_write_part(batch.good, scratch / f".stg_{spec.name}.{len(run.parts):05d}.parquet"))
            run.quarantine.append(_quarantine_rows(spec, raw, batch.failed))
            run.staged += batch.good.height
            run.values = {name: (has or run.values.get(name, (False, False))[0],
                                 read or run.values.get(name, (False, False))[1])
                          for name, (has, read) in batch.values.items()}
            del batch, raw
        if spec.required and run.received == 0:
            raise DeliveryError(f"{delivered.path.name}: required table has no data rows")
        _refuse_unreadable_columns(delivered, spec, run.values, mark)
        superseded = _superseded(run.parts, spec.key)
        run.quarantine.extend(_duplicate_rows(delivered, spec, superseded, run.first_rows))
    except BaseException:
        for path in run.parts:
            path.unlink(missing_ok=True)
        raise
    bad = pl.concat(run.quarantine).sort("row_number")
    return Staged(spec.name, run.parts, superseded.to_list(), run.staged - superseded.len(), bad, mark,
                  run.received, run.erased)


def _write_part(rows: pl.DataFrame, path: Path) -> Path:
    """Write rows to a new owner-only Parquet file (refuses to overwrite one). Without column
    statistics (DuckDB does not use them for a full read) writing costs about a fifth less
    (10M lab rows: 3.3 against 4.1 CPU seconds)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, files.FILE_MODE), "wb") as handle:
        rows.write_parquet(handle, compression="snappy", statistics=False)
    return path


@dataclass
class _Batch:
    good: pl.DataFrame              # rows that passed every check: curated columns + _row
    failed: pl.DataFrame            # _row, _rule, _reason of the rows that did not
    values: dict[str, tuple[bool, bool]]   # typed column -> (has a delivered value, one was read)


def _stage_batch(
    spec: TableSpec, raw: pl.DataFrame, decimal: str, extra_codes: dict[str, str], replaced: bool = False
) -> _Batch:
    """Parse and check one batch of delivered rows."""
    # Lab code, unit and status are trimmed once per distinct value (_lab_lookup), value and
    # sampled_at by their parsers for the few values that need it: ten million rows stay cheap.
    lookups = ("analyte", "unit", "status", "value", "sampled_at") if spec.name == "lab_results" else ()
    text = nz.clean(raw, [c for c in spec.column_names if c not in lookups])

    checks = _Checks()
    checks.add(pl.col(EXTRA).is_not_null(), nz.MALFORMED_ROW,
               "row has more fields than the header (an unquoted delimiter or decimal comma?)")
    if replaced:
        checks.add(pl.any_horizontal(pl.col(c).str.contains("\ufffd", literal=True) for c in spec.column_names),
                   nz.BAD_ENCODING, "row has bytes that are not UTF-8 (the rest of the file is UTF-8); not guessed")
    for name in spec.column_names:
        checks.add(pl.col(name).str.len_bytes() > nz.MAX_FIELD_BYTES, nz.FIELD_TOO_LONG,
                   f"{name} is longer than {nz.MAX_FIELD_BYTES} bytes")
    if spec.name == "lab_results":
        text, parse = _lab_columns(text, checks, decimal, extra_codes)
    else:
        parse = _generic_columns(spec, text, checks, decimal)
    # One context: every check sees the delivered text, not its typed replacement.
    frame = text.with_columns(**parse.parsed)
    # Nearly every row passes: the rule and reason chains are built for the failing rows
    # only, and the curated columns are selected before the one filter of the good rows.
    bad = frame.select(checks.any_failed()).to_series()
    return _Batch(
        good=frame.select(
            *(parse.typed.get(c, pl.col(c)).alias(c) for c in CURATED_COLUMNS[spec.name]), ROW
        ).filter(~bad),
        failed=frame.filter(bad).select(ROW, *checks.columns()),
        values=_values(text, frame, parse.readable),
    )


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
            checks.add(pl.col(f"_p_{name}") < pl.lit(nz.EARLIEST_DATE).str.to_date(), nz.BAD_DATE,
                       f"{name} is before {nz.EARLIEST_DATE}: a placeholder, not a date")
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
    checks.add(pl.col("_p_sampled_at").is_null(), nz.BAD_DATE,
               "sampled_at is not a valid ISO date or date-time in local time (no zone)")
    checks.add(pl.col("_p_sampled_at") < pl.lit(nz.EARLIEST_DATE).str.to_datetime(time_unit="us"), nz.BAD_DATE,
               f"sampled_at is before {nz.EARLIEST_DATE}: a placeholder, not a date")
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


def _superseded(parts: list[Path], key: tuple[str, ...]) -> pl.Series:
    """_row of the staged rows whose key appears again in a later row (file order).

    One 64-bit hash per row, read back from the parts, finds whether any key repeats at
    all (the common answer is no, or a handful); only the rows whose hash repeats are read
    back with their keys and compared exactly."""
    key_expr = pl.col(key[0]) if len(key) == 1 else pl.struct(key)
    ordered = pl.scan_parquet(parts).select(key_expr.hash().alias("_h")).collect().to_series().sort()
    same = ordered.slice(1) == ordered.slice(0, max(len(ordered) - 1, 0))
    if not same.any():
        return pl.Series(ROW, [], dtype=pl.Int64)
    repeated = ordered.slice(1).filter(same).unique()
    del ordered, same
    candidates = pl.scan_parquet(parts).filter(key_expr.hash().is_in(repeated.implode())).select(*key, ROW).collect()
    return candidates.filter(~candidates.select(key_expr.is_last_distinct()).to_series()).get_column(ROW)


def _duplicate_rows(delivered: Delivered, spec: TableSpec, superseded: pl.Series,
                    first_rows: dict[int, int]) -> list[pl.DataFrame]:
    """Quarantine rows for the superseded rows, their text read again from their batches."""
    if superseded.is_empty():
        return []
    numbers, starts = zip(*sorted(first_rows.items(), key=lambda item: item[1]))
    batch_of = pl.Series(starts).search_sorted(superseded, side="right") - 1
    rejected = superseded.to_frame().with_columns(
        batch_of.alias("_batch"),
        pl.lit(nz.DUPLICATE_KEY).alias("_rule"),
        pl.lit("the same key appears again later in this delivery; the later row is kept").alias("_reason"),
    )
    out = []
    for (index,), rows in rejected.sort(ROW).group_by("_batch", maintain_order=True):
        raw = delivered.rows_again(numbers[index], starts[index], rows.get_column(ROW).to_list())
        out.append(_quarantine_rows(spec, raw, rows))
    return out


def _values(text: pl.DataFrame, frame: pl.DataFrame, parsed: dict[str, str]) -> dict[str, tuple[bool, bool]]:
    """Per typed column: whether the batch has a delivered value, and whether one was read."""
    if not parsed or frame.height == 0:
        return {name: (False, False) for name in parsed}
    has = text.select(pl.col(n).is_not_null().any().alias(n) for n in parsed).row(0, named=True)
    read = frame.select(pl.col(p).is_not_null().any().alias(n) for n, p in parsed.items()).row(0, named=True)
    return {name: (has[name], read[name]) for name in parsed}


def _refuse_unreadable_columns(delivered: Delivered, spec: TableSpec, values: dict[str, tuple[bool, bool]],
                               decimal: str) -> None:
    """A typed column of which not one delivered value could be read is a structural error."""
    for name, (has, read) in values.items():
        if has and not read:
            kind = spec.column(name).kind
            mark = f" with decimal mark '{decimal}'" if kind == NUMBER else ""
            raise DeliveryError(
                f"{delivered.path.name}: column {name}: no value could be read as {_KIND_WORDS[kind]}{mark}"
            )


def _quarantine_rows(spec: TableSpec, raw: pl.DataFrame, rejected: pl.DataFrame) -> pl.DataFrame:
    if rejected.height == 0:
        return pl.DataFrame(schema=_QUARANTINE_SCHEMA)
    # _row is the 1-based row in the delivered file; rows set aside for erasure are gone
    # from ``raw``, so rows are found by _row rather than by position (picked first: a join
    # with the whole batch costs more).
    raw = raw.filter(pl.col(ROW).is_in(rejected.get_column(ROW).implode()))
    rows = raw.join(rejected.select(ROW, "_rule", "_reason"), on=ROW, how="inner", maintain_order="right")
    delivered = [pl.col(c).str.slice(0, RAW_MAX_CHARS).alias(c) for c in spec.column_names]
    return rows.with_columns(delivered).select(
        pl.col(ROW).alias("row_number"),
        pl.col(spec.key[0]).str.strip_chars().str.slice(0, 200).alias("row_key"),
        pl.col("_rule").alias("rule"),
        pl.col("_reason").alias("reason"),
        db.raw_json(spec.column_names),
    )
