"""Great Expectations 1.24.1 on DuckDB: the two workarounds, kept in one place.

GX returns a SQLAlchemy result after its ``with engine.connect()`` block has closed, and
duckdb-engine's shared cursor has dropped the rows by then, so every expectation fails
with ``MetricResolutionError: list index out of range`` (GX issues #10738 and #11579;
native DuckDB support is GX PR #12084, not in 1.24.1). GX already keeps one persistent
connection for SQLite; adding DuckDB to that list fixes it.

``tests/unit/test_validation_gx_duckdb.py`` checks that the bug is still there without
the patch; when GX fixes it that test fails, and the patch can be deleted.

GX also reflects every validated relation (its columns and primary key). duckdb-engine 0.17
answers through DuckDB's emulation of PostgreSQL's catalog: four queries per relation, 50-130 ms
CPU in all, about 0.7 of the 2.5 CPU s a small night's validation cost. ``CatalogDialect`` is
duckdb-engine answering those two questions from DuckDB's own catalog functions (about 10 ms
per relation), registered with SQLAlchemy's dialect registry as ``duckdb+fhscreen``. The same
test file checks that it reflects every check relation exactly as duckdb-engine does (the
check relations are views; for a table with a primary key, DuckDB's catalog names the key,
which the emulated one misses).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from duckdb_engine import Dialect as DuckDBEngineDialect
from sqlalchemy import text
from sqlalchemy.dialects import registry
from sqlalchemy.exc import NoSuchTableError

DRIVER = "fhscreen"
_RELATION = "table_name = :table AND schema_name = coalesce(:schema, current_schema()) AND database_name = current_database()"
# The rows duckdb-engine's catalog query gives the PostgreSQL dialect (a view has no
# generated or identity columns, DuckDB no collations per column).
_COLUMNS = text(
    "SELECT column_name AS name, table_name, pg_catalog.format_type(data_type_id, NULL) AS format_type, "
    "column_default AS \"default\", NOT is_nullable AS not_null, NULL AS generated, NULL AS identity_options, "
    f"comment, NULL AS collation FROM duckdb_columns() WHERE {_RELATION} ORDER BY column_index"
)
_PRIMARY_KEY = text(
    "SELECT constraint_name, constraint_column_names FROM duckdb_constraints() "
    f"WHERE constraint_type = 'PRIMARY KEY' AND {_RELATION}"
)


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
    return f"duckdb+{DRIVER}:///{Path(db_path).resolve()}" + (f"?{query}" if query else "")


class CatalogDialect(DuckDBEngineDialect):
    """duckdb-engine, reflecting a relation's columns and primary key from DuckDB's catalog
    functions instead of its emulated PostgreSQL catalog (same answers; see the module)."""

    supports_statement_cache = False   # as duckdb-engine (SQLAlchemy asks each class to say)

    def get_columns(self, connection, table_name, schema=None, **_reflection_options):
        rows = connection.execute(_COLUMNS, {"table": table_name, "schema": schema}).mappings().all()
        if not rows:
            raise NoSuchTableError(table_name)
        # The PostgreSQL dialect's own reading of such rows (duckdb-engine's path too): the
        # same SQLAlchemy types for the same DuckDB types.
        return self._get_columns_info(rows, {}, {}, schema)[(schema, table_name)]

    def get_pk_constraint(self, connection, table_name, schema=None, **_reflection_options):
        self.get_columns(connection, table_name, schema)   # a missing relation raises, as before
        key = connection.execute(_PRIMARY_KEY, {"table": table_name, "schema": schema}).first()
        return {"constrained_columns": list(key[1]) if key else [], "name": key[0] if key else None}


registry.register(f"duckdb.{DRIVER}", __name__, CatalogDialect.__name__)
