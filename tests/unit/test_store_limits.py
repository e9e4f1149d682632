"""The store's DuckDB is bounded by the settings: every connection of a run gets
``store.memory_limit`` and spills only into an owner-only folder inside the run's private work
folder, never next to the database file (where spilled rows would outlive the run)."""

from __future__ import annotations

from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

from fh_screen.config import Settings, StoreSettings, load_settings
from fh_screen.context import SPILL_DIR, RunContext


def _context(tmp_path: Path, memory_limit: str) -> RunContext:
    settings = load_settings().model_copy(update={"store": StoreSettings(memory_limit=memory_limit)})
    work = tmp_path / "out.partial"
    work.mkdir(mode=0o700)
    return RunContext(settings=settings, db_path=tmp_path / "fh.duckdb", out_dir=tmp_path / "out",
                      work_dir=work, as_of=date(2026, 11, 23))


def test_every_connection_of_a_run_is_bounded_and_spills_inside_the_work_folder(tmp_path):
    ctx = _context(tmp_path, "8MiB")
    for read_only in (False, True):
        with closing(ctx.connect(read_only=read_only)) as con:
            limit, spill = con.execute(
                "SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
            assert limit == "8.0 MiB"
            assert Path(spill) == ctx.work_dir / SPILL_DIR
            assert Path(spill).stat().st_mode & 0o777 == 0o700
    with closing(ctx.connect()) as con:
        # About 16 MB of rows under an 8 MiB bound: DuckDB must spill, and only into the work folder.
        con.execute("CREATE TEMP TABLE big AS SELECT md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s "
                    "FROM range(250000) t(i)")
        spilled = [Path(p) for (p,) in con.execute("SELECT path FROM duckdb_temporary_files()").fetchall()]
        assert spilled and all(p.parent == ctx.work_dir / SPILL_DIR and p.exists() for p in spilled)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fh.duckdb", "out.partial"]


def test_the_memory_limit_is_a_checked_setting():
    assert Settings().store.memory_limit == "1GiB"
    with pytest.raises(ValueError):
        StoreSettings(memory_limit="all of it")
