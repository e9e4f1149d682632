"""The ingestion steps of a run: ``stage`` (delivery -> stg_* tables) and ``load``
(stg_* -> curated tables). Validation runs between them and may delete rows from stg_*
after quarantining them.

Raw -> staged -> curated:

* **stage** reads every delivered file and parses it (``readers``, ``staging``), one
  batch of about 32 MiB of text at a time, so its memory does not grow with the file. All
  structural checks of all files pass before anything is written; then, in one
  transaction, the delivery's old quarantine rows are removed (a rerun starts clean),
  ``stg_<table>`` is replaced for each delivered table (dropped for absent ones) and the
  rows that could not be parsed go to ``quarantine``. A table that arrives whole every
  night (``TableSpec.whole``: patients, contacts) stages only the rows that differ from
  the store, so validate and load cost what changed; the others are counted
  ``unchanged`` (and as loaded: the store holds them as delivered).
* **load** merges stg_* into the curated tables in one transaction: keyed tables replace
  the row with the same key (last delivery wins: corrections, cancellations), the others
  delete rows with the same natural key and insert, so loading a delivery twice changes
  nothing. It then checks received = loaded + quarantined for every table, and drops the
  stg_* tables in the same transaction: they are raw copies of personal data that no
  later step reads, and would otherwise outlive the run outside every erasure path.

Stage, validate and load may run in separate processes (one Airflow task each): what
load needs from stage travels in the run manifest (delivery id, content hash, tables).

Where the time and memory go (the 1M-person region: 10 million lab rows, 730 MB of CSV):
reading and parsing are polars column operations on one piece of a file at a time (phase
``parse``, 18 CPU s; ``read`` is only the header and dialect); most of the rest is DuckDB
compressing the rows it stores, once in stg_* and once in the curated table (``write``,
23-26 CPU s). The step's peak is about 0.9 GB, whatever the size of the files (3.8 GB when
the lab file was read whole). See the step reports' ``cpu_seconds_by_phase``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from fh_screen.store import changes, db, erasure, files
from fh_screen.context import RunContext, log
from fh_screen.schemas import CURATED_COLUMNS, TABLES
from fh_screen.errors import DeliveryError
from fh_screen.stages.ingest.readers import content_hash, file_hashes, find_tables, input_record, read_table
from fh_screen.stages.ingest import normalise as nz
from fh_screen.stages.ingest.staging import Staged, stage_table


def staging_table(table: str) -> str:
    """``stg_<table>`` for a contract table (identifiers never come from input)."""
    return f"stg_{db.checked_table(table)}"


def stage_step(ctx: RunContext) -> dict:
    """Read, check and parse the delivery; write stg_* tables and parse rejects."""
    if ctx.extract_dir is None:
        raise DeliveryError("no delivery folder given (--extract)")
    paths = find_tables(ctx.extract_dir)
    with closing(ctx.connect()) as con:
        register = erasure.register(con)
    clock = _Clock()
    staged: dict[str, Staged] = {}
    reports: dict[str, dict] = {}
    warnings: list[str] = []
    scratch = files.ensure_dir(ctx.work_dir)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashing = pool.submit(file_hashes, ctx.extract_dir)   # hashing overlaps with reading
            for table, path in paths.items():
                staged[table], reports[table] = _stage_file(ctx, table, path, register, clock, scratch, warnings)
            _record_inputs(ctx, hashing.result(), warnings)
        ctx.delivery_id = ctx.extract_dir.name
        ctx.run_id = f"{ctx.as_of.isoformat()}_{ctx.delivery_id}"
        ctx.present_tables = set(paths)
        with clock("write"), closing(ctx.connect()) as con, db.transaction(con):
            unchanged = _write_delivery(con, ctx.delivery_id, staged)
    finally:
        for result in staged.values():
            result.remove_parts()
    absent = [t for t in TABLES if t not in paths]
    _record_tables(ctx, staged, reports, absent, unchanged)
    for warning in warnings:
        log.warning("%s", warning)
    log.info("staged %d tables of delivery %s", len(staged), ctx.delivery_id)
    return {
        "warnings": warnings,
        "delivery_id": ctx.delivery_id,
        "tables": sorted(staged),
        "absent_optional_tables": absent,
        "staged_rows": {t: s.rows - unchanged.get(t, 0) for t, s in staged.items()},
        "unchanged_rows": unchanged,
        "quarantined_rows": {t: s.bad.height for t, s in staged.items()},
        **clock.report(),
    }


def _stage_file(ctx: RunContext, table: str, path: Path, register, clock: _Clock, scratch: Path,
                warnings: list[str]) -> tuple[Staged, dict]:
    """Read and parse one delivered file (people on the erasure register set aside first);
    returns the staged rows and the file's report, and adds a warning for mixed encodings."""
    with clock("read"):
        delivered = read_table(table, path, ctx.settings.ingest)
    with clock("parse"):
        staged = stage_table(delivered, ctx.settings.ingest.extra_codes, scratch, register)
    report = {
        "received": staged.received,
        "set_aside_for_erasure": staged.erased,
        **delivered.report(),
        "decimal": staged.decimal,
        "file": path.name,
        "ignored_columns": list(delivered.ignored_columns),
    }
    if delivered.replaced:
        warnings.append(
            f"{path.name}: UTF-8 with {staged.rules.get(nz.BAD_ENCODING, 0)} rows that are "
            f"not; those rows were quarantined ({nz.BAD_ENCODING}), the rest read as UTF-8"
        )
    return staged, report


