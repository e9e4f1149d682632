"""``schemas.STORE`` declares every table a step writes, once; the DDL, the steps' column
lists and the declared data flow agree with it. (The Great Expectations column sets are
checked against ``CURATED_COLUMNS`` in test_validation_suites.py; the store a real two-night
run leaves, derived tables included, in tests/integration/test_data_flow.py.)"""

from __future__ import annotations

from fh_screen import schemas
from fh_screen.app import run
from fh_screen.stages.cascade import step as cascade
from fh_screen.stages.referrals import backlog, step as referrals
from fh_screen.stages.rules import results
from fh_screen.stages.score import step as score
from fh_screen.store import db

# DDL files beside schema.sql (run by db.connect), each run by the step that owns its tables.
OWNED_DDL = ("referrals_schema", "cascade_ledger", "validate/delivery_stats")


def store_columns(con) -> dict[str, tuple[tuple[str, str], ...]]:
    rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                       "ORDER BY table_name, ordinal_position").fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        tables.setdefault(table, []).append((column, kind))
    return {name: tuple(columns) for name, columns in tables.items()}


def test_the_ddl_creates_exactly_the_declared_columns(tmp_path):
    """A column added to a CREATE TABLE but not to schemas.STORE (or the other way round),
    or a changed type, fails here."""
    con = db.connect(tmp_path / "store.duckdb")
    try:
        for name in OWNED_DDL:
            con.execute(db.sql(name))
        created = store_columns(con)
    finally:
        con.close()
    assert set(created) <= set(schemas.STORE), "a table the DDL creates is not declared"
    assert {t: cols for t, cols in created.items() if cols != schemas.STORE[t]} == {}


def test_every_table_a_step_writes_is_declared_and_nothing_else():
    written = {t for s in run.STEPS for t in s.writes if not t.startswith("stg_")} | set(run.STORE_RECORDS)
    assert written == set(schemas.STORE)
    staged = {t[len("stg_"):] for s in run.STEPS for t in s.writes if t.startswith("stg_")}
    assert staged == set(schemas.TABLES) == set(schemas.CURATED_COLUMNS)


def test_the_curated_columns_are_the_store_columns_without_the_delivery():
    for name in schemas.TABLES:
        assert [*schemas.CURATED_COLUMNS[name], "delivery_id"] == schemas.column_names(name)
        assert set(schemas.TABLES[name].column_names) <= set(schemas.CURATED_COLUMNS[name])


def test_the_steps_column_lists_are_the_declared_ones():
    assert referrals.EVENT_COLUMNS == list(referrals.EVENT_SCHEMA) == schemas.column_names("referral_events")
    assert backlog.RUN_COLUMNS == schemas.column_names("selection_runs")
    assert cascade.LEDGER_COLUMNS == schemas.column_names("cascade_ledger")
    assert list(score.SCHEMA) == schemas.column_names("model_scores")
    assert [*results.CONTRACT_COLUMNS, *results.EXTRA_COLUMNS] == schemas.column_names("rule_results")
