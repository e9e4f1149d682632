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
import re
import shutil
from pathlib import Path

import pytest

from fh_screen.app.run import STEPS

# Airflow's own sensor decorator imports a deprecated helper; nothing to fix on our side.
pytestmark = pytest.mark.filterwarnings("ignore:The `airflow.utils.operator_helpers.determine_kwargs`")
ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
NIGHT = "2026-11-23"
SYNTH_PATIENTS = 300
# Great Expectations writes wall-clock times (``logo.png?d=20261123T200203.279899Z``, the
# validation time) and random element ids (UUID4) into Data Docs pages; two CLI runs differ
# the same way.
GX_VOLATILE = re.compile(rb"\d{8}T\d{6}\.\d+Z|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _volatile(rel: str) -> bool:
    """Files whose bytes carry run times: compared after normalisation, not by hash.
    In audit.json a sub-folder is one combined hash, so Data Docs folders count too."""
    data_docs = rel.startswith("quality/") and (rel.endswith(".html") or rel.endswith("/"))
    return rel == "run_manifest.json" or data_docs


@pytest.fixture(scope="session")
def airflow_db():
    """SQLite metadata database in the temporary AIRFLOW_HOME set by tests/conftest.py."""
    from airflow.utils import db

    db.initdb()


def _without_timings(value):
    """``value`` without measurements: keys naming ``seconds`` or ``peak_rss`` at any depth
    (``seconds``, ``render_seconds``, ``cpu_seconds_by_phase``, ``peak_rss_mib``)."""
    if isinstance(value, dict):
        return {
            k: _without_timings(v) for k, v in value.items() if "seconds" not in k and "peak_rss" not in k
        }
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def normalised(rel: str, data: bytes):
    """What is compared for one output file (see docs/airflow.md, "Same outputs as the CLI").

    * ``run_manifest.json``: without ``finished_at``, ``store_id`` (each store's random id)
      and the steps' measurements (every key naming ``seconds`` or ``peak_rss``).
    * ``quality/**.html`` (Data Docs): Great Expectations' times and random element ids masked.
    * ``audit.json``: without ``recorded_at`` and without the hashes of the files and Data Docs folders above.
    Every other file is compared byte for byte.
    """
    if rel == "run_manifest.json":
        manifest = json.loads(data)
        manifest.pop("finished_at", None)
        manifest.pop("store_id", None)
        manifest["steps"] = _without_timings(manifest.get("steps", {}))
        return manifest
    if rel.startswith("quality/") and rel.endswith(".html"):
        return GX_VOLATILE.sub(b"<volatile>", data)
    if rel == "audit.json":
        audit = json.loads(data)
        audit.pop("recorded_at", None)
        audit["outputs"] = {name: digest for name, digest in audit.get("outputs", {}).items() if not _volatile(name)}
        return audit
    return data


def tree(folder: Path) -> dict[str, object]:
    return {
        str(path.relative_to(folder)): normalised(str(path.relative_to(folder)), path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _without_column(path: Path, column: str) -> None:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    fields = [f for f in rows[0] if f != column]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def _region_settings(root: Path) -> Path:
    """Settings for both runs. The scorer runs when a trained model is in the repository;
    without one (a fresh checkout before training) the model is switched off, as a region
    without a model would do, so the comparison still covers every step."""
    from fh_screen.config import load_settings
    from fh_screen.stages.score import artefact

    path = root / "region.yaml"
    folder = artefact.resolve(load_settings(None).model.artefact)
    has_model = all((folder / name).exists() for name in (artefact.METADATA_FILE, artefact.MODEL_FILE))
    path.write_text("" if has_model else "model:\n  enabled: false\n", encoding="utf-8")
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

    states = {(ti.task_id, ti.map_index): (ti.state, ti.try_number) for ti in dag_run.get_task_instances()}
    chain = ["night.wait_for_delivery", "night.convert", *(f"night.{s.name}" for s in STEPS), "night.publish"]
    assert states[("list_partitions", -1)] == ("success", 1)
    assert [states[(task, 0)][0] for task in chain] == ["success"] * len(chain)
    # The unusable delivery fails its first step on the first try; nothing after it runs
    # (convert has nothing to do for a region receiving the contract's own tables).
    assert states[("night.wait_for_delivery", 1)][0] == "success"
    assert states[("night.convert", 1)][0] == "success"
    assert states[(chain[2], 1)] == ("failed", 1)
    assert [states[(task, 1)][0] for task in chain[3:]] == ["upstream_failed"] * (len(chain) - 3)
    assert dag_run.state == "failed"
    assert not (Path(syd["out"]) / NIGHT).exists()

    dag_out = Path(nord["out"]) / NIGHT
    manifest = json.loads((dag_out / "run_manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["steps"]) == {s.name for s in STEPS}
    dag_files, cli_files = tree(dag_out), tree(cli_out)
    assert sorted(dag_files) == sorted(cli_files)
    for rel in cli_files:
        assert dag_files[rel] == cli_files[rel], rel
