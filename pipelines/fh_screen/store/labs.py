"""Lab results reduced in DuckDB to one row per patient and sample day (``sql/feat_lab_days.sql``).

Why: the features never need a raw lab row, only, per sample day, the last result of each
lipid kind, the day's extremes of the other analytes they read and how many results there
were. DuckDB reduces the rows where they are stored, so polars receives day rows instead of
every result: at 1M people a partition's 2.6M usable results become about 391,000 days, the
partition's peak memory falls by about 190 MiB, and its CPU stays the same (handing the raw
rows to polars and reducing them there cost as much as this SQL; ``features.build``).

One definition for both sources: ``lab_days`` runs the SQL over rows in a store (the features
step: ``features.build.load_inputs``), ``lab_days_of`` runs the same SQL over given rows on an
in-memory DuckDB (``features.build.make_inputs``: tests, what-if analyses, and the cascade and
worklist, which have read their patients' rows already).
"""

from __future__ import annotations

from functools import lru_cache

import duckdb
import polars as pl

from fh_screen.store import db


def lab_days(con: duckdb.DuckDBPyConnection, rows: str, params: dict | None = None) -> pl.DataFrame:
    """The day rows of the lab rows the query ``rows`` returns (SQL text from code, never
    input; ``params`` its parameters)."""
    return con.execute(f"WITH labs AS ({rows})\n{db.sql('feat_lab_days')}", params or {}).pl()


@lru_cache(maxsize=1)
def _memory() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def lab_days_of(rows: pl.DataFrame) -> pl.DataFrame:
    """The day rows of the lab rows in ``rows`` (columns as ``feat_lab_results.sql``), on an
    in-memory DuckDB: each call has its own cursor, so callers on several threads do not mix."""
    with _memory().cursor() as con:
        con.register("_rows", rows)
        return lab_days(con, "SELECT * FROM _rows")
