"""What the Airflow DAGs call: regions, delivery folders, one step of one night, the
partitions of the per-patient work, catch-up.

The DAG files only wire tasks together; every decision they need lives here, in plain
Python (only ``task_defaults`` imports Airflow, for the retry policy the DAGs share), so it is
tested without a scheduler. Each function runs the
same step functions as ``fhscreen run`` (``fh_screen.app.run``), so both write the same
outputs.

Two kinds of partition:

* A **region** (``Partition``; the Airflow Variable ``fh_screen_partitions`` lists them)
  has its own delivery folder, DuckDB file and output folder. Regions run in parallel.
* A region's per-patient work (the ``features`` step, ``run.Partitioned``) is split into
  **family partitions** of about ``incremental.partition_people`` people, whole families
  together (``store.changes.family_partitions``). ``plan_partitions`` plans them and returns
  one work item per partition; the nightly DAG maps ``build_partition`` over the work items
  of every region (``partition_work``), so they spread over all workers; then one task per
  region gathers them (``run_step`` runs the step's gather). ``fhscreen run`` calls the same
  plan, build and gather functions in turn in one process.

One writer per DuckDB file: a region's steps, its plan and its gather run one after another,
each holding the file lock of the region's DuckDB file (``publishing.hold``), whether the
writer is the nightly DAG, the catch-up DAG, retraining or a person running ``fhscreen run``
by hand. A family partition opens the store read-only and writes only its own Parquet file
in the run's work folder (``RunContext.parts_dir``), which must be on storage every worker
sees; the gather loads the files in one transaction.

Crash safety: every file is written under a temporary name and renamed; a partition's file
is named by the run (its work folder is the night's) and partition, and a rerun replaces it;
the gather refuses while a partition is missing; outputs are published in one rename at the
end and the partition files are removed just before. A crash at any point leaves last
night's outputs in place and nothing half-published; clearing the failed task reruns it.

Layout of one region (roots configurable, see ``partitions``)::

    <extracts>/<YYYY-MM-DD>/patients.csv ...   one delivery per run date
    <db>                                        the region's DuckDB file
    <out>/<YYYY-MM-DD>/run_manifest.json ...    published outputs of that night
    <out>/.<YYYY-MM-DD>.partial/                the night's work folder while it runs
        .partitions/features/part-<k>-of-<n>.parquet   one family partition's features
        .partitions/features/rules-part-<k>-of-<n>.parquet, score-<model>-part-<k>-of-<n>.parquet
                                                        its rule results and model scores

Decisions:
    * The delivery folder is named by the run date (``as_of``) that processes it: the
      nightly run for 2026-11-23 reads ``<extracts>/2026-11-23/``.
    * A delivery is "ready" when its folder holds the two required tables
      (``patients`` and ``lab_results``). Deliverers should write into a temporary folder
      and rename it into place, so the pipeline never sees half a delivery.
    * A night is "done" when its output folder has been published (it holds
      ``run_manifest.json``); a delivery that was loaded but whose run failed later is not
      done and is picked up again by the catch-up.
    * A region whose settings name a register layout (``ingest.layout``: ``dst``, ``sds``,
      ``medcom-lab``; docs/registers.md) receives register extracts in
      ``<extracts>/<YYYY-MM-DD>/``. The night's first task converts them into
      ``<extracts>/converted/<YYYY-MM-DD>/`` (``convert_night``), which the steps then read;
      the delivery is "ready" when the layout's required tables are there.
    * The catch-up DAG runs whole nights in one task (``catch_up`` calls ``run.run``), its
      partitions one after another.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from contextlib import contextmanager
from typing import Iterator, Mapping
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fh_screen.config import load_settings
from fh_screen.errors import UserError

log = logging.getLogger("fh_screen")

REQUIRED_TABLES = ("patients", "lab_results")
CONTRACT_LAYOUT = "contract"
CONVERTED = "converted"   # <extracts>/converted/<date>/: register extracts converted into the contract
DELIVERY_FILE_SUFFIXES = (".csv", ".parquet")
_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PARTITION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

# Defaults when neither the Airflow Variable nor the environment says otherwise.
DEFAULT_EXTRACTS = "extracts"
DEFAULT_DB = "fh_screen.duckdb"
DEFAULT_OUT = "runs"

# What each step does, shown in the Airflow UI next to the task (``doc_md``). The names
# are those of ``run.STEPS``; a test fails when a step has no text here.
STEP_DOCS: dict[str, str] = {
    "convert": "For a region receiving register extracts (settings `ingest.layout`), converts the "
    "night's extracts into a contract delivery with a manifest accounting for every row; otherwise does nothing.",
    "stage": "Reads the delivery folder (CSV or Parquet, Danish dialects detected) into "
    "staging tables; row-level problems are quarantined with a reason.",
    "validate": "Checks the staged delivery against the data contract (Great Expectations). "
    "A delivery that cannot be used fails here and nothing is published.",
    "load": "Merges the staged delivery into the curated tables (corrections: last delivery wins).",
    "features": "Builds one row per patient as of the run date (LDL history, treatment, family data): "
    "on incremental nights only for patients whose data changed, whose relatives' data changed or who "
    "crossed a date boundary; everyone on a full pass (weekly by default), in partitions of whole families.",
    "rules": "Scores DLCN, Simon Broome and MEDPED, estimates untreated LDL, flags secondary causes "
    "(for the patients the features step rebuilt).",
    "score": "Adds the calibrated model probability that a patient has FH: gathers the partitions' model "
    "scores, scores from the store whoever they do not hold (on incremental nights, everyone whose "
    "features were kept: the model reads exact age), fits the region calibration over all of them.",
    "referrals": "Selects and ranks patients within the lipid clinics' capacity, keeps the referral "
    "ledger (nobody listed twice) and writes GP worklists (HTML, PDF, CSV) and FHIR referral bundles.",
    "cascade": "Plans cascade testing of relatives and renders family letters.",
    "metrics": "Computes the pilot metrics (aggregates only, small cells suppressed).",
}

# The tasks of the partitioned step (``run.Partitioned``) in the nightly DAG.
PLAN_DOC = ("Plans the region's features work tonight (everyone or only the changed patients) and splits it "
            "into partitions of whole families (`incremental.partition_people`); reads the store only.")
WORK_DOC = ("Lists every region's partitions as one list of work items; runs when every region has planned "
            "or failed, so one region's failure does not stop the others.")
BUILD_DOC = ("Builds one partition's patient features from the region's store, opened read-only, into its own "
             "Parquet file in the run's work folder, then the rule results and the model scores of those "
             "patients into two others. "
             "Mapped: the partitions of all regions spread over the workers; memory is set by the partition size.")


def step_doc(step) -> str:
    """The Airflow task documentation of a ``run.Step``: what it does (``STEP_DOCS``) and the
    tables it reads and writes, so the DAG view shows the data flow."""
    what = STEP_DOCS.get(step.name, f"Runs the `{step.name}` step.")
    return f"{what}\n\n{step.doc()}"

class Partition(BaseModel):
    """One region or catchment: where its deliveries arrive and where its results go.

    Only small strings, so it travels between Airflow tasks through XCom as a dict.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    extracts: str
    db: str
    out: str
    config: str | None = None

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _PARTITION_NAME.match(value):
            raise ValueError("partition name: 1-40 letters, digits, '-' or '_'")
        return value

    def delivery_dir(self, as_of: date) -> Path:
        return Path(self.extracts) / as_of.isoformat()

    def out_dir(self, as_of: date) -> Path:
        return Path(self.out) / as_of.isoformat()


