"""``run.STEPS`` declares what each step writes; two real nights show the declaration is
the whole truth: the store holds exactly the declared tables and the published folder
exactly the declared files (plus the run's own manifest, settings and audit record)."""

from __future__ import annotations

import duckdb

from fh_screen import schemas
from fh_screen.app import run
from reliability_helpers import FIXTURES, NIGHT1, NIGHT2, run_night, settings

RUN_RECORDS = {run.MANIFEST, "settings.json", "audit.json"}


def test_a_run_writes_exactly_the_declared_tables_and_files(tmp_path):
    cfg = settings(tmp_path)
    db_path = tmp_path / "store.duckdb"
    for night, extract in ((NIGHT1, FIXTURES / "mini"), (NIGHT2, FIXTURES / "mini_next")):
        out = tmp_path / night.isoformat()
        run_night(extract, db_path, out, night, cfg)
        declared_files = {f for s in run.STEPS for f in s.files} | RUN_RECORDS
        assert {p.name for p in out.iterdir()} == declared_files
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                           "ORDER BY table_name, ordinal_position").fetchall()
    columns = {t: tuple((c, k) for table, c, k in rows if table == t) for t in tables}
    declared = {t for s in run.STEPS for t in s.writes} | set(run.STORE_RECORDS)
    # Staging tables (raw delivered rows) are dropped by the load step that reads them.
    assert tables == {t for t in declared if not t.startswith("stg_")}
    # Every table, derived ones included, has exactly the columns and types schemas.STORE declares.
    assert {t: c for t, c in columns.items() if c != schemas.STORE.get(t)} == {}