def _record_inputs(ctx: RunContext, hashes, warnings: list[str]) -> None:
    """The delivery's file hashes and content hash in the manifest; unknown files are
    recorded by count and hash only, with a warning."""
    ctx.manifest["input_hashes"] = input_record(hashes)
    ctx.manifest["content_hash"] = content_hash(ctx.extract_dir, hashes)
    unknown = ctx.manifest["input_hashes"].get("unknown_files")
    if unknown:
        warnings.append(f"the delivery holds {unknown['files']} files that are not contract tables; "
                        "they were not read (recorded by count and hash only)")


def _write_delivery(con, delivery_id: str, staged: dict[str, Staged]) -> dict[str, int]:
    """Every stg_<table> of the delivery and its parse rejects; a table not delivered has none.
    Returns, per table that arrives whole, how many of its rows the store already holds."""
    con.execute("DELETE FROM quarantine WHERE delivery_id = ?", [delivery_id])
    unchanged = {}
    for table in TABLES:
        if table in staged:
            _write_staging(con, table, staged[table], delivery_id)
            db.add_quarantine(con, delivery_id, table, staged[table].bad)
            if TABLES[table].whole:
                (n,) = con.execute(f"SELECT count(*) FROM {staging_table(table)}").fetchone()
                unchanged[table] = staged[table].rows - n
        else:
            con.execute(f"DROP TABLE IF EXISTS {staging_table(table)}")
    return unchanged


def _record_tables(ctx: RunContext, staged: dict[str, Staged], reports: dict[str, dict], absent: list[str],
                   unchanged: dict[str, int]) -> None:
    """The manifest's per-table counts (received, quarantined, unchanged; loaded comes later)
    for the tables of this delivery only."""
    tables = ctx.manifest.setdefault("tables", {})
    for table in list(tables):
        if table not in staged:
            del tables[table]
    for table, result in staged.items():
        tables[table] = {
            **reports[table],
            "quarantined": result.bad.height,
            "loaded": 0,
            "quarantine_rules": result.rules,
            **({"unchanged": unchanged[table]} if table in unchanged else {}),
        }
    ctx.manifest["tables_absent"] = absent


def _write_staging(con, table: str, result: Staged, delivery_id: str) -> None:
    """CREATE OR REPLACE stg_<table> from the staged Parquet parts, in file order, without
    the rows superseded by a later row with the same key and, for a table that arrives
    whole, without the rows the store already holds exactly as delivered (compared column by
    column, NULL equal to NULL: one hash anti-join, exact where a row hash could collide).
    Rows this same delivery loaded (an attempt killed after load) are staged again, so a
    rerun stages, validates and reports exactly what its first attempt did.

    Parquet is the hand-over because DuckDB builds a compressed table from Parquet's
    dictionary-encoded pages with about half the CPU it needs for the same rows handed over
    as an Arrow or polars frame (measured on 1M lab rows: 3.9 against 5.8 CPU seconds).
    """
    query = f"CREATE OR REPLACE TABLE {staging_table(table)} AS SELECT s.* FROM read_parquet(?) AS s"
    params: list = [[str(p) for p in result.parts]]
    compare = TABLES[table].whole and not _is_empty(con, table)
    if compare:
        # An explicit anti-join on a filtered store: a third of the CPU of NOT EXISTS with the
        # delivery test inside (1M patients: 0.26 against 0.88 CPU seconds).
        same = " AND ".join(f"c.{c} IS NOT DISTINCT FROM s.{c}" for c in CURATED_COLUMNS[table])
        query += f" ANTI JOIN (SELECT * FROM {db.checked_table(table)} WHERE delivery_id <> ?) AS c ON {same}"
        params.append(delivery_id)
    if result.duplicates:
        query += " WHERE s._row NOT IN (SELECT unnest(?::BIGINT[]))"
        params.append(result.duplicates)
    con.execute(query + (" ORDER BY s._row" if compare else ""), params)   # file order, as without the join


def _is_empty(con, table: str) -> bool:
    return not con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {db.checked_table(table)} LIMIT 1)").fetchone()[0]


