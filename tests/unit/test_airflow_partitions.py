"""The features step as the nightly DAG runs it: a plan per region, family partitions built
on any worker from the store opened read-only into their own files, one gather that writes.
Called here through ``orchestration`` exactly as the DAG's tasks call it, without Airflow."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from fh_screen.app import orchestration as orch
from fh_screen.app.cli import main
from fh_screen.context import PARTS_DIR, measured
from fh_screen.errors import UserError
from fh_screen.stages.rules import step as rules_step
from fh_screen.stages.score import step as score_step
from fh_screen.store import files
from fh_screen.store.erasure import PATIENT_COLUMNS

NIGHT = date(2026, 11, 23)
PEOPLE = 120


@pytest.fixture(scope="module")
def delivery(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    assert main(["synth", "--out", str(root), "--patients", str(PEOPLE), "--seed", "5",
                 "--as-of", NIGHT.isoformat()]) == 0
    return root / "extracts" / NIGHT.isoformat()


def _region(root: Path, delivery: Path, people: int, name: str = "nord", model: bool = False) -> dict:
    base = root / name
    shutil.copytree(delivery, base / "extracts" / NIGHT.isoformat())
    config = base / "region.yaml"
    config.write_text(f"incremental:\n  partition_people: {people}\nmodel:\n  enabled: {str(model).lower()}\n",
                      encoding="utf-8")
    return {"name": name, "extracts": str(base / "extracts"), "db": str(base / "fh.duckdb"),
            "out": str(base / "runs"), "config": str(config)}


def _loaded(region: dict, night: date = NIGHT) -> list[dict]:
    """Run the steps before the features, then plan them: the work items."""
    before, split, _ = orch.split_steps()
    for step in before:
        orch.run_step(region, night, step.name)
    parts = orch.plan_partitions(region, night, split.name)
    items = orch.partition_work([region], night, split.name)
    assert len(items) == parts
    return items


def _features(region: dict) -> pl.DataFrame:
    with duckdb.connect(region["db"], read_only=True) as con:
        return con.execute("SELECT * FROM patient_features").pl()


def _parts(region: dict) -> Path:
    return Path(region["out"]) / f".{NIGHT.isoformat()}.partial" / PARTS_DIR / "features"


def _rules(region: dict, table: str = "rule_results") -> pl.DataFrame:
    with duckdb.connect(region["db"], read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY patient_id").pl()


def _no_scoring(*args, **kwargs):
    raise AssertionError("the step scored from the store although the partitions cover the night")


def test_partitions_built_in_any_order_and_gathered_equal_one_pass(tmp_path, delivery, monkeypatch):
    """Features, rule results and model scores: each partition's task builds all three for its
    families; the rules and score steps then score nobody from the store and hold the same
    rows as scoring from the store (the score step still fits the region calibration)."""
    one = _region(tmp_path / "one", delivery, people=10 * PEOPLE, model=True)
    split = _region(tmp_path / "split", delivery, people=PEOPLE // 3, model=True)
    assert len(items := _loaded(one)) == 1
    orch.build_partition(items[0])
    orch.run_step(one, NIGHT, "features")
    items = _loaded(split)
    assert [(i["part"], i["parts"]) for i in items] == [(0, 3), (1, 3), (2, 3)]
    assert json.loads(json.dumps(items)) == items                     # XCom-safe
    reports = [orch.build_partition(item) for item in reversed(items)]  # workers finish in any order
    assert sum(r["people"] for r in reports) == PEOPLE
    assert all(r["peak_rss_mib"] > 0 and r["seconds"] >= 0 for r in reports)
    gathered = orch.run_step(split, NIGHT, "features")
    assert [p["people"] for p in gathered["partitions"]] == [r["people"] for r in reversed(reports)]
    assert _features(split).equals(_features(one))
    assert all(r["rules"]["peak_rss_mib"] > 0 and r["score"]["peak_rss_mib"] > 0 for r in reports)
    assert sorted(p.name for p in _parts(split).glob("rules-*")) == [f"rules-part-{k}-of-3.parquet" for k in range(3)]
    assert [p.name.split("-part-")[1] for p in sorted(_parts(split).glob("score-*"))] == [
        f"{k}-of-3.parquet" for k in range(3)]
    for path in [*_parts(one).glob("rules-*"), *_parts(one).glob("score-*")]:   # a task that ended early
        path.unlink()
    orch.run_step(one, NIGHT, "rules")               # scored from the store instead
    with monkeypatch.context() as m:
        m.setattr(rules_step, "score", _no_scoring)
        assert orch.run_step(split, NIGHT, "rules")["patients"] == PEOPLE
    assert _rules(split).equals(_rules(one))
    orch.run_step(one, NIGHT, "score")
    with monkeypatch.context() as m:
        m.setattr(score_step, "model_input_chunks", _no_scoring)
        assert orch.run_step(split, NIGHT, "score")["scored"] == sum(r["score"]["scored"] for r in reports) > 0
    assert _rules(split, "model_scores").equals(_rules(one, "model_scores"))


def test_the_gather_refuses_while_a_partition_is_missing_and_the_store_is_unchanged(tmp_path, delivery):
    region = _region(tmp_path, delivery, people=PEOPLE // 3)
    items = _loaded(region)
    for item in items[:-1]:
        orch.build_partition(item)
    with pytest.raises(UserError, match=r"partition\(s\) 2 of 3 not built"):
        orch.run_step(region, NIGHT, "features")
    with duckdb.connect(region["db"], read_only=True) as con:
        assert con.execute("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_name = 'patient_features'").fetchone()[0] == 0
    orch.build_partition(items[-1])                                   # the retried task
    assert orch.run_step(region, NIGHT, "features")["patients"] == PEOPLE


def test_a_partition_rerun_replaces_its_own_file_and_a_gather_rerun_changes_nothing(tmp_path, delivery):
    region = _region(tmp_path, delivery, people=PEOPLE // 3)
    items = _loaded(region)
    for item in items:
        orch.build_partition(item)
    first = pl.read_parquet(_parts(region) / "part-1-of-3.parquet")
    orch.build_partition(items[1])
    assert pl.read_parquet(_parts(region) / "part-1-of-3.parquet").equals(first)
    assert sorted(p.name for p in _parts(region).iterdir() if p.name.startswith("part-")) == [
        f"part-{k}-of-3.{s}" for k in range(3) for s in ("json", "parquet")]   # no temporary file left
    orch.run_step(region, NIGHT, "features")
    once = _features(region)
    orch.run_step(region, NIGHT, "features")
    assert _features(region).equals(once)


def _naming(region: dict, patient_id: str) -> dict[str, int]:
    """Rows naming ``patient_id`` per table of the store (the columns an erasure clears)."""
    with duckdb.connect(region["db"], read_only=True) as con:
        columns = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                              "WHERE list_contains(?, column_name)", [list(PATIENT_COLUMNS)]).fetchall()
        counts = {f"{t}.{c}": con.execute(f'SELECT count(*) FROM "{t}" WHERE "{c}" = ?', [patient_id]).fetchone()[0]
                  for t, c in columns}
    return {k: n for k, n in counts.items() if n}


def test_a_patient_erased_between_the_partitions_and_the_gathers_stays_erased(tmp_path, delivery):
    """The partitions take no lock, so ``fhscreen erase`` may run while they do: their files
    then still hold the erased person (as a patient and in the plan's lists). The gathers load
    only the rows of patients still in the store, on a full pass and on an incremental night."""
    region = _region(tmp_path, delivery, people=PEOPLE // 3, model=True)
    with duckdb.connect(str(tmp_path / "synth.duckdb")) as con:   # people with relatives, to erase
        related = con.execute("SELECT DISTINCT patient_id FROM read_csv(?, all_varchar = true) ORDER BY 1 LIMIT 2",
                              [str(delivery / "relations.csv")]).fetchall()
    for night, (erased,) in zip((NIGHT, NIGHT + timedelta(days=1)), related):
        shutil.copytree(delivery, Path(region["extracts"]) / night.isoformat(), dirs_exist_ok=True)
        for item in _loaded(region, night):
            orch.build_partition(item)
        assert _naming(region, erased)
        assert main(["erase", "--db", region["db"], "--patient-id", erased]) == 0
        reports = {step: orch.run_step(region, night, step) for step in ("features", "rules", "score")}
        assert _naming(region, erased) == {}
        assert reports["features"]["patients"] == reports["rules"]["patients"] == PEOPLE - 1 - (night > NIGHT)
        assert reports["features"]["mode"] == ("full" if night == NIGHT else "incremental")
        assert reports["score"]["scored"] > 0


def test_a_partition_needs_the_plan_of_its_night(tmp_path, delivery):
    region = _region(tmp_path, delivery, people=PEOPLE // 3)
    items = _loaded(region)
    orch.run_step(region, NIGHT, "stage")                             # a new attempt: the old plan is gone
    with pytest.raises(UserError, match="no features plan"):
        orch.build_partition(items[0])


def test_a_partition_file_is_all_or_nothing(tmp_path, monkeypatch):
    frame = pl.DataFrame({"patient_id": ["A", "B"]})

    def crash(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(OSError):
        files.write_parquet(tmp_path / "part-0-of-2.parquet", frame)
    assert list(tmp_path.iterdir()) == []


def test_tasks_of_a_published_night_do_nothing(tmp_path, delivery):
    """Clearing a failed region's task with its downstream tasks also clears the partition
    list and the gathers every region shares; an already published region stays as it is."""
    region = _region(tmp_path, delivery, people=PEOPLE // 3)
    items = _loaded(region)
    for item in items:
        orch.build_partition(item)
    _, split, after = orch.split_steps()
    for name in [split.name, *(s.name for s in after)]:
        orch.run_step(region, NIGHT, name)
    out = Path(orch.publish_night(region, NIGHT))
    published = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert not any(PARTS_DIR in str(p) for p in published)
    assert orch.plan_partitions(region, NIGHT, split.name) == 0
    assert orch.partition_work([region], NIGHT, split.name) == []
    assert orch.build_partition(items[0]) == orch.ALREADY_PUBLISHED
    assert orch.run_step(region, NIGHT, split.name) == orch.ALREADY_PUBLISHED
    assert orch.publish_night(region, NIGHT) == str(out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == published


def test_partition_work_lists_every_region_that_planned_and_no_other(tmp_path, delivery):
    nord = _region(tmp_path, delivery, people=PEOPLE // 2, name="nord")
    syd = _region(tmp_path, delivery, people=PEOPLE // 2, name="syd")      # failed before its plan
    orch.run_step(syd, NIGHT, "stage")
    nord_items = _loaded(nord)
    items = orch.partition_work([syd, nord], NIGHT, "features")
    assert items == nord_items
    assert [orch.partition_label(i) for i in items] == ["nord 1/2", "nord 2/2"]
    assert not (Path(syd["out"]) / f".{NIGHT.isoformat()}.partial" / PARTS_DIR).exists()


def test_a_step_peak_includes_the_peaks_of_its_partitions():
    with measured() as step:
        with measured() as part:
            block = bytearray(64 << 20)
            block[::4096] = b"x" * len(block[::4096])
            del block
    assert part["peak_rss_mib"] >= 64
    assert step["peak_rss_mib"] >= part["peak_rss_mib"]