def partitions(raw: str | None = None, env: Mapping[str, str] | None = None) -> list[dict]:
    """The partitions to run, as plain dicts (XCom-safe).

    Args:
        raw: JSON list of partition objects, e.g. the Airflow Variable
            ``fh_screen_partitions``: ``[{"name": "nord", "extracts": "/data/nord/extracts",
            "db": "/data/nord/fh.duckdb", "out": "/data/nord/runs", "config":
            "/etc/fh/nord.yaml"}]``. Empty or absent means one partition from the environment.
            A region's model lives where its settings say (``model.artefact``).
        env: where ``FH_SCREEN_EXTRACTS``, ``FH_SCREEN_DB``, ``FH_SCREEN_OUT`` and
            ``FH_SCREEN_CONFIG`` are read (default ``os.environ``).

    Raises:
        UserError: malformed JSON or entry, duplicate names, or two partitions sharing a
            DuckDB file (that would make two writers of one file) or an output folder. A configuration error
            fails the task at once rather than being retried.
    """
    try:
        return _partitions(raw, os.environ if env is None else env)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'entry'}: {err['msg']}" for err in exc.errors())
        raise UserError(f"fh_screen_partitions: {reasons}") from None
    except ValueError as exc:  # includes malformed JSON
        raise UserError(f"fh_screen_partitions: {exc}") from None


