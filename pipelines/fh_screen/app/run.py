"""The nightly job as named steps. The CLI runs them in one process; the Airflow DAG runs
each as its own task. Both go through ``prepare`` -> ``execute_step`` ... -> ``publish``.

Crash safety: outputs go to a hidden work folder next to ``--out`` and are published by
one rename at the end; each step's database changes are one transaction; lock files
keep a second run off the same database and output folder. What may be written and
replaced, and how, is decided in ``fh_screen.app.publishing``.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime, timezone
from pathlib import Path
from dataclasses import dataclass
from typing import Callable

import fh_screen
from fh_screen import schemas
from fh_screen.app import audit, publishing
from fh_screen.app.publishing import RunLocked, lock_for, work_dir_for  # noqa: F401 (the run's API)
from fh_screen.config import Settings, load_settings
from fh_screen.context import PARTS_DIR, SPILL_DIR, RunContext, log, measured
from fh_screen.stages import metrics
from fh_screen.stages.cascade import step as cascade
from fh_screen.stages.features import partitions as feature_parts
from fh_screen.stages.ingest import step as ingest
from fh_screen.stages.referrals import step as referrals
from fh_screen.stages.rules import step as rules
from fh_screen.stages.score import step as score
from fh_screen.stages.validate import step as validate
from fh_screen.store import files

@dataclass(frozen=True)
class Partitioned:
    """A step whose per-patient work runs in partitions of whole families: ``plan`` decides
    the work and returns how many partitions; ``build`` makes one partition's files (its
    features, then their rule results and model scores) from the store opened read-only;
    ``gather`` loads every partition into the store (the one writer) and returns the step's
    report; ``planned`` tells how many partitions a saved plan has (None: no plan for the
    night). ``fhscreen run`` calls them in turn in one process; the nightly DAG maps ``build``
    over Airflow workers. The same functions, the same outputs."""

    plan: Callable[[RunContext], int]
    build: Callable[[RunContext, int], dict]
    gather: Callable[[RunContext], dict]
    planned: Callable[[RunContext], int | None]

    def run_in_process(self, ctx: RunContext) -> dict:
        for part in range(self.plan(ctx)):
            self.build(ctx, part)
        return self.gather(ctx)


def build_family_partition(ctx: RunContext, part: int) -> dict:
    """One family partition's per-patient work: its features, then from them its rule
    results and its eligible patients' model scores (the rules and score steps gather those
    files), in the same task and memory."""
    report = feature_parts.build(ctx, part)
    report[rules.NAME] = rules.build_partition(ctx, *feature_parts.partition_files(ctx, part, rules.NAME))
    report[score.NAME] = score.build_partition(ctx, part)
    return report


FEATURE_PARTITIONS = Partitioned(feature_parts.plan, build_family_partition, feature_parts.gather,
                                 feature_parts.planned)


@dataclass(frozen=True)
class Step:
    """One step of the nightly job and the data it depends on.

    ``run`` takes the run's context and returns what goes into ``run_manifest.json`` under
    ``steps.<name>``. ``reads`` and ``writes`` name the store tables (and, for the first
    step, the delivered tables ``delivery/<table>``) the step uses tonight; ``history``
    the tables it reads as earlier nights left them (the referral ledger, the curated
    tables a new delivery is compared with); ``files`` what it writes into the run folder.
    One list of these is the data flow: a test checks that every table is written before
    it is read, the Airflow task documentation shows it, and a partial rerun can tell
    which steps a change reaches.
    """

    name: str
    run: Callable[[RunContext], dict]
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    partitioned: Partitioned | None = None

    def doc(self) -> str:
        """The data flow of this step in one line of Markdown (Airflow's task documentation)."""
        parts = [f"{label}: {', '.join(f'`{t}`' for t in tables)}"
                 for label, tables in (("Reads", self.reads), ("reads from earlier nights", self.history),
                                       ("writes", self.writes), ("files", self.files)) if tables]
        return "; ".join(parts) + "."


# The delivered tables, as the stage step reads them from the delivery folder.
DELIVERED = tuple(f"delivery/{name}" for name in schemas.TABLES)
STAGED = tuple(f"stg_{name}" for name in schemas.TABLES)
CURATED = tuple(schemas.TABLES)
FEATURE_INPUTS = ("patients", "lab_results", "medications", "diagnoses", "relations", "family_history",
                  "clinic_outcomes")

# What an incremental night remembers of the last one (fh_screen.store.changes).
INCREMENTAL_STATE = ("incr_changes", "incr_steps", "incr_recompute")

STEPS: list[Step] = [
    Step("stage", ingest.stage_step, reads=DELIVERED, writes=(*STAGED, "quarantine")),
    Step("validate", validate.validate_step, reads=(*STAGED, "quarantine"),
         writes=(*STAGED, "quarantine", "delivery_stats"), history=("patients", "lab_results", "delivery_stats"),
         files=(validate.QUALITY_DIR, validate.QUARANTINE_CSV)),
    # The load notes the patients its rows name for the next incremental night (store.changes).
    Step("load", ingest.load_step, reads=(*STAGED, "quarantine"),
         writes=(*CURATED, "deliveries", "incr_changes"), history=("incr_steps",)),
    # Incremental nights: each keeps yesterday's rows of the patients it does not recompute.
    Step("features", FEATURE_PARTITIONS.run_in_process, reads=(*FEATURE_INPUTS, "incr_changes"),
         writes=("patient_features", *INCREMENTAL_STATE),
         history=("patient_features", *INCREMENTAL_STATE), partitioned=FEATURE_PARTITIONS),
    Step("rules", rules.rules_step, reads=("patient_features", "incr_steps", "incr_recompute"),
         writes=("rule_results", "incr_steps"), history=("rule_results",)),
    # Outcome recalibration pairs clinic outcomes with the forecast at listing (stages.score.outcomes).
    Step("score", score.score_step, reads=("patient_features", "clinic_outcomes"), writes=("model_scores",),
         history=("referral_events",)),
    Step("referrals", referrals.referrals_step,
         reads=("rule_results", "model_scores", "patients", "clinic_outcomes", "lab_results", "medications",
                "contacts", "deliveries", "diagnoses", "relations", "family_history"),
         writes=("referral_events", "referral_ledger", "selection_runs"),
         history=("referral_events", "selection_runs"),
         files=("referrals.csv", "worklists", "queue.csv", "clinics")),
    Step("cascade", cascade.cascade_step,
         reads=("patients", "relations", "contacts", "clinic_outcomes", "diagnoses", "lab_results",
                "medications", "deliveries"),
         writes=("cascade_ledger", "cascade_letters"), history=("cascade_ledger", "cascade_letters"),
         files=("cascade.csv", "letters")),
    Step("metrics", metrics.metrics_step,
         reads=("patients", "lab_results", "medications", "clinic_outcomes", "rule_results", "model_scores",
                "referral_events", "selection_runs", "cascade_ledger"),
         files=("metrics",)),
]

# Store tables no step writes: the store's identity (made by ``prepare``, see
# ``publishing.store_id``) and the erasure register (written by ``fhscreen erase``, read by
# the stage step; see ``fh_screen.store.erasure``).
STORE_RECORDS = ("store_identity", "erasure_register")

MANIFEST = "run_manifest.json"
# Fault-injection hook for crash tests and recovery drills: with FH_SCREEN_FAIL_AFTER=<step>
# the process ends abruptly (os._exit, no clean-up, like a kill) right after that step has
# committed and saved its manifest. Unset in normal operation.
FAIL_AFTER_ENV = "FH_SCREEN_FAIL_AFTER"
FAIL_EXIT = 70


def step_named(name: str) -> Step:
    """The step called ``name``; a clear error for a name that is not a step."""
    for step in STEPS:
        if step.name == name:
            return step
    raise KeyError(f"no step named {name!r}; the steps are {', '.join(s.name for s in STEPS)}")


def step_function(name: str) -> Callable[[RunContext], dict]:
    return step_named(name).run


def prepare(
    extract_dir: Path | None,
    db_path: Path,
    out_dir: Path,
    as_of: date,
    settings: Settings | None = None,
    fresh: bool = False,
) -> RunContext:
    """Check where the run may write, open the work folder and make the context.

    ``fresh`` starts the night afresh (a killed run's leftovers are removed); otherwise the
    manifest of an unfinished run of the same date is resumed.

    Raises:
        UserError: ``--out`` overlaps the delivery or the store, holds something that is
            not this store's earlier outputs, or cannot be written; or the work folder is
            a link or another account's folder. Nothing has been written then.
    """
    settings = settings or load_settings()
    out_dir = Path(out_dir).resolve()
    publishing.check_paths(out_dir, extract_dir, db_path)
    publishing.check_replaceable(out_dir, db_path)
    work = publishing.open_work_dir(out_dir, fresh)
    store = publishing.store_id(db_path)
    ctx = RunContext(
        settings=settings,
        db_path=Path(db_path).resolve(),
        out_dir=out_dir,
        work_dir=work,
        as_of=as_of,
        extract_dir=Path(extract_dir).resolve() if extract_dir else None,
    )
    ctx.manifest = resumed_manifest(work / MANIFEST, as_of, store) or new_manifest(as_of, settings, store)
    ctx.delivery_id = ctx.manifest.get("delivery_id", "")
    ctx.run_id = ctx.manifest.get("run_id", "")
    ctx.present_tables = set(ctx.manifest.get("present_tables", []))
    return ctx


def resumed_manifest(saved: Path, as_of: date, store: str) -> dict:
    """The saved manifest of an unfinished run of the same night on the same store, else {}
    (a manifest of another date or store is never resumed)."""
    manifest = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {}
    return manifest if manifest.get("as_of") == as_of.isoformat() and manifest.get("store_id") == store else {}


def new_manifest(as_of: date, settings: Settings, store: str) -> dict:
    """The manifest a night starts with: what ran, on what, for which region."""
    return {
        "product": "fh-screen",
        "code_version": fh_screen.__version__,
        "as_of": as_of.isoformat(),
        "region": settings.region.region_id,
        "store_id": store,
        "decision_support_notice": "Decision support for clinicians, not a diagnosis.",
        "tables": {},
        "steps": {},
    }


def save_manifest(ctx: RunContext) -> None:
    ctx.manifest["delivery_id"] = ctx.delivery_id
    ctx.manifest["run_id"] = ctx.run_id
    ctx.manifest["present_tables"] = sorted(ctx.present_tables)
    files.write_text(ctx.work_dir / MANIFEST, json.dumps(ctx.manifest, indent=2, sort_keys=True, default=str))


def execute_step(ctx: RunContext, name: str, body: Callable[[RunContext], dict] | None = None) -> dict:
    """Run one step and record its report, wall and CPU seconds and peak memory in the
    manifest: what a data team needs to see where a night's time and memory go. ``body``
    runs in the step's place when the step's work was split over tasks (the gather of a
    ``Partitioned`` step, whose partitions ran as their own tasks)."""
    with measured() as cost:
        report = (body or step_function(name))(ctx) or {}
    report.update(cost)
    ctx.manifest["steps"][name] = report
    save_manifest(ctx)
    log.info("step %s done in %.2f s", name, report["seconds"])
    if os.environ.get(FAIL_AFTER_ENV) == name:
        os._exit(FAIL_EXIT)
    return report


def publish(ctx: RunContext) -> Path:
    """Swap the finished work folder into place as ``out_dir`` in one rename."""
    shutil.rmtree(ctx.work_dir / PARTS_DIR, ignore_errors=True)   # the partitioned steps' hand-over files
    shutil.rmtree(ctx.work_dir / SPILL_DIR, ignore_errors=True)   # DuckDB's spilled rows, if any
    ctx.manifest["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    files.write_text(ctx.work_dir / "settings.json", ctx.settings.model_dump_json(indent=2))
    save_manifest(ctx)
    audit.write(audit.record(ctx.manifest, ctx.work_dir), ctx.work_dir, ctx.db_path)
    return publishing.swap(ctx.work_dir, ctx.out_dir, ctx.db_path)


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
    with publishing.hold(Path(db_path), Path(out_dir), lock_timeout):
        # A killed earlier run may have left files in the work folder; a fresh run must
        # not publish them (the Airflow DAG does the same in its first task).
        ctx = prepare(extract_dir, db_path, out_dir, as_of, settings, fresh=True)
        ctx.manifest["steps"] = {}
        try:
            for step in STEPS:
                if on_step:
                    on_step(step.name)
                execute_step(ctx, step.name)
            publish(ctx)
        except Exception:
            # A failed run's partial outputs name patients: none outlive it. (A killed run
            # cannot clean up; the next run removes its work folder first.)
            shutil.rmtree(ctx.work_dir, ignore_errors=True)
            raise
        return ctx.manifest
