"""Validate step: every staged table of a delivery checked by its reviewed GX suite.

Runs between ``stage`` (which writes ``stg_<table>`` with a ``_row`` column) and
``load``. Three severities, taken from each expectation's ``meta.severity``:

* ``structural`` (required columns): the delivery cannot be used; a ``DeliveryError``
  stops the run before anything is loaded. An empty required table is structural too.
* ``row``: exactly the failing rows move from ``stg_<table>`` to ``quarantine`` with the
  rule ``gx.<expectation type>.<column>``, a plain-language reason and the raw values;
  the run continues.
* ``drift`` (row counts) plus the checks in ``drift``: warnings in the manifest and the
  summary, never fatal.

Patients (and contacts) are validated first, so the other tables' "patient is known"
check uses only the patients that passed. Outputs: Data Docs and
``validation_summary.json`` under ``quality/``, and ``quarantine.csv`` (every rejected
row of the delivery, from staging and from validation).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
import json
import os
import re
from contextlib import closing
from pathlib import Path

import polars as pl

from fh_screen.reference import REFERENCE_DIR
from fh_screen.store import db, files
from fh_screen.stages.validate import drift
from fh_screen.stages.ingest import normalise as nz
from fh_screen.context import SPILL_DIR, RunContext, log
from fh_screen.errors import DeliveryError
from fh_screen.schemas import TABLES
from fh_screen.stages.ingest.staging import RAW_MAX_CHARS

REQUIRED_TABLES = ("patients", "lab_results")
FIRST_PHASE = ("patients", "contacts")
REFERENCE = REFERENCE_DIR
QUARANTINE_CSV = "quarantine.csv"
QUALITY_DIR = "quality"
SUMMARY_JSON = "validation_summary.json"
BACKEND = "duckdb-sql"


def validate_step(ctx: RunContext) -> dict:
    """Validate every staged table, quarantine failing rows, report drift.

    Returns the report stored under ``steps.validate`` in ``run_manifest.json``.
    """
    tables = _staged_tables(ctx)
    _require_rows(ctx, tables)
    quality = files.ensure_dir(ctx.work_dir / QUALITY_DIR)
    try:
        with closing(ctx.connect()) as con:
            prepare_checks(con, ctx)
        summary, warnings = _validate_tables(ctx, tables, quality)
        with closing(ctx.connect()) as con:
            received = {t: int(ctx.manifest["tables"].get(t, {}).get("received", 0)) for t in tables}
            warnings += drift.volume_warnings(con, ctx.delivery_id, ctx.as_of, received, ctx.settings.validation)
            if "lab_results" in tables:
                warnings += drift.lab_warnings(con, ctx.delivery_id, ctx.settings.validation)
            rejected = _write_quarantine_csv(con, ctx)
    finally:
        with closing(ctx.connect()) as con:
            _drop_helpers(con)
    for warning in warnings:
        log.warning("validation drift: %s", warning)
    report = {
        "backend": BACKEND,
        "tables": summary,
        "warnings": warnings,
        "quarantined_rows_in_delivery": rejected,
        "data_docs": f"{QUALITY_DIR}/index.html",
    }
    files.write_text(quality / SUMMARY_JSON, json.dumps(report, indent=2, sort_keys=True))
    _restrict(quality)
    return report


def _validate_tables(ctx: RunContext, tables: list[str], quality: Path) -> tuple[dict, list[str]]:
    """Checkpoint per phase, then quarantine that phase's failing rows before the next."""
    from fh_screen.stages.validate.gx_runner import SuiteRunner, load_suite

    runner = SuiteRunner(ctx.db_path, quality, ctx.settings.store.memory_limit, files.ensure_dir(ctx.work_dir / SPILL_DIR))
    # Words in the run name: GX tries to read a run name as a date, and two dates in a
    # row ('2026-11-24-2026-11-24') parse to an impossible time zone that breaks Data Docs.
    # Names handed to Great Expectations end up unescaped in Data Docs: only safe characters.
    run_name = f"fh-screen delivery {files.safe_name(ctx.delivery_id or 'unnamed')} run {ctx.as_of.isoformat()}"
    run_time = datetime.combine(ctx.as_of, time.min, tzinfo=timezone.utc)
    summary: dict[str, dict] = {t: _unchanged_summary(ctx, t) for t in _nothing_changed(ctx, tables)}
    warnings: list[str] = []
    for phase in _phases([t for t in tables if t not in summary]):
        with closing(ctx.connect()) as con:
            if phase[0] not in FIRST_PHASE:
                known_patients(con, phase)
            for table in phase:
                con.execute(db.sql(f"validate/{table}"))
        results = runner.run(phase, run_name, run_time)
        for table in phase:
            _raise_structural(table, results[table])
        with closing(ctx.connect()) as con:
            for table in phase:
                suite = load_suite(table)
                _quarantine_failures(con, ctx.delivery_id, table, suite, results[table])
                moved = _count_quarantined(con, ctx, table)
                counts = ctx.manifest["tables"][table]
                summary[table] = {
                    "received": counts.get("received"),
                    "quarantined_total": counts["quarantined"],
                    **_table_summary(suite, results[table], moved),
                }
                warnings += _aggregate_warnings(table, suite, results[table])
    runner.build_docs()
    return summary, warnings