def _partitions(raw: str | None, env: Mapping[str, str]) -> list[dict]:
    if raw and raw.strip():
        items = json.loads(raw)
        if not isinstance(items, list) or not items:
            raise ValueError("must be a non-empty JSON list of objects")
        parts = [Partition.model_validate(item) for item in items]
    else:
        parts = [
            Partition(
                name="default",
                extracts=env.get("FH_SCREEN_EXTRACTS", DEFAULT_EXTRACTS),
                db=env.get("FH_SCREEN_DB", DEFAULT_DB),
                out=env.get("FH_SCREEN_OUT", DEFAULT_OUT),
                config=env.get("FH_SCREEN_CONFIG") or None,
            )
        ]
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise ValueError("partition names must be unique")
    dbs = [str(Path(p.db).resolve()) for p in parts]
    if len(set(dbs)) != len(dbs):
        raise ValueError("each partition needs its own DuckDB file (one writer per file)")
    outs = [str(Path(p.out).resolve()) for p in parts]
    if len(set(outs)) != len(outs):
        raise ValueError("each partition needs its own output folder (one would replace the other's outputs)")
    return [p.model_dump() for p in parts]


def as_of_for(logical_date: datetime | None, run_after: datetime, tz: str) -> date:
    """The run date of a DAG run: its logical date in the region's time zone.

    A run triggered by hand without a logical date uses the moment it was asked to run.
    """
    moment = logical_date or run_after
    return moment.astimezone(ZoneInfo(tz)).date()


def delivery_ready(folder: Path) -> bool:
    """True when ``folder`` holds a file for every required table."""
    if not folder.is_dir():
        return False
    present = {
        path.name.split(".", 1)[0]
        for path in folder.iterdir()
        if path.is_file() and path.name.lower().endswith(DELIVERY_FILE_SUFFIXES)
    }
    return all(table in present for table in REQUIRED_TABLES)


def delivery_for(part: Partition, as_of: date, layout: str) -> Path:
    """The contract delivery a night reads: the delivery folder itself, or for a region
    receiving register extracts the folder ``convert_night`` writes."""
    if layout == CONTRACT_LAYOUT:
        return part.delivery_dir(as_of)
    return Path(part.extracts) / CONVERTED / as_of.isoformat()


def source_ready(folder: Path, layout: str) -> bool:
    """``delivery_ready`` for the contract; for a register layout, its required tables."""
    if layout == CONTRACT_LAYOUT:
        return delivery_ready(folder)
    from fh_screen.convert import extracts_ready

    return extracts_ready(folder, layout)


def night_ready(partition: dict, as_of: date) -> bool:
    """What the nightly sensor asks: has the night's delivery (in the region's layout) arrived?"""
    part = Partition.model_validate(partition)
    return source_ready(part.delivery_dir(as_of), _settings(part).ingest.layout)


