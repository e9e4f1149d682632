"""Crash safety, per-step transactions and the run lock.

Scenario: night 1 is published; night 2 is killed at a step boundary, then rerun. While
killed, the published folder must still be night 1 exactly; after the rerun, every output
file and every database table must equal those of an uninterrupted night 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock

from fh_screen.store import db
from fh_screen.app import run
from reliability_helpers import (
    FIXTURES, NIGHT1, NIGHT2, PYTHON, ROOT, cli, copy_state, db_snapshot,
    out_snapshot, run_night, settings,
)

STEPS = run.STEPS
NAMES = [s.name for s in STEPS]
MINI, MINI_NEXT = FIXTURES / "mini", FIXTURES / "mini_next"


class Killed(BaseException):
    """Stands in for the process dying (BaseException: no step may swallow it)."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Night 1 published (the state every test starts from) and an uninterrupted night 2."""
    tmp = tmp_path_factory.mktemp("reference")
    cfg = settings(tmp)
    db_path, out = tmp / "store.duckdb", tmp / "out"
    run_night(MINI, db_path, out, NIGHT1, cfg)
    night1 = copy_state(db_path, out, tmp / "night1")
    night1_out = out_snapshot(out)
    run_night(MINI_NEXT, db_path, out, NIGHT2, cfg)
    return {"cfg": cfg, "night1": night1, "night1_out": night1_out,
            "night2_db": db_snapshot(db_path), "night2_out": out_snapshot(out)}


@contextmanager
def failing_commit():
    """Every db.transaction fails after its body ran, just before COMMIT (the real
    transaction then has to roll back everything the step wrote)."""
    real = db.transaction

    @contextmanager
    def dying(con):
        with real(con):
            yield con
            raise Killed("killed before commit")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db, "transaction", dying)
        yield


def test_two_uninterrupted_runs_are_identical(reference, tmp_path):
    """The comparison below is meaningful: a clean rerun reproduces night 2 exactly."""
    db_path, out = copy_state(*reference["night1"], tmp_path)
    run_night(MINI_NEXT, db_path, out, NIGHT2, reference["cfg"])
    assert out_snapshot(out) == reference["night2_out"]
    assert db_snapshot(db_path) == reference["night2_db"]