def known_patients(con: db.Connection, tables: tuple[str, ...]) -> None:
    """``gx_known_patients`` for the patients the staged rows of ``tables`` name (public: tests
    and the validation benchmark build the same relation)."""
    named = " UNION ALL ".join(f"SELECT patient_id FROM stg_{db.checked_table(t)}" for t in tables)
    con.execute(f"CREATE OR REPLACE TEMP VIEW gx_referenced AS {named}")
    con.execute(db.sql("validate/known_patients"))


def _nothing_changed(ctx: RunContext, tables: list[str]) -> list[str]:
    """Tables that arrive whole of which not one row differs from the store tonight: there is
    nothing to validate (their staged table is empty; a row count check would cry wolf)."""
    with closing(ctx.connect()) as con:
        staged = {t: con.execute(f"SELECT count(*) FROM stg_{db.checked_table(t)}").fetchone()[0]
                  for t in tables if TABLES[t].whole}
    return [t for t, n in staged.items() if n == 0]


def _unchanged_summary(ctx: RunContext, table: str) -> dict:
    counts = ctx.manifest["tables"][table]
    return {"received": counts.get("received"), "quarantined_total": counts["quarantined"],
            "unchanged": counts.get("unchanged", 0), "suite": table, "expectations_run": 0, "passed": 0,
            "failed": 0, "rows_quarantined": 0, "expectations": []}


def _staged_tables(ctx: RunContext) -> list[str]:
    """Contract tables delivered in this run that stage wrote, in contract order."""
    with closing(ctx.connect()) as con:
        existing = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    present = ctx.present_tables or set(ctx.manifest.get("tables", {}))
    return [t for t in db.CONTRACT_TABLES if t in present and f"stg_{t}" in existing]


def _require_rows(ctx: RunContext, tables: list[str]) -> None:
    """An empty or missing required table is structural: nothing can be screened."""
    for table in REQUIRED_TABLES:
        counts = ctx.manifest.get("tables", {}).get(table, {})
        if table not in tables:
            raise DeliveryError(f"{table}: required table was not staged")
        if int(counts.get("received", 0)) == 0:
            raise DeliveryError(f"{table}: the delivered file has no data rows")


def _phases(tables: list[str]) -> list[tuple[str, ...]]:
    first = tuple(t for t in tables if t in FIRST_PHASE)
    rest = tuple(t for t in tables if t not in FIRST_PHASE)
    return [p for p in (first, rest) if p]


def prepare_checks(con: db.Connection, ctx: RunContext) -> None:
    """Run parameters and reference tables the check relations (``validate/<table>.sql``) join
    to; public so that tests and the validation benchmark build the same relations."""
    settings = ctx.settings.validation
    con.execute(
        db.sql("validate/setup"),
        {
            "run_date": ctx.as_of,
            "latest_date": ctx.as_of + timedelta(days=settings.max_future_days),
            "earliest_birth": settings.earliest_birth_date,
        },
    )
    ranges = pl.read_csv(REFERENCE / "analyte_ranges.csv").select("analyte", "unit", "low", "high")
    canonical = pl.read_csv(REFERENCE / "analyte_codes.csv").select(
        "analyte", pl.col("canonical_unit")
    ).unique()
    units = nz.unit_map().select("analyte", "unit_key").unique().join(canonical, on="analyte")
    db.replace_table(con, "gx_analyte_ranges", ranges)
    db.replace_table(con, "gx_units", units)
    if _exists(con, "stg_lab_results"):
        # Delivered unit spellings, normalised once per distinct spelling as stage does.
        delivered = con.execute("SELECT DISTINCT unit_raw FROM stg_lab_results").pl()
        db.replace_table(
            con, "gx_unit_keys", delivered.with_columns(nz.unit_key(pl.col("unit_raw")).alias("unit_key"))
        )