def convert_night(partition: dict, as_of: date) -> dict:
    """Convert the night's register extracts into a contract delivery (the night's first task).

    A region receiving the contract's own tables has nothing to convert. The converted
    delivery replaces any earlier conversion of the same night, so a retried task repeats
    cleanly; an unusable extract raises ``UserError`` (not retried).

    Returns:
        A small report for XCom: layout and per source table read / converted / set aside.
    """
    part = Partition.model_validate(partition)
    layout = _settings(part).ingest.layout
    if layout == CONTRACT_LAYOUT:
        return {"layout": layout, "converted": False}
    from fh_screen.convert import convert

    manifest = convert(layout, part.delivery_dir(as_of), delivery_for(part, as_of, layout))
    return {"layout": layout, "converted": True, "tables": {
        name: {k: counts[k] for k in ("read", "converted", "set_aside")} for name, counts in manifest["tables"].items()}}


def _settings(part: Partition):
    return load_settings(part.config)


def _published(part: Partition, as_of: date) -> bool:
    """The night's outputs are published and no new attempt of it is under way (the first
    step of an attempt opens a work folder). Tasks of such a night do nothing: clearing one
    region's failed task with its downstream tasks also clears the tasks every region shares
    (``partition_work`` and after), and the regions already published must stay as they are."""
    from fh_screen.app.publishing import work_dir_for

    out = part.out_dir(as_of).resolve()
    return (out / "run_manifest.json").is_file() and not os.path.lexists(work_dir_for(out))


ALREADY_PUBLISHED = {"skipped": "the night is already published; clear its first step to run it again"}


@contextmanager
def _writer(part: Partition, as_of: date | None, timeout: float) -> Iterator[None]:
    """Hold the partition's DuckDB lock and, for a night (``as_of``), its output-folder lock
    (the same locks ``fhscreen run`` takes); ``RunLocked`` (retried by Airflow) after
    ``timeout`` s."""
    from fh_screen.app.publishing import hold

    Path(part.db).parent.mkdir(parents=True, exist_ok=True)
    with hold(Path(part.db), part.out_dir(as_of) if as_of else None, timeout):
        yield


def run_step(partition: dict, as_of: date, step: str, lock_timeout: float = 600) -> dict:
    """Run one named step of the night ``as_of`` for one partition, as one Airflow task; for
    the partitioned step, its gather (its plan and partitions ran as tasks of their own).

    The first step starts the night afresh (a stale work folder of an earlier attempt of
    the same date is removed); later steps resume the work folder and manifest that the
    earlier steps saved, exactly as ``run.run`` does in one process. Each step's database
    writes are one transaction, so a retried step repeats cleanly.

    Returns:
        The step's small report (it is also recorded in ``run_manifest.json``).
    """
    from fh_screen.app.run import STEPS, execute_step, prepare

    part = Partition.model_validate(partition)
    names = [s.name for s in STEPS]
    if step not in names:
        raise ValueError(f"unknown step {step!r}")
    split = STEPS[names.index(step)].partitioned
    settings = _settings(part)
    if step != names[0] and _published(part, as_of):
        return dict(ALREADY_PUBLISHED)
    with _writer(part, as_of, lock_timeout):
        ctx = prepare(delivery_for(part, as_of, settings.ingest.layout), Path(part.db), part.out_dir(as_of), as_of,
                      settings, fresh=step == names[0])
        if step == names[0]:
            ctx.manifest["steps"] = {}
        return execute_step(ctx, step, body=split.gather if split else None)


def split_steps() -> tuple[list, object, list]:
    """``run.STEPS`` around its partitioned step: the steps before it, the step (a
    ``run.Partitioned``), the steps after it. The nightly DAG runs the first as one region's
    chain, maps the step's partitions over the workers, then runs its gather and the rest."""
    from fh_screen.app.run import STEPS

    split = [i for i, s in enumerate(STEPS) if s.partitioned is not None]
    if len(split) != 1:
        raise ValueError("the nightly DAG expects exactly one partitioned step")
    return STEPS[:split[0]], STEPS[split[0]], STEPS[split[0] + 1:]


