"""
# fh_nightly: the night's FH case-finding run

For every region (partition) this DAG waits for the night's lab extract, then runs the
same steps as `fhscreen run`, one task each, and finally **publishes** the outputs
(referrals, GP worklists, cascade letters, metrics) in one atomic rename.
Outputs are decision support for clinicians, not diagnoses.

**Per region** (mapped task group `night`, one map index per region, named after it):
`wait_for_delivery` → `convert` → `stage` → `validate` → `load` → `features_plan`.

**Per family partition** (`features_partition`, mapped over the partitions of every region,
labelled e.g. `nord 2/4`): builds one partition's patient features from the region's store,
opened read-only, into its own Parquet file in the night's work folder, then their rule results
and their model scores into two others (the `rules` and `score` steps gather those). Partitions
hold whole families of about `incremental.partition_people` people (region settings); on an incremental
night a region has one partition (the changed patients). The executor spreads them over its
workers (Celery workers, Kubernetes pods); memory per task is set by the partition size.

**Per region again** (mapped task group `results`): `features` (the gather: loads the
partitions in one transaction) → `rules` → `score` (gathers the partitions' model scores,
scores the patients they do not hold from the store, fits the region calibration over all) →
`referrals` → `cascade` → `metrics` → `publish`.

* **Register extracts**: a region whose settings name a register layout (`ingest.layout`:
  `dst`, `sds`, `medcom-lab`; docs/registers.md) is converted by `convert` into
  `<extracts>/converted/<run date>/`, which the steps read; for other regions it does nothing.

* **Delivery**: `<extracts>/<run date>/` with at least `patients` and `lab_results`.
  The sensor pokes every 10 minutes (reschedule mode: no worker slot held) for up to 8 hours.
* **Failed validation**: an unusable delivery fails its task at once (no retries), the
  task shows red, nothing of that region is published and last night's outputs stay in place.
  Fix the delivery, then *Clear* the failed task: the night is rerun from that step.
* **Reruns are safe**: each task is idempotent for its run date (database writes keyed by
  the date inside one transaction; a partition's file named by run and partition and
  replaced whole; outputs built in a work folder and published at the end).
* **One writer per DuckDB file**: a region's steps run in sequence, `max_active_runs=1`,
  every step (and the plan and the gather) takes the file's lock and runs in the `fh_duckdb`
  pool; the partitions only read.
* **One region's failure does not stop the others**: `partition_work` and each region's
  `features` gather run once everything before them has finished, failed or not. A region
  that failed before its plan has no partitions and its gather fails at once. A region whose
  delivery is late holds back the other regions' partitions until it arrives or its sensor
  times out (Airflow cannot map a task inside a mapped task group).

Configuration (no credentials here): Airflow Variable `fh_screen_partitions` (JSON list of
`{name, extracts, db, out, config}`), otherwise one partition from `FH_SCREEN_EXTRACTS`,
`FH_SCREEN_DB`, `FH_SCREEN_OUT`, `FH_SCREEN_CONFIG`. Schedule `FH_SCREEN_SCHEDULE`
(default 01:30) in `FH_SCREEN_TZ` (default Europe/Copenhagen). See docs/airflow.md.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, PokeReturnValue, Variable, chain, dag, get_current_context, task, task_group

from fh_screen.app import orchestration as orch

TZ = os.environ.get("FH_SCREEN_TZ", "Europe/Copenhagen")
SCHEDULE = os.environ.get("FH_SCREEN_SCHEDULE", "30 1 * * *")
POOL = os.environ.get("FH_SCREEN_POOL", "fh_duckdb")
STEP_TIMEOUT = timedelta(minutes=int(os.environ.get("FH_SCREEN_STEP_TIMEOUT_MIN", "60")))
PARTITION_LABEL = "{{ partition_name }}"
BEFORE, SPLIT, AFTER = orch.split_steps()


def _night(partition: dict) -> date:
    """Name the map index after the partition and return the night's run date."""
    context = get_current_context()
    context["partition_name"] = partition["name"]
    return orch.as_of_from_context(context, TZ)


@task(doc_md="Reads the partitions (regions) to run from the `fh_screen_partitions` Variable or the environment.")
def list_partitions() -> list[dict]:
    return orch.partitions(Variable.get("fh_screen_partitions", default=None))


@task.sensor(
    poke_interval=600,
    timeout=8 * 3600,
    mode="reschedule",
    execution_timeout=timedelta(minutes=5),
    map_index_template=PARTITION_LABEL,
    doc_md="Waits for `<extracts>/<run date>/` to hold `patients` and `lab_results` "
    "(or the required register tables of the region's layout).",
)
def wait_for_delivery(partition: dict) -> PokeReturnValue:
    return PokeReturnValue(is_done=orch.night_ready(partition, _night(partition)))


@task(map_index_template=PARTITION_LABEL, doc_md=orch.STEP_DOCS["convert"])
def convert(partition: dict) -> dict:
    return orch.convert_night(partition, _night(partition))


@task(pool=POOL, map_index_template=PARTITION_LABEL)
def step(partition: dict, name: str) -> None:
    orch.run_step(partition, _night(partition), name)


@task(pool=POOL, map_index_template=PARTITION_LABEL, doc_md=orch.PLAN_DOC)
def plan(partition: dict) -> int:
    return orch.plan_partitions(partition, _night(partition), SPLIT.name)


@task(trigger_rule="all_done", doc_md=orch.WORK_DOC)
def partition_work(partitions: list[dict]) -> list[dict]:
    return orch.partition_work(partitions, orch.as_of_from_context(get_current_context(), TZ), SPLIT.name)


@task(map_index_template="{{ partition_label }}", doc_md=orch.BUILD_DOC)
def build(item: dict) -> dict:
    get_current_context()["partition_label"] = orch.partition_label(item)
    return orch.build_partition(item)


@task(pool=POOL, execution_timeout=timedelta(minutes=30), map_index_template=PARTITION_LABEL,
      doc_md="Publishes the night's outputs in one rename, only if every step has reported.")
def publish(partition: dict) -> str:
    return orch.publish_night(partition, _night(partition))


def steps(partition: dict, names) -> list:
    return [step.override(task_id=s.name, doc_md=orch.step_doc(s))(partition, s.name) for s in names]


@task_group(tooltip="One region's night up to its partitions: wait, load, plan the partitions")
def night(partition: dict):
    planned = plan.override(task_id=f"{SPLIT.name}_plan")(partition)
    chain(wait_for_delivery(partition), convert(partition), *steps(partition, BEFORE), planned)


@task_group(tooltip="One region's night after its partitions: gather them, the region-wide steps, publish")
def results(partition: dict):
    gather = step.override(task_id=SPLIT.name, trigger_rule="all_done", doc_md=orch.step_doc(SPLIT))
    chain(gather(partition, SPLIT.name), *steps(partition, AFTER), publish(partition))


@dag(
    dag_id="fh_nightly",
    schedule=CronTriggerTimetable(SCHEDULE, timezone=TZ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=20),
    default_args=orch.task_defaults(STEP_TIMEOUT),
    tags=["fh-screen", "nightly"],
    doc_md=__doc__,
)
def fh_nightly():
    """Only wires: the tasks and task groups above, per region and per family partition."""
    regions = list_partitions()
    work = partition_work(regions)
    night.expand(partition=regions) >> work
    build.override(task_id=f"{SPLIT.name}_partition").expand(item=work) >> results.expand(partition=regions)


fh_nightly()
