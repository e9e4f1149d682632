"""What the DAGs call, tested without a scheduler: partitions, run dates, delivery
readiness, step-by-step runs, publishing guard, catch-up order, retraining hand-off."""

from __future__ import annotations

import json
import sys
import types
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from fh_screen.app import orchestration as orch
from fh_screen.app import run as run_mod
from fh_screen.errors import DeliveryError, UserError


def _partition(root: Path, name: str = "nord") -> dict:
    return orch.partitions(
        json.dumps([{"name": name, "extracts": str(root / "ex"), "db": str(root / "db" / "fh.duckdb"),
                     "out": str(root / "out")}])
    )[0]


def _delivery(root: Path, day: str, tables=("patients", "lab_results")) -> Path:
    folder = root / "ex" / day
    folder.mkdir(parents=True)
    for table in tables:
        (folder / f"{table}.csv").write_text("id\n1\n", encoding="utf-8")
    return folder


@pytest.fixture
def fake_steps(monkeypatch):
    """Three tiny steps standing in for the real ones: they write a file and a table."""
    calls: list[tuple[str, str]] = []
    fail_on: set[str] = set()

    def make(name):
        def step(ctx):
            calls.append((name, ctx.as_of.isoformat()))
            if ctx.as_of.isoformat() in fail_on and name == "validate":
                raise DeliveryError("patients.csv: column birth_date is missing")
            (ctx.work_dir / f"{name}.txt").write_text(ctx.as_of.isoformat(), encoding="utf-8")
            return {"ok": True}
        return step

    monkeypatch.setattr(run_mod, "STEPS", [run_mod.Step(n, make(n)) for n in ("stage", "validate", "load")])
    return types.SimpleNamespace(calls=calls, fail_on=fail_on)


# --- partitions -------------------------------------------------------------------------

def test_partitions_default_to_one_from_the_environment():
    env = {"FH_SCREEN_EXTRACTS": "/d/ex", "FH_SCREEN_DB": "/d/fh.duckdb", "FH_SCREEN_OUT": "/d/out",
           "FH_SCREEN_CONFIG": "/etc/fh.yaml"}
    (part,) = orch.partitions(None, env)
    assert part == {"name": "default", "extracts": "/d/ex", "db": "/d/fh.duckdb", "out": "/d/out",
                    "config": "/etc/fh.yaml"}


def test_partitions_without_environment_use_relative_defaults():
    (part,) = orch.partitions("", {})
    assert (part["extracts"], part["db"], part["out"], part["config"]) == ("extracts", "fh_screen.duckdb", "runs", None)


def test_partitions_from_json_keep_order_and_are_plain_dicts():
    raw = json.dumps([{"name": "nord", "extracts": "/n/ex", "db": "/n/fh.duckdb", "out": "/n/out"},
                      {"name": "syd", "extracts": "/s/ex", "db": "/s/fh.duckdb", "out": "/s/out", "config": "/s.yaml"}])
    parts = orch.partitions(raw, {})
    assert [p["name"] for p in parts] == ["nord", "syd"]
    assert parts[1]["config"] == "/s.yaml"
    assert all(type(p) is dict for p in parts)


@pytest.mark.parametrize(
    "raw, message",
    [
        ("[]", "non-empty"),
        ('{"name": "x"}', "non-empty"),
        ('[{"name": "a", "extracts": "e", "db": "/x/one.duckdb", "out": "o"},'
         ' {"name": "a", "extracts": "e2", "db": "/x/two.duckdb", "out": "o2"}]', "unique"),
        ('[{"name": "a", "extracts": "e", "db": "/x/one.duckdb", "out": "o"},'
         ' {"name": "b", "extracts": "e2", "db": "/x/../x/one.duckdb", "out": "o2"}]', "own DuckDB file"),
        ('[{"name": "a b", "extracts": "e", "db": "d", "out": "o"}]', "partition name"),
        ('[{"name": "a", "extracts": "e", "db": "d", "out": "o", "password": "x"}]', "password: Extra inputs"),
        ('[{"name": "a", "extracts": "e"}]', "db: Field required"),
        ("[{'name': 'a'}]", "Expecting property name"),
    ],
)
def test_partitions_refuse_bad_configuration_at_once(raw, message):
    with pytest.raises(UserError, match=f"^fh_screen_partitions: .*{message}"):
        orch.partitions(raw, {})


# --- run date -------------------------------------------------------------------------

def test_as_of_is_the_logical_date_in_the_region_time_zone():
    # 23:30 UTC on the 22nd is 00:30 on the 23rd in Copenhagen (CET, UTC+1).
    late = datetime(2026, 11, 22, 23, 30, tzinfo=timezone.utc)
    assert orch.as_of_for(late, late, "Europe/Copenhagen") == date(2026, 11, 23)
    assert orch.as_of_for(late, late, "UTC") == date(2026, 11, 22)


