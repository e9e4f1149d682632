"""The GX-on-DuckDB workaround: still needed, and sufficient.

When ``test_gx_still_needs_the_duckdb_patch`` fails, GX has fixed the bug (or shipped
native DuckDB support): delete ``fh_screen/stages/validate/gx_duckdb.py`` and its calls.
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
