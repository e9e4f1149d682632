"""
# fh_backfill: catch up deliveries that were never run

Trigger by hand (or from a runbook) after the scheduler or a server was down. For every
region it lists the delivery folders `<extracts>/<YYYY-MM-DD>/` that have **no published
outputs** yet (a night that loaded but failed later counts as not done), up to the run
date, and runs each one with the same code as `fhscreen run`, **oldest first, one at a
time**. It stops at the first night that fails, so a later delivery is never loaded on top
of a missing earlier one; the nights done so far stay published.

Parameters (optional): `first` and `last` (YYYY-MM-DD) bound the dates considered.

To rerun specific dates with one task per step in the UI instead, use Airflow's own
backfill of the nightly DAG (runs in date order, one at a time):
`airflow backfill create --dag-id fh_nightly --from-date 2026-11-20 --to-date 2026-11-22 --max-active-runs 1 --reprocess-behavior failed`.
See docs/airflow.md.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pendulum
from airflow.sdk import Param, Variable, dag, get_current_context, task, task_group

from fh_screen.app import orchestration as orch

TZ = os.environ.get("FH_SCREEN_TZ", "Europe/Copenhagen")
POOL = os.environ.get("FH_SCREEN_POOL", "fh_duckdb")
PARTITION_LABEL = "{{ partition_name }}"


def _param_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@dag(
    dag_id="fh_backfill",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    default_args=orch.task_defaults(timedelta(hours=12)),
    params={
        "first": Param(None, type=["null", "string"], format="date", description="earliest delivery date to run"),
        "last": Param(None, type=["null", "string"], format="date", description="latest delivery date to run"),
    },
    tags=["fh-screen", "backfill"],
    doc_md=__doc__,
)
def fh_backfill():
    @task(doc_md="Reads the partitions (regions) from the `fh_screen_partitions` Variable or the environment.")
    def list_partitions() -> list[dict]:
        return orch.partitions(Variable.get("fh_screen_partitions", default=None))

    @task(execution_timeout=timedelta(minutes=10), map_index_template=PARTITION_LABEL,
          doc_md="Lists unpublished delivery dates, oldest first (returned as a list of dates).")
    def find_pending(partition: dict) -> list[str]:
        context = get_current_context()
        context["partition_name"] = partition["name"]
        params = context["params"]
        today = orch.as_of_from_context(context, TZ)
        return orch.pending_deliveries(partition, today, _param_date(params.get("first")), _param_date(params.get("last")))

    @task(pool=POOL, map_index_template=PARTITION_LABEL,
          doc_md="Runs each pending night in date order with the `fhscreen run` code; stops at the first failure.")
    def run_nights(partition: dict, dates: list[str]) -> list[str]:
        get_current_context()["partition_name"] = partition["name"]
        return orch.catch_up(partition, dates)

    @task_group(tooltip="One region's catch-up")
    def catch_up(partition: dict):
        run_nights(partition, find_pending(partition))

    catch_up.expand(partition=list_partitions())


fh_backfill()