def plan_partitions(partition: dict, as_of: date, step: str, lock_timeout: float = 600) -> int:
    """Plan the night's partitioned ``step`` for one region (holding its locks, like a step);
    the plan is saved in the night's work folder. Returns the number of partitions."""
    from fh_screen.app.run import prepare, save_manifest, step_named

    part = Partition.model_validate(partition)
    settings = _settings(part)
    if _published(part, as_of):
        return 0
    with _writer(part, as_of, lock_timeout):
        ctx = prepare(delivery_for(part, as_of, settings.ingest.layout), Path(part.db), part.out_dir(as_of), as_of,
                      settings)
        parts = step_named(step).partitioned.plan(ctx)
        save_manifest(ctx)   # what the plan noted (features switched off for want of data)
    return parts


def partition_work(partitions: list[dict], as_of: date, step: str) -> list[dict]:
    """Every region's partitions of ``step`` tonight, one small dict each (the DAG maps one task
    over the list), read from the plans saved in the regions' work folders. A region whose
    night failed before its plan has none; the others go on."""
    from fh_screen.app.run import step_named

    split = step_named(step).partitioned
    items = []
    for partition in partitions:
        part = Partition.model_validate(partition)
        parts = None if _published(part, as_of) else split.planned(_reader_context(part, as_of))
        items += [{"partition": partition, "as_of": as_of.isoformat(), "step": step, "part": k, "parts": parts}
                  for k in range(parts or 0)]
    return items


def partition_label(item: dict) -> str:
    """How a partition's task is named in the Airflow UI: region and partition, e.g. ``nord 2/4``."""
    return f"{item['partition']['name']} {item['part'] + 1}/{item['parts']}"


def _reader_context(part: Partition, as_of: date, writes_files: bool = False):
    """The night's run context for a task that only reads the store (no lock, no manifest): a
    family partition, on whichever worker runs it, or the list of partitions. One that
    ``writes_files`` into the work folder checks it first (a real folder of this account)."""
    from fh_screen.app.publishing import open_work_dir, work_dir_for
    from fh_screen.context import RunContext

    settings = _settings(part)
    out = part.out_dir(as_of).resolve()
    return RunContext(settings=settings, db_path=Path(part.db).resolve(), out_dir=out,
                      work_dir=open_work_dir(out, fresh=False) if writes_files else work_dir_for(out), as_of=as_of,
                      extract_dir=delivery_for(part, as_of, settings.ingest.layout).resolve())


def build_partition(item: dict) -> dict:
    """Build one partition (an item of ``partition_work``) on whichever worker runs it.

    It reads the region's store read-only and writes only its own file in the run's work
    folder, so partitions of one region run at the same time on several workers; it takes
    no lock. Returns the partition's people, seconds, CPU seconds and peak memory.
    """
    from fh_screen.app.run import step_named

    part = Partition.model_validate(item["partition"])
    as_of = date.fromisoformat(item["as_of"])
    if _published(part, as_of):
        return dict(ALREADY_PUBLISHED)
    return step_named(item["step"]).partitioned.build(_reader_context(part, as_of, writes_files=True), item["part"])


def publish_night(partition: dict, as_of: date, lock_timeout: float = 600) -> str:
    """Publish the night's outputs in one rename, only if every step has reported.

    The check guards against a step that was marked successful by hand without running:
    an incomplete night is never published.

    Returns:
        The published output folder.
    """
    from fh_screen.app.run import STEPS, prepare, publish

    part = Partition.model_validate(partition)
    settings = _settings(part)
    if _published(part, as_of):
        return str(part.out_dir(as_of).resolve())
    with _writer(part, as_of, lock_timeout):
        ctx = prepare(delivery_for(part, as_of, settings.ingest.layout), Path(part.db), part.out_dir(as_of), as_of,
                      settings)
        missing = [s.name for s in STEPS if s.name not in ctx.manifest.get("steps", {})]
        if missing:
            raise UserError(f"not publishing {as_of}: steps without a report: {', '.join(missing)}")
        return str(publish(ctx))