@pytest.mark.parametrize("after", [None, *NAMES], ids=["before-" + NAMES[0], *("after-" + n for n in NAMES)])
def test_kill_at_step_boundary_then_rerun(reference, tmp_path, monkeypatch, after):
    db_path, out = copy_state(*reference["night1"], tmp_path)
    cfg = reference["cfg"]
    work = run.work_dir_for(out.resolve())
    if after is not None:
        # The fault hook of execute_step, with os._exit replaced so the test survives it.
        monkeypatch.setenv(run.FAIL_AFTER_ENV, after)
        monkeypatch.setattr(run.os, "_exit", lambda code: (_ for _ in ()).throw(Killed(code)))
        with pytest.raises(Killed):
            run_night(MINI_NEXT, db_path, out, NIGHT2, cfg)
        monkeypatch.delenv(run.FAIL_AFTER_ENV)
        assert work.is_dir(), "the killed run's work folder is where its partial outputs are"
    # Nothing partial is published: the folder is still night 1, byte for byte.
    assert out_snapshot(out) == reference["night1_out"]
    assert [p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")] == ["out"]

    position = 0 if after is None else NAMES.index(after) + 1
    if position < len(NAMES):
        # The next step fails midway (after writing, before commit): no partial rows.
        before = db_snapshot(db_path)
        ctx = run.prepare(MINI_NEXT, db_path, out, NIGHT2, cfg)
        with failing_commit():
            try:   # a step that writes nothing to the store opens no transaction and completes
                for name in NAMES[: position + 1] if after is None else [NAMES[position]]:
                    run.execute_step(ctx, name)
            except Killed:
                pass
        assert db_snapshot(db_path) == before, f"step {NAMES[position]} left rows of a failed transaction"
        assert out_snapshot(out) == reference["night1_out"]

    run_night(MINI_NEXT, db_path, out, NIGHT2, cfg)
    assert out_snapshot(out) == reference["night2_out"]
    assert db_snapshot(db_path) == reference["night2_db"]
    assert not work.exists()


def test_stale_work_folder_is_never_published(reference, tmp_path):
    """Leftovers of a killed run of other data must not slip into the next publish."""
    db_path, out = copy_state(*reference["night1"], tmp_path)
    work = run.work_dir_for(out.resolve())
    (work / "letters").mkdir(parents=True)
    (work / "letters" / "index_P9999.html").write_text("from a killed run of another delivery")
    (work / "P9999-list.csv").write_text("from a killed run of another delivery")
    run_night(MINI_NEXT, db_path, out, NIGHT2, reference["cfg"])
    assert out_snapshot(out) == reference["night2_out"]


def test_hard_kills_in_real_processes_then_rerun(reference, tmp_path):
    """Two real processes die with os._exit: one at a step boundary through the CLI's
    fault hook, one inside the first transaction after that boundary, before COMMIT.
    Reruns converge."""
    cfg_file = tmp_path / "settings.yaml"
    cfg_file.write_text("model:\n  enabled: false\n", encoding="utf-8")
    middle, later = NAMES[len(NAMES) // 2], NAMES[len(NAMES) // 2 + 1:]
    a_db, a_out = copy_state(*reference["night1"], tmp_path / "boundary")
    b_db, b_out = copy_state(*reference["night1"], tmp_path / "in_transaction")
    args = lambda db_path, out: ["run", "--extract", str(MINI_NEXT), "--db", str(db_path), "--out", str(out),
                                 "--as-of", NIGHT2.isoformat(), "--config", str(cfg_file), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "pipelines")}
    boundary = subprocess.Popen(
        [PYTHON, "-c", "import sys; from fh_screen.app.cli import main; sys.exit(main(sys.argv[1:]))",
         *args(a_db, a_out)], env={**env, run.FAIL_AFTER_ENV: middle},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    in_transaction = subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(f"""
            import os, sys
            from contextlib import contextmanager
            import fh_screen.store.db as db
            import fh_screen.app.run as r
            real = db.transaction
            @contextmanager
            def dying(con):
                with real(con):
                    yield con
                    if r.ACTIVE in {later!r}:
                        os._exit(71)
            db.transaction = dying
            real_step = r.step_function
            def tracking(name):
                r.ACTIVE = name
                return real_step(name)
            r.step_function = tracking
            from fh_screen.app.cli import main
            sys.exit(main(sys.argv[1:]))
        """), *args(b_db, b_out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert boundary.wait(timeout=600) == run.FAIL_EXIT, boundary.stderr.read().decode()
    assert in_transaction.wait(timeout=600) == 71, in_transaction.stderr.read().decode()
    for db_path, out in ((a_db, a_out), (b_db, b_out)):
        assert out_snapshot(out) == reference["night1_out"]
        run_night(MINI_NEXT, db_path, out, NIGHT2, reference["cfg"])
        assert out_snapshot(out) == reference["night2_out"]
        assert db_snapshot(db_path) == reference["night2_db"]


# --- the lock -------------------------------------------------------------------------


def _run_args(tmp_path: Path, extra: list[str] = ()) -> list[str]:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("model:\n  enabled: false\n", encoding="utf-8")
    return ["run", "--extract", str(MINI), "--db", str(tmp_path / "store.duckdb"), "--out",
            str(tmp_path / "out"), "--as-of", NIGHT1.isoformat(), "--config", str(cfg), "--quiet", *extra]


def test_second_run_refuses_while_the_first_holds_the_database(tmp_path):
    with run.lock_for(tmp_path / "store.duckdb"):
        proc = cli(_run_args(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 3
    message = stderr.decode().strip()
    assert message == "fhscreen: another fh-screen run is using this database; try again when it has finished"
    assert not (tmp_path / "store.duckdb").exists() and not (tmp_path / "out").exists()
    assert not run.work_dir_for((tmp_path / "out").resolve()).exists()


def test_second_run_with_wait_starts_only_when_the_lock_is_released(tmp_path):
    """The waiting process reports (filelock debug log) that it is blocked; while it is,
    it has touched nothing; after release it runs to completion."""
    driver = ("import logging, sys; lg = logging.getLogger('filelock'); lg.setLevel(logging.DEBUG); "
              "lg.addHandler(logging.StreamHandler()); "
              "from fh_screen.app.cli import main; sys.exit(main(sys.argv[1:]))")
    err = tmp_path / "stderr.txt"
    out_dir, work = tmp_path / "out", run.work_dir_for((tmp_path / "out").resolve())
    env = {**os.environ, "PYTHONPATH": str(ROOT / "pipelines")}
    holder = run.lock_for(tmp_path / "store.duckdb")
    holder.acquire()
    try:
        with err.open("wb") as handle:
            proc = subprocess.Popen([PYTHON, "-c", driver, *_run_args(tmp_path, ["--wait", "600"])],
                                    env=env, stdout=subprocess.PIPE, stderr=handle)
        deadline = time.monotonic() + 300     # a watchdog, not a timing assertion
        while "not acquired" not in err.read_text(errors="replace"):
            assert proc.poll() is None, f"second run ended while the lock was held: {err.read_text()[-500:]}"
            assert time.monotonic() < deadline, "second run never tried the lock"
            time.sleep(0.2)
        assert proc.poll() is None
        assert not out_dir.exists() and not work.exists() and not (tmp_path / "store.duckdb").exists()
    finally:
        holder.release()
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.read_text()[-2000:]
    assert (out_dir / run.MANIFEST).is_file()
    assert "outputs:" in stdout.decode()