def test_as_of_of_a_manual_run_without_logical_date_uses_run_after():
    run_after = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert orch.as_of_for(None, run_after, "Europe/Copenhagen") == date(2026, 11, 23)


# --- delivery readiness ----------------------------------------------------------------

def test_delivery_ready_needs_both_required_tables(tmp_path):
    assert not orch.delivery_ready(tmp_path / "missing")
    folder = _delivery(tmp_path, "2026-11-23", tables=("patients",))
    assert not orch.delivery_ready(folder)
    (folder / "lab_results.parquet").write_bytes(b"PAR1")
    assert orch.delivery_ready(folder)


def test_delivery_ready_ignores_other_suffixes_and_folders(tmp_path):
    folder = tmp_path / "2026-11-23"
    (folder / "lab_results.csv").mkdir(parents=True)          # a folder, not a file
    (folder / "patients.txt").write_text("x", encoding="utf-8")
    assert not orch.delivery_ready(folder)


# --- one step at a time ----------------------------------------------------------------

def test_steps_run_one_by_one_then_publish(tmp_path, fake_steps):
    part = _partition(tmp_path)
    night = date(2026, 11, 23)
    _delivery(tmp_path, "2026-11-23")
    for name in ("stage", "validate", "load"):
        assert orch.run_step(part, night, name)["ok"] is True
    out = Path(orch.publish_night(part, night))
    assert out == (tmp_path / "out" / "2026-11-23").resolve()
    assert sorted(p.name for p in out.iterdir()) == [
        "audit.json", "load.txt", "run_manifest.json", "settings.json", "stage.txt", "validate.txt"]
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    assert list(manifest["steps"]) == ["load", "stage", "validate"]  # sorted keys
    assert manifest["as_of"] == "2026-11-23"


def test_publish_refuses_a_night_with_a_step_missing(tmp_path, fake_steps):
    part = _partition(tmp_path)
    night = date(2026, 11, 23)
    _delivery(tmp_path, "2026-11-23")
    orch.run_step(part, night, "stage")
    orch.run_step(part, night, "load")           # validate never ran (e.g. marked success by hand)
    with pytest.raises(UserError, match="validate"):
        orch.publish_night(part, night)
    assert not (tmp_path / "out" / "2026-11-23").exists()


def test_first_step_starts_the_night_afresh(tmp_path, fake_steps):
    part = _partition(tmp_path)
    night = date(2026, 11, 23)
    _delivery(tmp_path, "2026-11-23")
    for name in ("stage", "validate"):
        orch.run_step(part, night, name)
    stale = tmp_path / "out" / ".2026-11-23.partial" / "leftover.txt"
    stale.write_text("from an earlier attempt", encoding="utf-8")
    orch.run_step(part, night, "stage")
    assert not stale.exists()
    orch.run_step(part, night, "load")
    with pytest.raises(UserError, match="validate"):   # the earlier validate report is gone too
        orch.publish_night(part, night)


def test_unknown_step_is_refused(tmp_path, fake_steps):
    with pytest.raises(ValueError, match="unknown step"):
        orch.run_step(_partition(tmp_path), date(2026, 11, 23), "rules")


def test_a_held_database_lock_raises_run_locked(tmp_path, fake_steps):
    part = _partition(tmp_path)
    _delivery(tmp_path, "2026-11-23")
    Path(part["db"]).parent.mkdir(parents=True)
    with run_mod.lock_for(Path(part["db"])):
        with pytest.raises(run_mod.RunLocked):
            orch.run_step(part, date(2026, 11, 23), "stage", lock_timeout=0.05)
    assert fake_steps.calls == []


def test_a_step_error_propagates_and_nothing_is_published(tmp_path, fake_steps):
    part = _partition(tmp_path)
    night = date(2026, 11, 23)
    _delivery(tmp_path, "2026-11-23")
    fake_steps.fail_on.add("2026-11-23")
    orch.run_step(part, night, "stage")
    with pytest.raises(DeliveryError):
        orch.run_step(part, night, "validate")
    assert not (tmp_path / "out" / "2026-11-23").exists()


# --- catch-up -----------------------------------------------------------------------------

def test_pending_deliveries_are_unpublished_complete_and_not_in_the_future(tmp_path):
    part = _partition(tmp_path)
    for day in ("2026-11-20", "2026-11-21", "2026-11-23", "2026-11-24"):
        _delivery(tmp_path, day)
    _delivery(tmp_path, "2026-11-22", tables=("patients",))     # incomplete
    _delivery(tmp_path, "2026-13-01")                           # not a date
    (tmp_path / "ex" / "notes").mkdir()
    published = tmp_path / "out" / "2026-11-20"
    published.mkdir(parents=True)
    (published / "run_manifest.json").write_text("{}", encoding="utf-8")
    today = date(2026, 11, 23)
    assert orch.pending_deliveries(part, today) == ["2026-11-21", "2026-11-23"]
    assert orch.pending_deliveries(part, today, first=date(2026, 11, 22)) == ["2026-11-23"]
    assert orch.pending_deliveries(part, today, last=date(2026, 11, 22)) == ["2026-11-21"]


