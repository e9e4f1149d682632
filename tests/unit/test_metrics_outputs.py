"""The metrics step's files: report and JSON written owner-only, self-contained, aggregate-only."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metrics_fake import AS_OF, make_region_db  # noqa: E402

from fh_screen.stages.metrics import metrics_step# noqa: E402
from fh_screen.app.run import STEPS, prepare# noqa: E402

SECTIONS = ("funnel", "trends", "calibration", "equity", "cascade", "treatment", "ppv", "cost", "benchmarks", "yardsticks",
            "method")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metrics-run")
    path = make_region_db(folder / "r.duckdb", "R", 1500, 5)
    ctx = prepare(None, path, folder / "out", AS_OF)
    report = metrics_step(ctx)
    return ctx, report, path


def test_step_is_registered():
    assert any(s.name == "metrics" and s.run is metrics_step for s in STEPS)


def test_files_are_owner_only(run):
    ctx, _, _ = run
    folder = ctx.work_dir / "metrics"
    assert sorted(p.name for p in folder.iterdir()) == ["aggregates.json", "model_monitoring.json",
                                                        "pilot_metrics.json", "report.html"]
    for path in folder.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700


def test_step_report_gives_the_funnel(run):
    ctx, report, _ = run
    document = json.loads((ctx.work_dir / "metrics" / "pilot_metrics.json").read_text())
    assert report["funnel"] == {m: document["headline"][m]["value"] for m in report["funnel"]}
    assert report["funnel"]["population"] > report["funnel"]["referred"] > 0


def test_report_is_self_contained_with_every_page(run):
    ctx, _, _ = run
    html = (ctx.work_dir / "metrics" / "report.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert html.count("<svg") >= 4        # funnel, trends, calibration, equity plots inline


def test_no_patient_level_data_in_any_output(run):
    ctx, _, path = run
    con = duckdb.connect(str(path), read_only=True)
    ids = {r[0] for r in con.execute("SELECT patient_id FROM patients").fetchall()}
    births = {str(r[0]) for r in con.execute("SELECT birth_date FROM patients").fetchall()}
    con.close()
    for name in ("aggregates.json", "pilot_metrics.json", "report.html"):
        text = (ctx.work_dir / "metrics" / name).read_text()
        tokens = set(re.findall(r"[A-Za-z0-9-]+", text))
        assert not tokens & ids, name
        assert not tokens & births, name


def test_published_counts_are_never_small(run):
    ctx, _, _ = run
    document = json.loads((ctx.work_dir / "metrics" / "pilot_metrics.json").read_text())
    published = [r["value"] for r in document["counts"] if r["status"] == "ok"]
    assert published and not [v for v in published if 1 <= v <= 4]
    assert all(r["value"] is None for r in document["counts"] if r["status"] == "suppressed")
    assert document["disclosure"]["counts_withheld"] > 0


def test_absent_derived_tables_are_reported_as_features_off(tmp_path):
    path = make_region_db(tmp_path / "bare.duckdb", "Z", 200, 3, with_model=False, with_cascade=False)
    ctx = prepare(None, path, tmp_path / "out", AS_OF)
    metrics_step(ctx)
    off = ctx.manifest["features_off"]
    assert set(off) == {"metrics.model_scores", "metrics.cascade_ledger"}
    html = (ctx.work_dir / "metrics" / "report.html").read_text()
    assert "calibration not shown" in html
