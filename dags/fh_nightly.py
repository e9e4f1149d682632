"""
# fh_nightly: the night's FH case-finding run

For every region (partition) this DAG waits for the night's lab extract, then runs the
same steps as `fhscreen run`, one task each, and finally **publishes** the outputs
(referrals, GP worklists, cascade letters, metrics) in one atomic rename.
Outputs are decision support for clinicians, not diagnoses.

**Per partition** (mapped task group `night`, one map index per region, named after it):
`wait_for_delivery` → `convert` → one task per pipeline step → `publish`.

* **Register extracts**: a region whose settings name a register layout (`ingest.layout`:
  `dst`, `sds`, `medcom-lab`; docs/registers.md) is converted by `convert` into
  `<extracts>/converted/<run date>/`, which the steps read; for other regions it does nothing.

* **Delivery**: `<extracts>/<run date>/` with at least `patients` and `lab_results`.
  The sensor pokes every 10 minutes (reschedule mode: no worker slot held) for up to 8 hours.
* **Failed validation**: an unusable delivery fails its task at once (no retries), the
  task shows red, `publish` stays `upstream_failed` and last night's outputs stay in place.
  Fix the delivery, then *Clear* the failed task: the night is rerun from that step.
* **Reruns are safe**: each task is idempotent for its run date (database writes keyed by
  the date inside one transaction; outputs built in a work folder and published at the end).
* **One writer per DuckDB file**: steps of a partition run in sequence, `max_active_runs=1`,
  every step takes the file's lock and runs in the `fh_duckdb` pool.

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
from fh_screen.app.run import STEPS

TZ = os.environ.get("FH_SCREEN_TZ", "Europe/Copenhagen")
SCHEDULE = os.environ.get("FH_SCREEN_SCHEDULE", "30 1 * * *")
POOL = os.environ.get("FH_SCREEN_POOL", "fh_duckdb")
STEP_TIMEOUT = timedelta(minutes=int(os.environ.get("FH_SCREEN_STEP_TIMEOUT_MIN", "60")))
PARTITION_LABEL = "{{ partition_name }}"


def _night(partition: dict) -> date:
    """Name the map index after the partition and return the night's run date."""
    context = get_current_context()
    context["partition_name"] = partition["name"]
    return orch.as_of_from_context(context, TZ)


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

    @task(pool=POOL, execution_timeout=timedelta(minutes=30), map_index_template=PARTITION_LABEL,
          doc_md="Publishes the night's outputs in one rename, only if every step has reported.")
    def publish(partition: dict) -> str:
        return orch.publish_night(partition, _night(partition))

    @task_group(tooltip="One region's night: wait, run the steps, publish")
    def night(partition: dict):
        steps = [
            step.override(task_id=s.name, doc_md=orch.step_doc(s))(partition, s.name)
            for s in STEPS
        ]
        chain(wait_for_delivery(partition), convert(partition), *steps, publish(partition))

    night.expand(partition=list_partitions())


fh_nightly()
