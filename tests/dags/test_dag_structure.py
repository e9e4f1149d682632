"""The DAG files parse without errors and follow the operating policy: task ids equal the
pipeline's steps, dependencies, retries with backoff, timeouts, pools, one run at a time,
documentation in the UI. None of this needs a metadata database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from fh_screen.app.alerts import task_failed
from fh_screen.app.orchestration import STEP_DOCS
from fh_screen.app.run import STEPS
from fh_screen.app.run import step_named as run_step_named

# Airflow's own sensor decorator imports a deprecated helper; nothing to fix on our side.
pytestmark = pytest.mark.filterwarnings("ignore:The `airflow.utils.operator_helpers.determine_kwargs`")
DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_IDS = {"fh_nightly", "fh_backfill", "fh_retrain"}
STEP_NAMES = [s.name for s in STEPS]


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_load_without_import_errors(bag):
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == DAG_IDS


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_every_dag_follows_the_operating_policy(bag, dag_id):
    dag = bag.dags[dag_id]
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert "fh-screen" in dag.tags
    assert dag.doc_md and dag.doc_md.lstrip().startswith(f"# {dag_id}")
    for task in dag.tasks:
        assert task.retries >= 2, task.task_id
        assert task.retry_exponential_backoff >= 2 and task.max_retry_delay, task.task_id
        assert task.execution_timeout is not None and task.execution_timeout <= timedelta(hours=12), task.task_id
        callbacks = task.on_failure_callback
        assert task_failed in (callbacks if isinstance(callbacks, list) else [callbacks]), task.task_id
        assert task.retry_policy is not None, task.task_id
        assert task.doc_md, task.task_id


def _nightly_chain() -> list[str]:
    """The nightly DAG's tasks in order: one region's steps up to the partitioned step and its
    plan, the partitions of every region, then the gather and the remaining steps per region."""
    from fh_screen.app.orchestration import split_steps

    before, split, after = split_steps()
    return ["night.wait_for_delivery", "night.convert", *(f"night.{s.name}" for s in before),
            f"night.{split.name}_plan", "partition_work", f"{split.name}_partition",
            f"results.{split.name}", *(f"results.{s.name}" for s in after), "results.publish"]


def test_nightly_has_one_task_per_pipeline_step_in_order(bag):
    dag = bag.dags["fh_nightly"]
    chain = _nightly_chain()
    assert {t.task_id for t in dag.tasks} == {"list_partitions", *chain}
    assert [c.split(".")[-1] for c in chain if c.split(".")[-1] in STEP_NAMES] == STEP_NAMES
    for before, after in zip(chain, chain[1:]):
        assert dag.get_task(after).upstream_task_ids - {"list_partitions"} == {before}
    assert dag.get_task("results.publish").downstream_task_ids == set()
    assert dag.get_task("list_partitions").upstream_task_ids == set()


def test_nightly_steps_write_through_the_duckdb_pool_and_explain_themselves(bag):
    dag = bag.dags["fh_nightly"]
    for name in STEP_NAMES:
        task = dag.get_task(f"night.{name}" if f"night.{name}" in dag.task_dict else f"results.{name}")
        assert task.pool == "fh_duckdb"
        assert task.doc_md.startswith(STEP_DOCS[name] + "\n\n")
        assert task.doc_md.endswith(run_step_named(name).doc())
        assert task.execution_timeout == timedelta(minutes=60)
    assert dag.get_task("results.publish").pool == "fh_duckdb"
    assert dag.get_task("night.features_plan").pool == "fh_duckdb"
    assert dag.get_task("night.wait_for_delivery").pool == "default_pool"
    assert dag.get_task("night.convert").doc_md == STEP_DOCS["convert"]   # files only: no DuckDB pool
    # Partitions only read the store: they need no slot of the writers' pool.
    assert dag.get_task("features_partition").pool == "default_pool"


def test_nightly_is_mapped_over_regions_and_their_partitions(bag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    dag = bag.dags["fh_nightly"]
    for group in ("night", "results"):
        assert isinstance(dag.task_group_dict[group], MappedTaskGroup)
        for task in dag.task_group_dict[group].iter_tasks():
            assert task.map_index_template == "{{ partition_name }}"
    partitions = dag.get_task("features_partition")
    assert isinstance(partitions, MappedOperator)
    assert partitions.map_index_template == "{{ partition_label }}"


def test_one_failed_region_does_not_stop_the_others_partitions(bag):
    """The list of partitions and each region's gather run once everything before them has
    finished, failed or not: a region that failed has no plan, so its gather fails on its own
    (``orchestration.build_partition`` and the gather check their region's files)."""
    dag = bag.dags["fh_nightly"]
    assert dag.get_task("partition_work").trigger_rule == "all_done"
    assert dag.get_task("results.features").trigger_rule == "all_done"
    assert dag.get_task("features_partition").trigger_rule == "all_success"


def test_nightly_waits_for_the_delivery_without_holding_a_worker(bag):
    sensor = bag.dags["fh_nightly"].get_task("night.wait_for_delivery")
    assert sensor.mode == "reschedule"
    assert sensor.timeout == 8 * 3600
    assert sensor.poke_interval == 600


def test_nightly_runs_at_night_in_the_region_time_zone(bag):
    from airflow.sdk import CronTriggerTimetable

    timetable = bag.dags["fh_nightly"].timetable
    assert isinstance(timetable, CronTriggerTimetable)
    assert timetable.expression == "30 1 * * *"
    assert str(timetable.timezone) == "Europe/Copenhagen"


def test_backfill_is_manual_with_optional_date_bounds(bag):
    dag = bag.dags["fh_backfill"]
    assert dag.timetable.__class__.__name__ == "NullTimetable"
    assert {t.task_id for t in dag.tasks} == {"list_partitions", "catch_up.find_pending", "catch_up.run_nights"}
    assert dag.get_task("catch_up.run_nights").upstream_task_ids == {"catch_up.find_pending", "list_partitions"}
    assert dag.get_task("catch_up.run_nights").pool == "fh_duckdb"
    assert set(dag.params.keys()) == {"first", "last"}
    assert dag.params["first"] is None and dag.params["last"] is None


def test_retrain_runs_monthly_per_partition(bag):
    dag = bag.dags["fh_retrain"]
    assert dag.timetable.expression == "0 5 1 * *"
    assert {t.task_id for t in dag.tasks} == {"list_partitions", "retrain"}
    task = dag.get_task("retrain")
    assert task.pool == "fh_duckdb"
    assert task.upstream_task_ids == {"list_partitions"}


def test_a_new_step_appears_in_the_nightly_dag(monkeypatch):
    """The DAG is built from run.STEPS, so a step added there cannot be forgotten here."""
    import importlib

    import fh_nightly
    from fh_screen.app import run as run_mod

    extra = run_mod.Step("extra_check", lambda ctx: {}, reads=("rule_results",))
    monkeypatch.setattr(run_mod, "STEPS", [*STEPS, extra])
    try:
        dag = importlib.reload(fh_nightly).fh_nightly()
    finally:
        monkeypatch.undo()
        importlib.reload(fh_nightly)
    assert dag.get_task("results.extra_check").upstream_task_ids - {"list_partitions"} == {f"results.{STEP_NAMES[-1]}"}
    assert dag.get_task("results.publish").upstream_task_ids - {"list_partitions"} == {"results.extra_check"}
    assert dag.get_task("results.extra_check").doc_md == "Runs the `extra_check` step.\n\nReads: `rule_results`."
