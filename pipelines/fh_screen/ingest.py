"""The ingestion steps of a run: ``stage`` (delivery -> stg_* tables) and ``load``
(stg_* -> curated tables). Validation runs between them and may delete rows from stg_*
after quarantining them.

Raw -> staged -> curated:

* **stage** reads every delivered file and parses it (``readers``, ``staging``). All
  structural checks of all files pass before anything is written; then, in one
  transaction, the delivery's old quarantine rows are removed (a rerun starts clean),
  ``stg_<table>`` is replaced for each delivered table (dropped for absent ones) and the
  rows that could not be parsed go to ``quarantine``.
* **load** merges stg_* into the curated tables in one transaction: keyed tables replace
  the row with the same key (last delivery wins: corrections, cancellations), the others
  delete rows with the same natural key and insert, so loading a delivery twice changes
  nothing. It then checks received = loaded + quarantined for every table.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from fh_screen import db
from fh_screen.context import RunContext, log
from fh_screen.contract import CURATED_COLUMNS, TABLES
from fh_screen.errors import DeliveryError
from fh_screen.readers import content_hash, find_tables, read_table
from fh_screen.staging import Staged, stage_table


def staging_table(table: str) -> str:
    """``stg_<table>`` for a contract table (identifiers never come from input)."""
    return f"stg_{db.checked_table(table)}"


def stage_step(ctx: RunContext) -> dict:
    """Read, check and parse the delivery; write stg_* tables and parse rejects."""
    if ctx.extract_dir is None:
        raise DeliveryError("no delivery folder given (--extract)")
    paths = find_tables(ctx.extract_dir)
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(content_hash, ctx.extract_dir)   # hashing overlaps with reading
        staged: dict[str, Staged] = {}
        reads = {}
        for table, path in paths.items():
            reads[table] = read_table(table, path, ctx.settings.ingest)
            staged[table] = stage_table(reads[table], ctx.settings.ingest.extra_codes)
        ctx.manifest["content_hash"] = digest.result()

    ctx.delivery_id = ctx.extract_dir.name
    ctx.run_id = f"{ctx.as_of.isoformat()}_{ctx.delivery_id}"
    ctx.present_tables = set(paths)
    absent = [t for t in TABLES if t not in paths]

    con = ctx.connect()
    try:
        with db.transaction(con):
            con.execute("DELETE FROM quarantine WHERE delivery_id = ?", [ctx.delivery_id])
            for table in TABLES:
                if table in staged:
                    con.register("_staged", staged[table].good)
                    try:
                        con.execute(f"CREATE OR REPLACE TABLE {staging_table(table)} AS SELECT * FROM _staged")
                    finally:
                        con.unregister("_staged")
                    db.add_quarantine(con, ctx.delivery_id, table, staged[table].bad)
                else:
                    con.execute(f"DROP TABLE IF EXISTS {staging_table(table)}")
    finally:
        con.close()

    tables = ctx.manifest.setdefault("tables", {})
    for table in list(tables):
        if table not in staged:
            del tables[table]
    for table, result in staged.items():
        read = reads[table]
        tables[table] = {
            "received": read.frame.height,
            "quarantined": result.bad.height,
            "loaded": 0,
            "format": read.format,
            "delimiter": read.delimiter,
            "encoding": read.encoding,
            "decimal": result.decimal,
            "file": read.path.name,
            "quarantine_rules": result.rules,
            "ignored_columns": list(read.ignored_columns),
        }
    ctx.manifest["tables_absent"] = absent
    log.info("staged %d tables of delivery %s", len(staged), ctx.delivery_id)
    return {
        "delivery_id": ctx.delivery_id,
        "tables": sorted(staged),
        "absent_optional_tables": absent,
        "staged_rows": {t: s.good.height for t, s in staged.items()},
        "quarantined_rows": {t: s.bad.height for t, s in staged.items()},
    }


def load_step(ctx: RunContext) -> dict:
    """Merge stg_* into the curated tables, record the delivery, reconcile the counts."""
    if not ctx.delivery_id:
        raise RuntimeError("load_step needs the stage step of this run first")
    tables = ctx.manifest.setdefault("tables", {})
    con = ctx.connect()
    try:
        with db.transaction(con):
            loaded = {t: _merge(con, t, ctx.delivery_id) for t in TABLES if t in ctx.present_tables}
            con.execute(
                """
                INSERT INTO deliveries VALUES (?, ?, ?, ?)
                ON CONFLICT (delivery_id) DO UPDATE SET
                  content_hash = excluded.content_hash,
                  as_of = CASE WHEN deliveries.content_hash = excluded.content_hash
                               THEN deliveries.as_of ELSE excluded.as_of END,
                  loaded_at = CASE WHEN deliveries.content_hash = excluded.content_hash
                                   THEN deliveries.loaded_at ELSE excluded.loaded_at END
                """,
                [ctx.delivery_id, ctx.manifest.get("content_hash", ""), ctx.as_of,
                 datetime.now(timezone.utc).replace(tzinfo=None)],
            )
            quarantined = dict(
                con.execute(
                    "SELECT table_name, count(DISTINCT row_number) FROM quarantine "
                    "WHERE delivery_id = ? GROUP BY table_name",
                    [ctx.delivery_id],
                ).fetchall()
            )
            for table, n_loaded in loaded.items():
                counts = tables.setdefault(table, {"received": n_loaded})
                counts["loaded"] = n_loaded
                counts["quarantined"] = int(quarantined.get(table, 0))
                if counts["received"] != counts["loaded"] + counts["quarantined"]:
                    raise RuntimeError(
                        f"internal error: {table}: received {counts['received']} != loaded "
                        f"{counts['loaded']} + quarantined {counts['quarantined']}; nothing was loaded"
                    )
    finally:
        con.close()
    return {"delivery_id": ctx.delivery_id, "loaded": loaded}


def _merge(con, table: str, delivery_id: str) -> int:
    """Merge one stg table into its curated table; returns the number of rows merged."""
    spec = TABLES[table]
    stg = staging_table(table)
    columns = ", ".join(CURATED_COLUMNS[table])
    n = con.execute(f"SELECT count(*) FROM {stg}").fetchone()[0]
    if n == 0:
        return 0
    if con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)").fetchone()[0]:
        match = " AND ".join(f"{table}.{k} IS NOT DISTINCT FROM s.{k}" for k in spec.key)
        con.execute(f"DELETE FROM {table} USING {stg} AS s WHERE {match}")
    con.execute(
        f"INSERT INTO {table} ({columns}, delivery_id) SELECT {columns}, ? FROM {stg}",
        [delivery_id],
    )
    return n