def pending_deliveries(
    partition: dict, today: date, first: date | None = None, last: date | None = None
) -> list[str]:
    """Delivery dates of a partition that have no published outputs yet, oldest first.

    Only folders named ``YYYY-MM-DD``, not after ``today`` and inside ``[first, last]``
    when given, and only complete deliveries (``delivery_ready``).
    """
    part = Partition.model_validate(partition)
    root = Path(part.extracts)
    if not root.is_dir():
        return []
    layout = _settings(part).ingest.layout
    dates = []
    for folder in root.iterdir():
        if not (folder.is_dir() and _DATE_FOLDER.match(folder.name)):
            continue
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if day > today or (first and day < first) or (last and day > last):
            continue
        if (part.out_dir(day) / "run_manifest.json").exists() or not source_ready(folder, layout):
            continue
        dates.append(day.isoformat())
    return sorted(dates)


def catch_up(partition: dict, dates: list[str], lock_timeout: float = 600) -> list[str]:
    """Run the whole night for each date in order with ``run.run`` (what ``fhscreen run`` does).

    Stops at the first night that fails, so a later delivery is never loaded on top of a
    missing earlier one; the error propagates and the nights done so far stay published.

    Returns:
        The dates that were run.
    """
    from fh_screen.app.run import run

    part = Partition.model_validate(partition)
    settings = _settings(part)
    done: list[str] = []
    for text in sorted(dates):
        day = date.fromisoformat(text)
        log.info("catch-up %s: night %s (%d of %d)", part.name, text, len(done) + 1, len(dates))
        convert_night(partition, day)
        run(delivery_for(part, day, settings.ingest.layout), Path(part.db), part.out_dir(day), day, settings,
            lock_timeout=lock_timeout)
        done.append(text)
    return done


def retrain(partition: dict, as_of: date, lock_timeout: float = 600) -> dict:
    """Retrain, evaluate against the current model on a holdout, promote only a better model.

    Calls ``fh_screen.training.retrain.retrain_and_maybe_promote`` on the model folder named in the
    region's settings (``model.artefact``, the one the score step loads), while holding the
    partition's DuckDB lock (the function itself does not take it). A region whose settings
    switch the model off is not retrained.

    Returns:
        The decision record (also appended to the model folder's ``promotion_log.jsonl`` by
        the ML package), made JSON-safe so Airflow can show it as the task's XCom.
    """
    part = Partition.model_validate(partition)
    settings = _settings(part)
    if not settings.model.enabled:
        return {"as_of": as_of.isoformat(), "promoted": False, "skipped": "model switched off in the settings"}
    from fh_screen.stages.score.artefact import resolve
    from fh_screen.training.retrain import retrain_and_maybe_promote

    model_dir = resolve(settings.model.artefact)
    with _writer(part, None, lock_timeout):
        decision = retrain_and_maybe_promote(Path(part.db), model_dir.parent, as_of, name=model_dir.name,
                                             prevalence=settings.metrics.expected_prevalence)
    return json.loads(json.dumps(decision, default=str))


def as_of_from_context(context: Mapping, tz: str) -> date:
    """``as_of_for`` on an Airflow task context."""
    return as_of_for(context.get("logical_date"), context["dag_run"].run_after, tz)


def task_defaults(execution_timeout: timedelta) -> dict:
    """``default_args`` shared by the fh-screen DAGs.

    Retries with exponential backoff cover passing trouble (a locked database, a full
    disk being cleared, a network share that blinked). A ``UserError`` - an unusable
    delivery or a request that cannot succeed - fails at once: retrying cannot fix the
    input, and the data team should hear about it now, not after an hour of retries.
    """
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    from fh_screen.app.alerts import task_failed

    return {
        "owner": "fh-screen",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "retry_policy": ExceptionRetryPolicy(
            rules=[
                RetryRule(
                    exception="fh_screen.errors.UserError",
                    action=RetryAction.FAIL,
                    reason="unusable input: fix the delivery or the settings, then clear the task",
                )
            ]
        ),
        "execution_timeout": execution_timeout,
        "on_failure_callback": task_failed,
    }
