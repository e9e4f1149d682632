"""End to end: one real ``fh_nightly`` run under Airflow (``dag.test()``, SQLite metadata in
a temporary AIRFLOW_HOME) over two regions, on a small synthetic delivery (``fhscreen synth``). The good region's published outputs must equal
what ``fhscreen run`` writes for the same delivery, byte for byte apart from the documented
normalisation (step timings and timestamps). The other region's delivery is unusable: its
task fails at once without retries, nothing of it is published, and the good region is not
held up by it."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from outputs_compare import tree  # noqa: E402

from fh_screen.app.orchestration import split_steps  # noqa: E402
from fh_screen.app.run import STEPS  # noqa: E402

# Airflow's own sensor decorator imports a deprecated helper; nothing to fix on our side.
pytestmark = pytest.mark.filterwarnings("ignore:The `airflow.utils.operator_helpers.determine_kwargs`")
ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
NIGHT = "2026-11-23"
SYNTH_PATIENTS = 300
PARTITION_PEOPLE = 100     # about three family partitions of the 300 people


@pytest.fixture(scope="session")
def airflow_db():
    """SQLite metadata database in the temporary AIRFLOW_HOME set by tests/conftest.py."""
    from airflow.utils import db

    db.initdb()


def _without_column(path: Path, column: str) -> None:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    fields = [f for f in rows[0] if f != column]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def _region_settings(root: Path) -> Path:
    """Settings for both runs: partitions of about ``PARTITION_PEOPLE``. The scorer runs when a
    trained model is in the repository; without one (a fresh checkout before training) the
    model is switched off, as a region without a model would do, so the comparison still
    covers every step."""
    from fh_screen.config import load_settings
    from fh_screen.stages.score import artefact

    path = root / "region.yaml"
    folder = artefact.resolve(load_settings(None).model.artefact)
    has_model = all((folder / name).exists() for name in (artefact.METADATA_FILE, artefact.MODEL_FILE))
    text = f"incremental:\n  partition_people: {PARTITION_PEOPLE}\n"
    path.write_text(text + ("" if has_model else "model:\n  enabled: false\n"), encoding="utf-8")
    return path


def _partition(root: Path, name: str, config: Path) -> dict:
    base = root / name
    return {"name": name, "extracts": str(base / "extracts"), "db": str(base / "fh.duckdb"),
            "out": str(base / "runs"), "config": str(config)}


@pytest.mark.slow
def test_nightly_dag_equals_the_cli_and_stops_an_unusable_delivery(airflow_db, tmp_path, monkeypatch):
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    from fh_screen.app.cli import main

    monkeypatch.delenv("FH_SCREEN_CONFIG", raising=False)
    assert main(["synth", "--out", str(tmp_path / "synthetic"), "--patients", str(SYNTH_PATIENTS),
                 "--seed", "8", "--as-of", NIGHT]) == 0
    delivery = tmp_path / "synthetic" / "extracts" / NIGHT
    config = _region_settings(tmp_path)
    nord, syd = _partition(tmp_path, "nord", config), _partition(tmp_path, "syd", config)
    good = shutil.copytree(delivery, Path(nord["extracts"]) / NIGHT)
    bad = shutil.copytree(delivery, Path(syd["extracts"]) / NIGHT)
    _without_column(bad / "patients.csv", "birth_date")

    cli_out = tmp_path / "cli" / "out"
    assert main(["run", "--extract", str(good), "--db", str(tmp_path / "cli" / "fh.duckdb"),
                 "--out", str(cli_out), "--as-of", NIGHT, "--config", str(config), "--quiet"]) == 0

    monkeypatch.setenv("AIRFLOW_VAR_FH_SCREEN_PARTITIONS", json.dumps([nord, syd]))
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag_run = bag.dags["fh_nightly"].test(logical_date=pendulum.datetime(2026, 11, 23, 1, 30, tz="Europe/Copenhagen"))

    instances = dag_run.get_task_instances()
    states = {(ti.task_id, ti.map_index): (ti.state, ti.try_number) for ti in instances}
    before, split, after = split_steps()
    head = ["night.wait_for_delivery", "night.convert", *(f"night.{s.name}" for s in before), f"night.{split.name}_plan"]
    tail = [f"results.{split.name}", *(f"results.{s.name}" for s in after), "results.publish"]
    assert states[("list_partitions", -1)] == ("success", 1)
    assert states[("partition_work", -1)] == ("success", 1)
    assert [states[(task, 0)][0] for task in head + tail] == ["success"] * len(head + tail)
    # Only the good region has partitions; every one of them was built and named after it.
    built = sorted(ti.rendered_map_index for ti in instances if ti.task_id == f"{split.name}_partition")
    assert built == ["nord 1/3", "nord 2/3", "nord 3/3"]
    assert {states[(f"{split.name}_partition", i)][0] for i in range(3)} == {"success"}
    # The unusable delivery fails its first step on the first try; nothing after it runs
    # (convert has nothing to do for a region receiving the contract's own tables). Its
    # gather runs once the good region's partitions are done, finds no plan and fails at once.
    assert states[("night.wait_for_delivery", 1)][0] == "success"
    assert states[("night.convert", 1)][0] == "success"
    assert states[(head[2], 1)] == ("failed", 1)
    assert [states[(task, 1)][0] for task in head[3:]] == ["upstream_failed"] * (len(head) - 3)
    assert states[(tail[0], 1)] == ("failed", 1)
    assert [states[(task, 1)][0] for task in tail[1:]] == ["upstream_failed"] * (len(tail) - 1)
    assert dag_run.state == "failed"
    assert not (Path(syd["out"]) / NIGHT).exists()

    dag_out = Path(nord["out"]) / NIGHT
    manifest = json.loads((dag_out / "run_manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["steps"]) == {s.name for s in STEPS}
    assert [p["people"] for p in manifest["steps"]["features"]["partitions"]] == \
        [p["people"] for p in json.loads((cli_out / "run_manifest.json").read_text())["steps"]["features"]["partitions"]]
    dag_files, cli_files = tree(dag_out), tree(cli_out)
    assert sorted(dag_files) == sorted(cli_files)
    for rel in cli_files:
        assert dag_files[rel] == cli_files[rel], rel
