"""No raw copy of a delivery outlives its run: staging tables, Parquet parts, the work
folder and the moved-aside old outputs. Raw delivered rows are personal data outside
every erasure path."""

from __future__ import annotations

import duckdb
import pytest

from adversarial_helpers import run_args
from fh_screen.app import run
from fh_screen.context import SPILL_DIR


def _leftovers(region) -> list[str]:
    root = region["root"]
    found = [p.name for p in root.iterdir() if p.name.startswith(".out.") and not p.name.endswith(".lock")]
    found += [str(p.relative_to(root)) for p in root.rglob("*.parquet")]
    # DuckDB's spill folder (inside the work folder) and its default one next to the store
    found += [str(p.relative_to(root)) for p in root.rglob(SPILL_DIR)]
    found += [str(p.relative_to(root)) for p in root.rglob("*.duckdb.tmp")]
    con = duckdb.connect(str(region["db"]), read_only=True)
    try:
        found += [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, 'stg_')").fetchall()]
    finally:
        con.close()
    return found


def test_a_run_and_a_rerun_leave_no_raw_copy(region, fhscreen):
    assert fhscreen(*run_args(region))[0] == 0
    assert _leftovers(region) == []
    assert fhscreen(*run_args(region))[0] == 0        # a rerun of the same delivery
    assert _leftovers(region) == []


def test_a_failed_run_leaves_no_work_folder(region, fhscreen, monkeypatch):
    real = run.execute_step

    def failing(ctx, name):
        if name == "features":
            raise RuntimeError("a step failed")
        return real(ctx, name)

    monkeypatch.setattr(run, "execute_step", failing)
    with pytest.raises(RuntimeError):
        fhscreen(*run_args(region))
    assert not (region["root"] / ".out.partial").exists()
    assert not region["out"].exists()
    assert _leftovers(region) == []