def test_pending_deliveries_of_a_missing_root_is_empty(tmp_path):
    assert orch.pending_deliveries(_partition(tmp_path), date(2026, 11, 23)) == []


def test_catch_up_runs_nights_oldest_first_and_stops_at_a_failure(tmp_path, fake_steps):
    part = _partition(tmp_path)
    for day in ("2026-11-21", "2026-11-22", "2026-11-23"):
        _delivery(tmp_path, day)
    fake_steps.fail_on.add("2026-11-22")
    with pytest.raises(DeliveryError):
        orch.catch_up(part, ["2026-11-23", "2026-11-21", "2026-11-22"])
    assert [d for _, d in fake_steps.calls] == ["2026-11-21"] * 3 + ["2026-11-22"] * 2
    assert (tmp_path / "out" / "2026-11-21" / "run_manifest.json").exists()
    assert not (tmp_path / "out" / "2026-11-22").exists()
    assert not (tmp_path / "out" / "2026-11-23").exists()


def test_catch_up_returns_the_nights_run(tmp_path, fake_steps):
    part = _partition(tmp_path)
    for day in ("2026-11-21", "2026-11-22"):
        _delivery(tmp_path, day)
    assert orch.catch_up(part, ["2026-11-22", "2026-11-21"]) == ["2026-11-21", "2026-11-22"]


# --- retraining hand-off ---------------------------------------------------------------

def _fake_retrain(monkeypatch, seen: dict):
    def retrain_and_maybe_promote(db_path, models_dir, as_of, name="fh_gbm", prevalence=None):
        lock = run_mod.lock_for(db_path, timeout=0.01)
        with pytest.raises(Exception):                 # held by the caller
            lock.acquire()
        seen.update(db=db_path, models=models_dir, name=name, as_of=as_of, prevalence=prevalence)
        return {"promoted": False, "as_of": as_of, "reason": "not better on the holdout"}

    module = types.ModuleType("fh_screen.training.retrain")
    module.retrain_and_maybe_promote = retrain_and_maybe_promote
    monkeypatch.setitem(sys.modules, "fh_screen.training.retrain", module)


def _with_settings(part: dict, tmp_path: Path, text: str) -> dict:
    config = tmp_path / "region.yaml"
    config.write_text(text, encoding="utf-8")
    return {**part, "config": str(config)}


def test_retrain_works_on_the_model_folder_of_the_region_settings_under_the_lock(tmp_path, monkeypatch):
    seen: dict = {}
    _fake_retrain(monkeypatch, seen)
    part = _with_settings(_partition(tmp_path), tmp_path, f"model:\n  artefact: {tmp_path / 'models' / 'nord_gbm'}\n")
    decision = orch.retrain(part, date(2026, 12, 1))
    assert decision == {"promoted": False, "as_of": "2026-12-01", "reason": "not better on the holdout"}
    assert seen == {"db": Path(part["db"]), "models": tmp_path / "models", "name": "nord_gbm",
                    "as_of": date(2026, 12, 1), "prevalence": 1 / 250}


def test_retrain_skips_a_region_with_the_model_switched_off(tmp_path, monkeypatch):
    seen: dict = {}
    _fake_retrain(monkeypatch, seen)
    part = _with_settings(_partition(tmp_path), tmp_path, "model:\n  enabled: false\n")
    decision = orch.retrain(part, date(2026, 12, 1))
    assert decision["promoted"] is False and "switched off" in decision["skipped"]
    assert seen == {}


# --- task defaults ----------------------------------------------------------------------

def test_task_defaults_retry_with_backoff_but_fail_fast_on_unusable_input():
    from airflow.sdk import RetryAction

    from fh_screen.app.alerts import task_failed

    args = orch.task_defaults(orch.timedelta(minutes=45))
    assert args["retries"] >= 2 and args["retry_exponential_backoff"] > 1
    assert args["execution_timeout"] == orch.timedelta(minutes=45)
    assert args["on_failure_callback"] is task_failed
    policy = args["retry_policy"]
    assert policy.evaluate(DeliveryError("x"), 1, 4).action is RetryAction.FAIL
    assert policy.evaluate(run_mod.RunLocked("busy"), 1, 4).action is RetryAction.DEFAULT
    assert policy.evaluate(OSError("disk"), 1, 4).action is RetryAction.DEFAULT


def test_every_step_has_a_description_for_the_ui():
    assert {s.name for s in run_mod.STEPS} <= set(orch.STEP_DOCS)