def _exists(con: db.Connection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()[0])


def _raise_structural(table: str, result) -> None:
    """A failed structural expectation stops the run with one line naming table and columns."""
    for r in result.results:
        config = r.expectation_config
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"validation of {table} could not evaluate {config.type}: "
                f"{r.exception_info.get('exception_message')}"
            )
        if config.meta.get("severity") == "structural" and not r.success:
            observed = set(r.result.get("observed_value") or [])
            missing = sorted(set(config.kwargs.get("column_set", [])) - observed)
            raise DeliveryError(f"{table}: required column(s) missing: {', '.join(missing)}")


def _rule(config) -> str:
    column = config.kwargs.get("column")
    return f"gx.{config.type}.{column}" if column else f"gx.{config.type}"


def _quarantine_failures(con: db.Connection, delivery_id: str, table: str, suite: dict, result) -> int:
    """Move exactly the rows that failed row-level expectations to quarantine (one transaction).

    GX reports, for each failed column-map expectation, the SQL that selects the failing
    rows by ``_row``. A row that breaks several expectations is quarantined once: the
    rule is the first it broke (suite order), the reason lists all.
    """
    failed = []
    for order, r in enumerate(result.results):
        config = r.expectation_config
        if config.meta.get("severity") != "row" or r.success:
            continue
        query = (r.result.get("unexpected_index_query") or "").strip().rstrip(";")
        if not query:
            raise RuntimeError(f"validation of {table}: no row query for failed {_rule(config)}")
        failed.append((order, _rule(config), config.meta.get("reason", _rule(config)), query))
    if not failed:
        return 0
    columns = _delivered_columns(suite)
    key = "result_id" if table == "lab_results" else "patient_id"
    stg = f"stg_{db.checked_table(table)}"
    con.execute("CREATE OR REPLACE TEMP TABLE gx_failed (_row BIGINT, rule_order INTEGER, rule VARCHAR, reason VARCHAR)")
    _collect_failed_rows(con, f"gx_{db.checked_table(table)}", failed)
    raw = "json_object(" + ", ".join(
        f"'{c}', left(CAST(s.\"{c}\" AS VARCHAR), {RAW_MAX_CHARS})" for c in columns
    ) + ")"
    bad = con.execute(
        f"""
        SELECT s._row AS row_number, CAST(s."{key}" AS VARCHAR) AS row_key,
               arg_min(f.rule, f.rule_order) AS rule,
               string_agg(f.reason, '; ' ORDER BY f.rule_order) AS reason,
               CAST({raw} AS VARCHAR) AS raw
        FROM gx_failed f JOIN {stg} s ON s._row = f._row
        GROUP BY ALL ORDER BY row_number
        """
    ).pl()
    with db.transaction(con):
        moved = db.add_quarantine(con, delivery_id, table, bad)
        con.execute(f"DELETE FROM {stg} WHERE _row IN (SELECT _row FROM gx_failed)")
    con.execute("DROP TABLE gx_failed")
    log.info("validation quarantined %d rows of %s", moved, table)
    return moved


# GX 1.24.1 writes the failing rows of a column-map expectation as
# "SELECT _row, <column> \nFROM gx_<table> \nWHERE <condition>" (values inlined).
_ROW_QUERY = re.compile(r"SELECT _row, \w+ \nFROM (?P<relation>gx_\w+) \nWHERE (?P<condition>.+)", re.S)


def row_condition(query: str, relation: str) -> str | None:
    """The WHERE condition of GX's failing-rows query on ``relation``, or None for a query of
    another shape (a subquery, as for uniqueness, or another GX version's wording)."""
    match = _ROW_QUERY.fullmatch(query)
    if not match or match["relation"] != relation or "SELECT" in match["condition"].upper():
        return None
    return match["condition"]