class _Clock:
    """Wall and CPU seconds per phase, for the step report (where does the time go)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[phase] = self.wall.get(phase, 0.0) + time.perf_counter() - wall
            self.cpu[phase] = self.cpu.get(phase, 0.0) + time.process_time() - cpu

    def report(self) -> dict:
        return {
            "seconds_by_phase": {k: round(v, 3) for k, v in self.wall.items()},
            "cpu_seconds_by_phase": {k: round(v, 3) for k, v in self.cpu.items()},
        }


def load_step(ctx: RunContext) -> dict:
    """Merge stg_* into the curated tables, record the delivery, reconcile the counts.

    Raises:
        RuntimeError: received != loaded + quarantined for a table (a defect, never
            expected); the transaction is rolled back, so nothing is loaded.
    """
    if not ctx.delivery_id:
        raise RuntimeError("load_step needs the stage step of this run first")
    tables = ctx.manifest.setdefault("tables", {})
    clock = _Clock()
    with clock("write"), closing(ctx.connect()) as con, db.transaction(con):
        loaded = {t: _merge(con, t, ctx.delivery_id) for t in TABLES if t in ctx.present_tables}
        con.execute(db.sql("ingest_record_delivery"), {
            "delivery_id": ctx.delivery_id,
            "content_hash": ctx.manifest.get("content_hash", ""),
            "as_of": ctx.as_of,
            "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
        })
        for table in TABLES:   # the raw delivered rows are not kept past their load (see docstring)
            con.execute(f"DROP TABLE IF EXISTS {staging_table(table)}")
        quarantined = dict(con.execute(db.sql("ingest_quarantined"), {"delivery_id": ctx.delivery_id}).fetchall())
        for table, n_loaded in loaded.items():
            counts = tables.setdefault(table, {"received": n_loaded})
            counts["loaded"] = n_loaded + counts.get("unchanged", 0)
            counts["quarantined"] = int(quarantined.get(table, 0))
            erased = counts.get("set_aside_for_erasure", 0)
            if counts["received"] != counts["loaded"] + counts["quarantined"] + erased:
                raise RuntimeError(
                    f"internal error: {table}: received {counts['received']} != loaded "
                    f"{counts['loaded']} + quarantined {counts['quarantined']} + set aside for erasure "
                    f"{erased}; nothing was loaded"
                )
    return {"delivery_id": ctx.delivery_id, "loaded": loaded, **clock.report()}


def _merge(con, table: str, delivery_id: str) -> int:
    """Merge one stg table into its curated table; returns the number of rows merged.

    Rows of the curated table with a key present in stg are deleted (one set-based
    DELETE ... USING), then stg is inserted: last delivery wins, and the same delivery
    twice leaves the table as it was. The patients the replaced and merged rows name are
    noted for the next incremental night (``store.changes.note_loaded``), so it recomputes
    what arrived without scanning the store. Into an empty curated table (a region's first,
    historical delivery) the staged table itself becomes the curated one
    (``_adopt_staging``), which halves the cost of the largest load. Identifiers come
    from the contract, never from input.
    """
    spec = TABLES[table]
    stg = staging_table(table)
    columns = ", ".join(CURATED_COLUMNS[table])
    n = con.execute(f"SELECT count(*) FROM {stg}").fetchone()[0]
    if n == 0:
        return 0
    replaced = None
    if not _is_empty(con, table):
        match = " AND ".join(f"{table}.{k} IS NOT DISTINCT FROM s.{k}" for k in spec.key)
        replaced = con.execute(f"DELETE FROM {table} USING {stg} AS s WHERE {match} "
                               f"{changes.delete_returning_people(table)}").pl()
    changes.note_loaded(con, table, stg, replaced)
    if replaced is None and _adopt_staging(con, table, delivery_id):
        return n
    con.execute(
        f"INSERT INTO {table} ({columns}, delivery_id) SELECT {columns}, ? FROM {stg}",
        [delivery_id],
    )
    return n


def _adopt_staging(con, table: str, delivery_id: str) -> bool:
    """Turn stg_<table> into the (empty) curated table instead of copying its rows.

    Copying ten million rows makes DuckDB compress them all again (about 7 CPU seconds
    per million lab rows here); renaming the staged table, swapping ``_row`` for
    ``delivery_id`` and restoring the NOT NULL constraints costs about half. Done only
    when the result is exactly the table of ``sql/schema.sql``: same columns, order and
    types, no constraint other than NOT NULL. Returns False (nothing changed) otherwise.
    """
    stg = staging_table(table)
    describe = (
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position"
    )
    curated = con.execute(describe, [table]).fetchall()
    staged = con.execute(describe, [stg]).fetchall()
    other_constraints = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? AND constraint_type <> 'NOT NULL'",
        [table],
    ).fetchone()[0]
    same_shape = (
        [c[:2] for c in curated] == [c[:2] for c in staged[:-1]] + [("delivery_id", "VARCHAR")]
        and staged[-1][0] == "_row"
    )
    if other_constraints or not same_shape:
        return False
    con.execute(f"DROP TABLE {table}")
    con.execute(f"ALTER TABLE {stg} RENAME TO {table}")
    con.execute(f"ALTER TABLE {table} DROP COLUMN _row")
    con.execute(f"ALTER TABLE {table} ADD COLUMN delivery_id VARCHAR DEFAULT {_sql_text(delivery_id)}")
    con.execute(f"ALTER TABLE {table} ALTER COLUMN delivery_id DROP DEFAULT")
    for name, _, nullable in curated:
        if nullable == "NO":
            con.execute(f'ALTER TABLE {table} ALTER COLUMN "{name}" SET NOT NULL')
    return True


def _sql_text(value: str) -> str:
    """A SQL string literal (DDL defaults cannot be bound as parameters)."""
    return "'" + value.replace("'", "''") + "'"
