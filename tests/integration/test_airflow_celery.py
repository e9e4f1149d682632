"""fh_nightly on real Celery workers: ``scripts/airflow-celery.sh`` starts PostgreSQL, Redis,
the Airflow API server, scheduler, DAG processor and two Celery workers on loopback; the
nightly DAG then runs two regions at once, each in family partitions of about
``PARTITION_PEOPLE`` people (mapped tasks). The partitions must be spread over both workers,
and each region's published outputs must equal what ``fhscreen run`` writes for the same
delivery in the same partitions, byte for byte after the documented normalisations
(``tests/outputs_compare.py``).

Needs the PostgreSQL server and redis-server packages: CI installs them (``.ci/run``) and sets
``FH_REQUIRE_CELERY=1``, which turns a missing service into a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from outputs_compare import tree  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "airflow-celery.sh"
NIGHT = "2026-11-23"
LOGICAL_DATE = "2026-11-23T00:30:00+00:00"     # 01:30 in Copenhagen: the run date is NIGHT
REGIONS = {"nord": 8, "syd": 9}                # region -> synthetic seed
PARTITION_PEOPLE = 70                          # three partitions of each region's 200 people
DEADLINE_S = 900

pytestmark = pytest.mark.slow


def _services_missing() -> str:
    pg = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not pg:
        return "PostgreSQL server binaries (Debian package postgresql)"
    if shutil.which("redis-server") is None:
        return "redis-server (Debian package redis-server)"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stack(monkeypatch):
    missing = _services_missing()
    if missing:
        if os.environ.get("FH_REQUIRE_CELERY") == "1":
            pytest.fail(f"missing {missing}")
        pytest.skip(f"missing {missing}")
    # Reachable by the `postgres` account when the tests run as root (see the script).
    state = Path(tempfile.mkdtemp(prefix="fh-celery-", dir="/tmp"))
    state.chmod(0o711)
    env = {**os.environ, "FH_PG_PORT": str(_free_port()), "FH_REDIS_PORT": str(_free_port()),
           "FH_API_PORT": str(_free_port()), "FH_LOG_PORT": str(_free_port()),
           # Only the triggered night: the next scheduled one (29 February 2028) is never due.
           "FH_SCREEN_SCHEDULE": "0 0 29 2 *"}
    for key in [k for k in env if k.startswith("AIRFLOW")]:
        del env[key]                                   # the test suite's own Airflow settings
    # The DAG files are parsed once, at start-up: nothing re-reads them during the night (the
    # regions come from a Variable read by a task), and every re-parse imports the pipeline
    # again on the cores the night's tasks need (Airflow's default is every 30 s).
    env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] = str(DEADLINE_S + 600)
    try:
        subprocess.run(["bash", str(SCRIPT), "start", str(state)], env=env, check=True, timeout=600)
        exported = subprocess.run(["bash", str(SCRIPT), "env", str(state)], env=env, check=True,
                                  capture_output=True, text=True).stdout
        yield state, env, exported
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=env, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def _airflow(exported: str, env: dict, *args: str) -> str:
    command = exported + "\nexec airflow " + " ".join(f"'{a}'" for a in args)
    return subprocess.run(["bash", "-c", command], env=env, check=True, capture_output=True, text=True,
                          timeout=300).stdout


def _metadata(env: dict, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(host="127.0.0.1", port=int(env["FH_PG_PORT"]), user="airflow", dbname="airflow") as con:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()


def test_nightly_dag_on_two_celery_workers_equals_the_cli(stack, tmp_path):
    from fh_screen.app.cli import main

    state, env, exported = stack
    partitions, cli_out = [], {}
    for name, seed in REGIONS.items():
        base = tmp_path / name
        assert main(["synth", "--out", str(base / "synthetic"), "--patients", "200", "--seed", str(seed),
                     "--as-of", NIGHT]) == 0
        delivery = shutil.copytree(base / "synthetic" / "extracts" / NIGHT, base / "extracts" / NIGHT)
        config = base / "region.yaml"
        config.write_text(f"incremental:\n  partition_people: {PARTITION_PEOPLE}\n", encoding="utf-8")
        cli_out[name] = base / "cli" / "out"
        assert main(["run", "--extract", str(delivery), "--db", str(base / "cli" / "fh.duckdb"),
                     "--out", str(cli_out[name]), "--as-of", NIGHT, "--config", str(config), "--quiet"]) == 0
        partitions.append({"name": name, "extracts": str(base / "extracts"), "db": str(base / "fh.duckdb"),
                           "out": str(base / "runs"), "config": str(config)})

    _airflow(exported, env, "variables", "set", "fh_screen_partitions", json.dumps(partitions))
    _airflow(exported, env, "dags", "trigger", "fh_nightly", "--logical-date", LOGICAL_DATE)
    _airflow(exported, env, "dags", "unpause", "fh_nightly")
    started, run_state = time.monotonic(), None
    while time.monotonic() - started < DEADLINE_S:
        rows = _metadata(env, "SELECT state FROM dag_run WHERE dag_id = 'fh_nightly'")
        run_state = rows[0][0] if rows else None
        if run_state in ("success", "failed"):
            break
        time.sleep(3)
    tasks = _metadata(env, "SELECT task_id, map_index, state, hostname, rendered_map_index FROM task_instance "
                           "WHERE dag_id = 'fh_nightly' ORDER BY task_id, map_index")
    assert run_state == "success", tasks
    partition_tasks = [(host, label) for task_id, _, _, host, label in tasks if task_id == "features_partition"]
    # Every partition of both regions ran as its own mapped task, and both workers built some.
    assert sorted(label for _, label in partition_tasks) == [f"{r} {k}/3" for r in sorted(REGIONS) for k in (1, 2, 3)]
    assert {host for host, _ in partition_tasks} == {"fh-worker-1", "fh-worker-2"}, tasks

    for name in REGIONS:
        dag_out = Path(partitions[list(REGIONS).index(name)]["out"]) / NIGHT
        dag_files, cli_files = tree(dag_out), tree(cli_out[name])
        assert len(json.loads((dag_out / "run_manifest.json").read_text())["steps"]["features"]["partitions"]) == 3
        assert sorted(dag_files) == sorted(cli_files), name
        for rel in cli_files:
            assert dag_files[rel] == cli_files[rel], f"{name}: {rel}"
