"""The GX-on-DuckDB workarounds: the connection patch still needed, and sufficient; the
catalog reflection the same as duckdb-engine's.

When ``test_gx_still_needs_the_duckdb_patch`` fails, GX has fixed the bug (or shipped
native DuckDB support): delete ``apply_patch`` in ``fh_screen/stages/validate/gx_duckdb.py``
and its calls.
"""

from __future__ import annotations

import duckdb
import pytest

from fh_screen.stages.validate import gx_duckdb


def _validate_not_null(db_path):
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_sql("duck", connection_string=gx_duckdb.connection_string(db_path))
    batch = source.add_table_asset("t", table_name="t").add_batch_definition_whole_table("all").get_batch()
    result = batch.validate(gxe.ExpectColumnValuesToNotBeNull(column="x"))
    source.get_execution_engine().engine.dispose()
    return result


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "t.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT i AS x FROM range(5) r(i)")
    con.close()
    return path


def test_gx_still_needs_the_duckdb_patch(db_path, monkeypatch):
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    unpatched = tuple(d for d in engine._PERSISTED_CONNECTION_DIALECTS if d != "duckdb")
    monkeypatch.setattr(engine, "_PERSISTED_CONNECTION_DIALECTS", unpatched)
    result = _validate_not_null(db_path)
    assert not result.success, "GX now validates DuckDB without the patch: remove fh_screen/stages/validate/gx_duckdb.py"
    assert "list index out of range" in str(result.exception_info)


def test_patch_makes_duckdb_validation_work(db_path):
    gx_duckdb.apply_patch()
    gx_duckdb.apply_patch()   # idempotent
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    assert sum(d == "duckdb" for d in engine._PERSISTED_CONNECTION_DIALECTS) == 1
    result = _validate_not_null(db_path)
    assert result.success, result.exception_info


def test_catalog_dialect_reflects_every_check_relation_as_duckdb_engine_does(tmp_path):
    """GX reflects each ``gx_<table>`` check relation (columns, primary key): the pipeline's
    dialect must answer exactly as duckdb-engine's emulated PostgreSQL catalog does."""
    import sqlalchemy as sa

    from fh_screen.schemas import TABLES
    from fh_screen.stages.validate.step import known_patients, prepare_checks
    from fh_screen.store import db
    from validation_helpers import make_context

    ctx = make_context(tmp_path)
    with ctx.connect() as con:
        for table in TABLES:   # staged tables as stage writes them, empty
            con.execute(f"CREATE TABLE stg_{table} AS SELECT * EXCLUDE (delivery_id), "
                        f"CAST(NULL AS BIGINT) AS _row FROM {table} WHERE false")
        prepare_checks(con, ctx)
        known_patients(con, ("lab_results",))
        for table in TABLES:
            con.execute(db.sql(f"validate/{table}"))
    ours = sa.create_engine(gx_duckdb.connection_string(ctx.db_path))
    assert isinstance(ours.dialect, gx_duckdb.CatalogDialect)
    engine = sa.create_engine(f"duckdb:///{ctx.db_path}")
    with ours.connect() as a, engine.connect() as b:
        fast, catalog = sa.inspect(a), sa.inspect(b)
        for table in TABLES:
            relation = f"gx_{table}"
            assert repr(fast.get_columns(relation)) == repr(catalog.get_columns(relation)), relation
            assert fast.get_pk_constraint(relation) == catalog.get_pk_constraint(relation), relation
        with pytest.raises(sa.exc.NoSuchTableError):
            fast.get_columns("gx_absent")
    ours.dispose()
    engine.dispose()


# Failing-rows queries shaped as GX 1.24.1 writes them for the pipeline's suites (the uniqueness
# one, a subquery, abridged).
PLAIN = "SELECT _row, x \nFROM gx_t \nWHERE x IS NOT NULL AND (x NOT IN (true))"
PLAIN_2 = "SELECT _row, y \nFROM gx_t \nWHERE y IS NOT NULL AND (y NOT IN ('a', 'b'))"
UNIQUE = ("SELECT _row, y \nFROM (SELECT _row, y, count(*) OVER (PARTITION BY y) AS n FROM gx_t) AS c \n"
          "WHERE y IS NOT NULL AND c.n >= 2")


def test_only_a_plain_condition_on_the_relation_is_read_from_gx_queries():
    from fh_screen.stages.validate.step import row_condition

    assert row_condition(PLAIN, "gx_t") == "x IS NOT NULL AND (x NOT IN (true))"
    assert row_condition(PLAIN, "gx_other") is None
    assert row_condition(UNIQUE, "gx_t") is None
    assert row_condition("SELECT _row, x \nFROM gx_t \nWHERE x IN (SELECT 1)", "gx_t") is None


def test_failed_expectations_read_in_one_scan_select_the_rows_each_query_selects():
    from fh_screen.stages.validate import step

    con = duckdb.connect()
    con.execute("CREATE TABLE gx_t AS SELECT i AS _row, CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS x, "
                "['a', 'b', 'c', NULL][1 + i % 4] AS y FROM range(40) r(i)")
    con.execute("INSERT INTO gx_t VALUES (100, true, 'a')")   # a repeated y: the uniqueness query's row
    con.execute("CREATE TEMP TABLE gx_failed (_row BIGINT, rule_order INTEGER, rule VARCHAR, reason VARCHAR)")
    failed = [(0, "x", "x is wrong", PLAIN), (3, "y", "y is wrong", PLAIN_2), (5, "u", "y twice", UNIQUE)]
    step._collect_failed_rows(con, "gx_t", failed)
    got = con.execute("SELECT rule, list(_row ORDER BY _row) FROM gx_failed GROUP BY rule ORDER BY rule").fetchall()
    expected = [(rule, sorted({r for (r, *_) in con.execute(query).fetchall()}))
                for _, rule, _, query in sorted(failed, key=lambda f: f[1])]
    assert got == expected
    assert all(rows for _, rows in got)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'gx_hits'").fetchone() == (0,)