def _collect_failed_rows(con: db.Connection, relation: str, failed: list[tuple]) -> None:
    """Insert into ``gx_failed`` the rows each failed expectation selects.

    Every scan of a check relation evaluates its joins for every staged row (about 1.5 CPU s
    for the 10M lab results of a 1M region), so the failed expectations whose query is a plain
    condition on the relation are read in one scan: the rows meeting any condition, with one
    flag per condition, then each expectation's rows from those flags. Other queries run as
    GX wrote them. The queries are GX's compilation of our own suite against our own relation.
    """
    plain = [(order, rule, reason, row_condition(query, relation)) for order, rule, reason, query in failed]
    for (order, rule, reason, query), (_, _, _, condition) in zip(failed, plain):
        if condition is None:
            con.execute(f"INSERT INTO gx_failed SELECT DISTINCT f._row, ?, ?, ? FROM ({query}) AS f",
                        [order, rule, reason])
    plain = [p for p in plain if p[3] is not None]
    if not plain:
        return
    flags = ", ".join(f"({condition}) AS hit_{i}" for i, (*_, condition) in enumerate(plain))
    any_hit = " OR ".join(f"({condition})" for *_, condition in plain)
    con.execute(f"CREATE OR REPLACE TEMP TABLE gx_hits AS SELECT _row, {flags} FROM {relation} WHERE {any_hit}")
    for i, (order, rule, reason, _) in enumerate(plain):
        con.execute(f"INSERT INTO gx_failed SELECT DISTINCT _row, ?, ?, ? FROM gx_hits WHERE hit_{i}",
                    [order, rule, reason])
    con.execute("DROP TABLE gx_hits")


def _delivered_columns(suite: dict) -> list[str]:
    """The staged columns (from the suite's required-columns expectation), without _row."""
    for e in suite["expectations"]:
        if e["type"] == "expect_table_columns_to_match_set":
            return [c for c in e["kwargs"]["column_set"] if c != "_row"]
    raise ValueError(f"suite {suite['name']} has no required-columns expectation")


def _count_quarantined(con: db.Connection, ctx: RunContext, table: str) -> int:
    """Set the table's quarantined count to stage's rows plus this step's rows.

    This step's rows are counted in the database, so a retried step counts them once.
    """
    (ours,) = con.execute(
        "SELECT count(*) FROM quarantine WHERE delivery_id = ? AND table_name = ? AND rule LIKE 'gx.%'",
        [ctx.delivery_id, table],
    ).fetchone()
    counts = ctx.manifest.setdefault("tables", {}).setdefault(table, {})
    staged = int(counts.get("quarantined", 0)) - int(counts.get("quarantined_by_validation", 0))
    counts["quarantined"] = staged + ours
    counts["quarantined_by_validation"] = ours
    return ours


def _table_summary(suite: dict, result, moved: int) -> dict:
    """Per table: expectations run/passed/failed and each one's unexpected count."""
    expectations = []
    for r in result.results:
        config = r.expectation_config
        expectations.append(
            {
                "rule": _rule(config),
                "severity": config.meta.get("severity"),
                "success": bool(r.success),
                "unexpected_count": r.result.get("unexpected_count"),
                "observed_value": r.result.get("observed_value") if config.type.startswith("expect_table_row") else None,
            }
        )
    passed = sum(e["success"] for e in expectations)
    return {
        "suite": suite["name"],
        "expectations_run": len(expectations),
        "passed": passed,
        "failed": len(expectations) - passed,
        "rows_quarantined": moved,
        "expectations": expectations,
    }


def _aggregate_warnings(table: str, suite: dict, result) -> list[str]:
    return [
        f"{table}: {r.expectation_config.meta.get('reason', _rule(r.expectation_config))} "
        f"({_rule(r.expectation_config)})"
        for r in result.results
        if r.expectation_config.meta.get("severity") == "drift" and not r.success
    ]


def _drop_helpers(con: db.Connection) -> None:
    """Remove the gx_* relations; they only exist while validation runs."""
    for name, kind in con.execute(
        "SELECT view_name, 'VIEW' FROM duckdb_views() WHERE view_name LIKE 'gx\\_%' ESCAPE '\\' AND NOT internal "
        "UNION ALL SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE table_name LIKE 'gx\\_%' ESCAPE '\\' AND NOT temporary"
    ).fetchall():
        if not name.isidentifier():
            continue
        con.execute(f"DROP {kind} IF EXISTS {name}")


def _write_quarantine_csv(con: db.Connection, ctx: RunContext) -> int:
    """Every rejected row of this delivery (staging and validation), per the contract."""
    frame = con.execute(
        "SELECT table_name AS \"table\", row_number, row_key, rule, reason, raw "
        "FROM quarantine WHERE delivery_id = ? ORDER BY table_name, row_number, rule",
        [ctx.delivery_id],
    ).pl()
    files.write_csv(ctx.work_dir / QUARANTINE_CSV, frame)
    return frame.height


def _restrict(folder: Path) -> None:
    """Data Docs are written by GX; give them the same owner-only modes as every output."""
    for root, dirs, names in os.walk(folder):
        for d in dirs:
            os.chmod(Path(root) / d, files.DIR_MODE)
        for n in names:
            os.chmod(Path(root) / n, files.FILE_MODE)
