"""
# fh_retrain: monthly retraining of the FH scorer

On the first of each month, for every region: retrain the scorer on the clinic outcomes
accumulated so far, evaluate it against the **current** model on a holdout of the region's
people (average precision on the labelled positives), and promote the new model **only if
it is better**. A tie or a loss keeps the current model. The current model is never
silently replaced: every decision, with the holdout figures behind it, is appended to
`promotion_log.jsonl` in the model folder and shown as the task's XCom, together with
both models' calibration-in-the-large and calibration slope on the region's assessed
referrals, before and after the region calibration of the nightly score step.

The work is done by `fh_screen.training.retrain.retrain_and_maybe_promote` on the model folder
named in the region's settings (`model.artefact`, the one the nightly score step loads),
while the region's DuckDB lock is held, so it never overlaps a nightly run. A region whose
settings switch the model off is skipped. See docs/airflow.md.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, Variable, dag, get_current_context, task

from fh_screen.app import orchestration as orch

TZ = os.environ.get("FH_SCREEN_TZ", "Europe/Copenhagen")
SCHEDULE = os.environ.get("FH_SCREEN_RETRAIN_SCHEDULE", "0 5 1 * *")
POOL = os.environ.get("FH_SCREEN_POOL", "fh_duckdb")


@dag(
    dag_id="fh_retrain",
    schedule=CronTriggerTimetable(SCHEDULE, timezone=TZ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    default_args=orch.task_defaults(timedelta(hours=4)),
    tags=["fh-screen", "ml"],
    doc_md=__doc__,
)
def fh_retrain():
    @task(doc_md="Reads the partitions (regions) from the `fh_screen_partitions` Variable or the environment.")
    def list_partitions() -> list[dict]:
        return orch.partitions(Variable.get("fh_screen_partitions", default=None))

    @task(pool=POOL, map_index_template="{{ partition_name }}",
          doc_md="Retrains, evaluates against the current model on a holdout, promotes only a better model.")
    def retrain(partition: dict) -> dict:
        context = get_current_context()
        context["partition_name"] = partition["name"]
        return orch.retrain(partition, orch.as_of_from_context(context, TZ))

    retrain.expand(partition=list_partitions())


fh_retrain()
