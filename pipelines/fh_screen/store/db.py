"""The only DuckDB edge: connections, schema, transactions and the quarantine table.

SQL text lives in ``sql/*.sql``; values are always bound as parameters and table names
come only from the whitelist below, never from input.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import polars as pl

from fh_screen.config import StoreSettings
from fh_screen.store import files

# The connection type the other layers annotate with (only this package imports duckdb).
Connection = duckdb.DuckDBPyConnection

SQL_DIR = Path(__file__).with_name("sql")

CONTRACT_TABLES = (
    "patients",
    "lab_results",
    "medications",
    "diagnoses",
    "relations",
    "family_history",
    "clinic_outcomes",
    "contacts",
)


def sql(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def connect(
    db_path: str | Path, read_only: bool = False, limits: StoreSettings | None = None, temp_dir: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the store; a writable one is made owner-only (it holds everyone's records).

    Every connection gets the memory bound of ``limits`` (the settings' ``store``; defaults
    when not given). ``temp_dir`` is where DuckDB may spill beyond it: a run passes a folder
    inside its private work folder (made owner-only here, removed with the work folder), so
    spilled rows never land next to the database file or outlive the run.
    """
    con = duckdb.connect(str(db_path), read_only=read_only)
    con.execute("SET enable_progress_bar = false")  # quiet under Airflow, CI and cron
    con.execute("SET memory_limit = ?", [(limits or StoreSettings()).memory_limit])
    if temp_dir is not None:
        con.execute("SET temp_directory = ?", [str(files.ensure_dir(Path(temp_dir)))])
    if not read_only:
        con.execute(sql("schema"))
        con.execute(sql("usable_lab_results"))
        if Path(db_path).is_file():
            os.chmod(db_path, 0o600)
    return con


def store_identity(con: duckdb.DuckDBPyConnection) -> tuple[str, bytes]:
    """(store id, per-store erasure key) of this store, made on first use (see schema.sql)."""
    row = con.execute("SELECT store_id, erasure_key FROM store_identity LIMIT 1").fetchone()
    if row is None:
        row = (secrets.token_hex(8), secrets.token_bytes(32))
        con.execute("INSERT INTO store_identity VALUES (?, ?)", list(row))
    return row[0], bytes(row[1])


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a step's database changes land together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def checked_table(name: str) -> str:
    """Return ``name`` if it is a contract table; identifiers never come from input."""
    if name not in CONTRACT_TABLES:
        raise ValueError(f"unknown table {name!r}")
    return name


def replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    """Create or replace a derived table from a polars frame (name is code, not input)."""
    if not name.isidentifier():
        raise ValueError(f"bad table name {name!r}")
    con.register("_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _frame")
    finally:
        con.unregister("_frame")


# The rows of per-patient files that other tasks wrote (the family partitions) whose patient
# is still in the store. Those tasks read the store without its lock, so ``fhscreen erase``
# may run between them and the gather that loads their files: an erased person's rows are
# left in the files and must not come back into the store.
_PRESENT_ROWS = ("SELECT f.* FROM read_parquet($paths) f "
                 "WHERE f.patient_id IN (SELECT patient_id FROM patients)")


def present_rows(con: duckdb.DuckDBPyConnection, paths: list[str]) -> pl.DataFrame:
    """The rows of ``paths`` (Parquet files with a ``patient_id``) of patients still in
    ``patients`` (``_PRESENT_ROWS``), in the files' order."""
    return con.execute(_PRESENT_ROWS, {"paths": [str(p) for p in paths]}).pl()


def replace_table_from_files(con: duckdb.DuckDBPyConnection, name: str, paths: list[str], order_by: str) -> None:
    """Create or replace a derived table from Parquet files (partitions written by other
    tasks) with the rows of patients still in the store (``_PRESENT_ROWS``), ordered by
    ``order_by``: DuckDB streams them, no frame of the whole table."""
    if not (name.isidentifier() and order_by.isidentifier()):
        raise ValueError(f"bad table or column name {name!r}, {order_by!r}")
    con.execute(f"CREATE OR REPLACE TABLE {name} AS {_PRESENT_ROWS} ORDER BY {order_by}",
                {"paths": [str(p) for p in paths]})


def add_quarantine(con: duckdb.DuckDBPyConnection, delivery_id: str, table: str, bad: pl.DataFrame) -> int:
    """Append rejected rows. ``bad`` has columns row_number, row_key, rule, reason, raw (JSON text)."""
    if bad.height == 0:
        return 0
    frame = bad.select(
        pl.lit(delivery_id).alias("delivery_id"),
        pl.lit(checked_table(table)).alias("table_name"),
        pl.col("row_number").cast(pl.Int64),
        pl.col("row_key").cast(pl.Utf8),
        pl.col("rule").cast(pl.Utf8),
        pl.col("reason").cast(pl.Utf8),
        pl.col("raw").cast(pl.Utf8),
    )
    con.register("_bad", frame)
    try:
        con.execute("INSERT INTO quarantine SELECT * FROM _bad")
    finally:
        con.unregister("_bad")
    return frame.height


def raw_json(columns: list[str]) -> pl.Expr:
    """The delivered values of each row as one JSON object (for quarantine.csv)."""
    return pl.struct(columns).struct.json_encode().alias("raw")
