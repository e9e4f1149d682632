"""The nightly job as named steps. The CLI runs them in one process; the Airflow DAG runs
each as its own task. Both go through ``prepare`` -> ``execute_step`` ... -> ``publish``.

Crash safety: outputs go to a hidden work folder next to ``--out`` and are published by
one rename at the end; each step's database changes are one transaction; a lock file
keeps a second run off the same database.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from datetime import date, datetime, timezone
from importlib import import_module
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

import fh_screen
from fh_screen.app import audit
from fh_screen.store import files
from fh_screen.config import Settings, load_settings
from fh_screen.context import RunContext, log

# (step name, "module:function"). Each function takes a RunContext and returns a dict
# that goes into run_manifest.json under steps.<name>.
STEPS: list[tuple[str, str]] = [
    ("stage", "fh_screen.stages.ingest.step:stage_step"),
    ("validate", "fh_screen.stages.validate.step:validate_step"),
    ("load", "fh_screen.stages.ingest.step:load_step"),
    ("features", "fh_screen.stages.features.build:features_step"),
    ("rules", "fh_screen.stages.rules:rules_step"),
    ("score", "fh_screen.stages.score.step:score_step"),
    ("referrals", "fh_screen.stages.referrals.step:referrals_step"),
    ("cascade", "fh_screen.stages.cascade.step:cascade_step"),
    ("metrics", "fh_screen.stages.metrics:metrics_step"),
]

MANIFEST = "run_manifest.json"
# Fault-injection hook for crash tests and recovery drills: with FH_SCREEN_FAIL_AFTER=<step>
# the process ends abruptly (os._exit, no clean-up, like a kill) right after that step has
# committed and saved its manifest. Unset in normal operation.
FAIL_AFTER_ENV = "FH_SCREEN_FAIL_AFTER"
FAIL_EXIT = 70


class RunLocked(RuntimeError):
    """Another run holds this database."""


def step_function(name: str) -> Callable[[RunContext], dict]:
    target = dict(STEPS)[name]
    module, func = target.split(":")
    return getattr(import_module(module), func)


def work_dir_for(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.partial"


def lock_for(db_path: Path, timeout: float = 0) -> FileLock:
    return FileLock(str(db_path) + ".lock", timeout=timeout)


def prepare(
    extract_dir: Path | None,
    db_path: Path,
    out_dir: Path,
    as_of: date,
    settings: Settings | None = None,
) -> RunContext:
    """Create the work folder and the context; resumes the manifest of an unfinished run."""
    settings = settings or load_settings()
    out_dir = Path(out_dir).resolve()
    work = work_dir_for(out_dir)
    files.ensure_dir(out_dir.parent)   # creates missing folders only; an existing parent keeps its mode
    files.ensure_dir(work)
    ctx = RunContext(
        settings=settings,
        db_path=Path(db_path).resolve(),
        out_dir=out_dir,
        work_dir=work,
        as_of=as_of,
        extract_dir=Path(extract_dir).resolve() if extract_dir else None,
    )
    saved = work / MANIFEST
    if saved.exists():
        ctx.manifest = json.loads(saved.read_text(encoding="utf-8"))
        if ctx.manifest.get("as_of") != as_of.isoformat():
            ctx.manifest = {}
    if not ctx.manifest:
        ctx.manifest = {
            "product": "fh-screen",
            "code_version": fh_screen.__version__,
            "as_of": as_of.isoformat(),
            "region": settings.region.region_id,
            "decision_support_notice": "Decision support for clinicians, not a diagnosis.",
            "tables": {},
            "steps": {},
        }
    ctx.delivery_id = ctx.manifest.get("delivery_id", "")
    ctx.run_id = ctx.manifest.get("run_id", "")
    ctx.present_tables = set(ctx.manifest.get("present_tables", []))
    return ctx


def save_manifest(ctx: RunContext) -> None:
    ctx.manifest["delivery_id"] = ctx.delivery_id
    ctx.manifest["run_id"] = ctx.run_id
    ctx.manifest["present_tables"] = sorted(ctx.present_tables)
    files.write_text(ctx.work_dir / MANIFEST, json.dumps(ctx.manifest, indent=2, sort_keys=True, default=str))


def _reset_peak_memory() -> None:
    """Start a new high-water mark of this process's resident memory, so that each step
    reports its own peak (Linux: writing 5 to /proc/self/clear_refs). Elsewhere nothing
    changes and the figure is the process's peak so far."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_memory_mib() -> int:
    """Peak resident memory since the last reset (VmHWM), or of the whole process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def execute_step(ctx: RunContext, name: str) -> dict:
    """Run one step and record its report, wall and CPU seconds and peak memory in the
    manifest: what a data team needs to see where a night's time and memory go."""
    _reset_peak_memory()
    started, cpu = time.perf_counter(), time.process_time()
    report = step_function(name)(ctx) or {}
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["cpu_seconds"] = round(time.process_time() - cpu, 3)
    report["peak_rss_mib"] = _peak_memory_mib()
    ctx.manifest["steps"][name] = report
    save_manifest(ctx)
    log.info("step %s done in %.2f s", name, report["seconds"])
    if os.environ.get(FAIL_AFTER_ENV) == name:
        os._exit(FAIL_EXIT)
    return report


def publish(ctx: RunContext) -> Path:
    """Swap the finished work folder into place as ``out_dir`` in one rename."""
    ctx.manifest["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    files.write_text(ctx.work_dir / "settings.json", ctx.settings.model_dump_json(indent=2))
    save_manifest(ctx)
    audit.write(audit.record(ctx.manifest, ctx.work_dir), ctx.work_dir, ctx.db_path)
    old = ctx.out_dir.parent / f".{ctx.out_dir.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if ctx.out_dir.exists():
        ctx.out_dir.rename(old)
    ctx.work_dir.rename(ctx.out_dir)
    if old.exists():
        shutil.rmtree(old)
    return ctx.out_dir


def run(
    extract_dir: Path,
    db_path: Path,
    out_dir: Path,
    as_of: date,
    settings: Settings | None = None,
    lock_timeout: float = 0,
    on_step: Callable[[str], None] | None = None,
) -> dict:
    """The whole nightly job on one delivery, exactly what the Airflow DAG runs."""
    try:
        with lock_for(Path(db_path), lock_timeout):
            # A killed earlier run may have left files in the work folder; a fresh run must
            # not publish them (the Airflow DAG does the same in its first task).
            shutil.rmtree(work_dir_for(Path(out_dir).resolve()), ignore_errors=True)
            ctx = prepare(extract_dir, db_path, out_dir, as_of, settings)
            ctx.manifest["steps"] = {}
            for name, _ in STEPS:
                if on_step:
                    on_step(name)
                execute_step(ctx, name)
            publish(ctx)
            return ctx.manifest
    except Timeout as exc:
        raise RunLocked(
            "another fh-screen run is using this database; try again when it has finished"
        ) from exc
