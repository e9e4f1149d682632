"""Federated view: merging two regions' exports equals one run over both regions."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metrics_fake import AS_OF, make_joint_db, make_region_db  # noqa: E402

from fh_screen.app import cli
from fh_screen.store import db# noqa: E402
from fh_screen.config import load_settings# noqa: E402
from fh_screen.errors import UserError# noqa: E402
from fh_screen.stages.metrics import compute, federated, pilot# noqa: E402
from fh_screen.outputs import metrics_schema as S# noqa: E402

REGIONS = [("A", 500, 11), ("B", 700, 12)]


def export(path: Path, region_id: str) -> dict:
    settings = load_settings()
    con = db.connect(path, read_only=True)
    try:
        table = compute.compute_aggregates(con, AS_OF, region_id, settings.selection, settings.metrics)
    finally:
        con.close()
    return federated.aggregates_document(table, {
        "region_id": region_id, "as_of": AS_OF.isoformat(), "expected_prevalence": settings.metrics.expected_prevalence,
        "small_cell_max": settings.metrics.small_cell_max, "unit_costs_dkk": dict(settings.metrics.unit_costs_dkk)})


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regions")
    docs = {r: export(make_region_db(folder / f"{r}.duckdb", r, n, seed), r) for r, n, seed in REGIONS}
    joint = export(make_joint_db(folder / "joint.duckdb", REGIONS), "AB")
    return docs, joint


def without_region(document: dict) -> dict:
    return {(r["dimension"], r["level"], r["metric"]): r["value"] for r in document["rows"] if r["dimension"] != "region"}


def test_merged_aggregates_equal_the_joint_run(exports):
    docs, joint = exports
    merged = federated.merge(list(docs.values()))
    got, want = without_region(merged), without_region(joint)
    assert got.keys() == want.keys()
    for key, v in want.items():
        assert got[key] == pytest.approx(v, rel=1e-12, abs=1e-9), key
    assert [r["region_id"] for r in merged["regions"]] == ["A", "B"]


def test_region_dimension_keeps_each_regions_totals(exports):
    docs, _ = exports
    merged = {(r["dimension"], r["level"], r["metric"]): r["value"] for r in federated.merge(list(docs.values()))["rows"]}
    for region, doc in docs.items():
        own = {(r["metric"]): r["value"] for r in doc["rows"] if r["dimension"] == "all"}
        for metric, v in own.items():
            assert merged[("region", region, metric)] == pytest.approx(v)


def test_every_unsuppressed_cell_of_the_merge_equals_the_joint_run(exports):
    docs, joint = exports
    national = pilot.pilot_document(federated.merge(list(docs.values())))
    together = pilot.pilot_document(joint)
    for part in ("counts", "derived"):
        a = {(r["dimension"], r["level"], r["metric"]): r for r in national[part] if r["dimension"] != "region"}
        b = {(r["dimension"], r["level"], r["metric"]): r for r in together[part] if r["dimension"] != "region"}
        assert a.keys() == b.keys()
        both = [k for k in a if a[k]["status"] == "ok" and b[k]["status"] == "ok"]
        assert len(both) >= 30   # not vacuous: many cells are published in both
        for key in both:
            assert a[key]["value"] == pytest.approx(b[key]["value"], rel=1e-9, abs=1e-9), key
    for metric in pilot.FUNNEL:
        assert national["headline"][metric]["status"] == "ok"
        assert national["headline"][metric] == together["headline"][metric]


def test_merge_is_associative(exports):
    docs, _ = exports
    once = federated.merge([docs["A"], docs["B"]])
    twice = federated.merge([federated.merge([docs["A"]]), docs["B"]])
    assert without_region(once) == without_region(twice)


def test_merge_refuses_incompatible_inputs(exports):
    docs, _ = exports
    with pytest.raises(UserError, match="more than once"):
        federated.merge([docs["A"], docs["A"]])
    newer = copy.deepcopy(docs["B"])
    newer["schema_version"] = f"{int(S.SCHEMA_VERSION.split('.')[0]) + 1}.0"
    with pytest.raises(UserError, match="schema version"):
        federated.merge([docs["A"], newer])
    odd = copy.deepcopy(docs["B"])
    odd["rows"].append({"dimension": "all", "level": "all", "metric": "patient_list", "value": 1})
    with pytest.raises(UserError, match="metrics this code does not know"):
        federated.merge([docs["A"], odd])


def test_export_is_aggregate_only(exports):
    docs, _ = exports
    doc = docs["A"]
    assert doc["schema"] == S.AGGREGATES_SCHEMA and doc["schema_version"] == S.SCHEMA_VERSION
    assert doc["release"] == "secure-merge-only"
    assert {tuple(sorted(r)) for r in doc["rows"]} == {("dimension", "level", "metric", "value")}
    text = json.dumps(doc)
    assert "A00" not in text  # fake patient ids look like A00012


def test_cli_merge_writes_national_outputs(exports, tmp_path):
    docs, _ = exports
    inputs = []
    for region, doc in docs.items():
        path = tmp_path / region / "metrics" / "aggregates.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(doc))
        inputs.append(str(tmp_path / region))      # a run output folder is accepted too
    out = tmp_path / "national"
    assert cli.main(["metrics", "merge", "--inputs", *inputs, "--out", str(out)]) == 0
    for name in ("aggregates.json", "pilot_metrics.json", "report.html"):
        assert (out / name).stat().st_mode & 0o777 == 0o600
    document = json.loads((out / "pilot_metrics.json").read_text())
    assert [r["region_id"] for r in document["regions"]] == ["A", "B"]
    assert "By region" in (out / "report.html").read_text()


def test_cli_merge_reports_unreadable_input_in_one_line(tmp_path, capsys):
    bad = tmp_path / "aggregates.json"
    bad.write_text("{not json")
    assert cli.main(["metrics", "merge", "--inputs", str(bad), "--out", str(tmp_path / "o")]) == cli.EXIT_USER_ERROR
    assert capsys.readouterr().err.count("\n") == 1


def test_table_round_trip(exports):
    docs, _ = exports
    table = federated.table_of(docs["A"])
    assert table.schema == pl.Schema({"dimension": pl.Utf8, "level": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64})
    assert table.height == len(docs["A"]["rows"])
