"""Great Expectations 1.24.1 on DuckDB: the one workaround, kept in one place.

GX returns a SQLAlchemy result after its ``with engine.connect()`` block has closed, and
duckdb-engine's shared cursor has dropped the rows by then, so every expectation fails
with ``MetricResolutionError: list index out of range`` (GX issues #10738 and #11579;
native DuckDB support is GX PR #12084, not in 1.24.1). GX already keeps one persistent
connection for SQLite; adding DuckDB to that list fixes it.

``tests/unit/test_validation_gx_duckdb.py`` checks that the bug is still there without
the patch; when GX fixes it that test fails, and this module can be deleted.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode


class _DuckDialect(str):
    """Looks like a ``GXSqlDialect`` member: GX compares both ``name in tuple`` and
    ``url.startswith(dialect.value)``."""

    value = "duckdb"


def apply_patch() -> None:
    """Make GX keep one connection for DuckDB (idempotent; call before ``add_sql``)."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    if "duckdb" not in engine._PERSISTED_CONNECTION_DIALECTS:
        engine._PERSISTED_CONNECTION_DIALECTS = (
            *engine._PERSISTED_CONNECTION_DIALECTS,
            _DuckDialect("duckdb"),
        )


def connection_string(db_path: Path, memory_limit: str | None = None, temp_dir: Path | None = None) -> str:
    """SQLAlchemy URL of a DuckDB file for duckdb-engine, with the store's memory bound and
    spill folder as DuckDB settings (duckdb-engine passes the URL's query on as config), so
    GX's own connection is bounded like the pipeline's (``store.db.connect``)."""
    config = {"memory_limit": memory_limit, "temp_directory": str(temp_dir) if temp_dir else None}
    query = urlencode({k: v for k, v in config.items() if v is not None})
    return f"duckdb:///{Path(db_path).resolve()}" + (f"?{query}" if query else "")
