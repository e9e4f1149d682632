"""Tonight's selection figures in pilot_metrics.json and the evaluator report: selections per
1,000 tested (prospective and backlog apart), backlog size, weeks to clear, expected carriers,
next to ARIAN's laboratory flag rate; small counts withheld like every other count."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metrics_fake import AS_OF, make_region_db  # noqa: E402

from fh_screen.app.run import prepare  # noqa: E402
from fh_screen.stages.metrics import metrics_step  # noqa: E402
from fh_screen.store import db  # noqa: E402

COLUMNS = ("as_of, clinic_id, weekly_capacity, expected_prospective_weekly, backlog_places, candidates, "
           "prospective_candidates, prospective_selected, backlog_selected, clinic_listed, queued, backlog_queued, "
           "below_line, outside_lookback, check_first_listed, check_first_backlog_listed, check_first_held, "
           "below_line_expected_carriers, horizon_expected_carriers, backlog_size, backlog_weekly_places, "
           "weeks_to_clear")
ROWS = [   # two clinics tonight, and an older night that must not be counted
    (AS_OF, "A", 15, 5, 120, 400, 3, 3, 60, 15, 110, 100, 250, 0, 6, 6, 20, 30.5, 40.25, 350, 10, 35.0),
    (AS_OF, "B", 15, 3, 140, 300, 0, 0, 80, 15, 130, 120, 150, 0, 4, 4, 10, 12.0, 50.0, 270, 12, 22.5),
    (AS_OF - timedelta(days=7), "A", 15, 5, 120, 999, 99, 99, 99, 15, 9, 9, 9, 0, 9, 9, 9, 9.0, 9.0, 9, 9, 1.0),
]


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    folder = tmp_path_factory.mktemp("selection-metrics")
    path = make_region_db(folder / "r.duckdb", "S", 1500, 5)
    con = db.connect(path)
    try:
        con.execute(db.sql("referrals_schema"))
        for row in ROWS:
            con.execute(f"INSERT INTO selection_runs ({COLUMNS}) VALUES ({', '.join('?' * len(row))})", list(row))
        tested = con.execute("SELECT count(DISTINCT patient_id) FROM lab_results").fetchone()[0]
    finally:
        con.close()
    ctx = prepare(None, path, folder / "out", AS_OF)
    metrics_step(ctx)
    out = ctx.work_dir / "metrics"
    return (json.loads((out / "pilot_metrics.json").read_text()), (out / "report.html").read_text(),
            json.loads((out / "aggregates.json").read_text()), tested)


def test_selection_counts_are_tonights_sums_over_clinics(document):
    pilot, _, _, _ = document
    sel = pilot["selection"]
    assert sel["sel_candidates"] == {"value": 700, "status": "ok"}
    assert sel["sel_backlog"]["value"] == 140 and sel["backlog_size"]["value"] == 620
    assert sel["queue_horizon"]["value"] == 15 + 110 + 15 + 130
    assert sel["backlog_below_line"]["value"] == 400 and sel["check_first_held"]["value"] == 30


def test_rates_per_1000_tested_and_weeks_to_clear(document):
    pilot, _, _, _ = document
    sel, tested = pilot["selection"], pilot["headline"]["tested"]["value"]
    assert sel["selected_per_1000_tested"]["value"] == round(1000 * 700 / tested, 2)
    assert sel["backlog_per_1000_tested"]["value"] == round(1000 * 140 / tested, 2)
    assert sel["weeks_to_clear"]["value"] == round(620 / 22, 1)
    assert sel["below_line_expected_carriers"]["value"] == 42.5
    assert sel["horizon_expected_carriers"]["value"] == 90.2


def test_a_small_prospective_count_is_withheld_with_its_rate(document):
    pilot, _, _, _ = document
    assert pilot["selection"]["sel_prospective"] == {"value": None, "status": "suppressed"}
    assert pilot["selection"]["prospective_per_1000_tested"] == {"value": None, "status": "suppressed"}


def test_aggregates_hold_only_additive_selection_cells(document):
    _, _, aggregates, _ = document
    cells = {(r["dimension"], r["metric"]): r["value"] for r in aggregates["rows"]}
    assert cells[("all", "sel_candidates")] == cells[("region", "sel_candidates")] == 700
    assert cells[("all", "backlog_weekly_places")] == 22
    assert not {m for _, m in cells if m in ("weeks_to_clear", "selected_per_1000_tested")}   # derived after a merge
    assert not {d for d, m in cells if m == "sel_candidates"} - {"all", "region"}


def test_report_shows_the_figures_next_to_arian(document):
    pilot, report, _, _ = document
    assert 'id="selection"' in report
    arian = next(b for b in pilot["benchmarks"] if b["id"] == "arian_flags_per_1000_tested")
    assert arian["value"] == 0.0018 and "10.3389/fgene.2022.971651" in arian["source"]
    assert "<td>1.8</td>" in report
    assert f"<td>{pilot['selection']['selected_per_1000_tested']['value']}</td>" in report
    assert "withheld" in report.split('id="selection"')[1].split("</section>")[0]


def test_a_store_without_selection_runs_reports_zero_selections(tmp_path):
    path = make_region_db(tmp_path / "r.duckdb", "T", 300, 2)
    con = duckdb.connect(str(path))
    try:
        assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'selection_runs'").fetchone()[0]
    finally:
        con.close()
    ctx = prepare(None, path, tmp_path / "out", AS_OF)
    metrics_step(ctx)
    pilot = json.loads((ctx.work_dir / "metrics" / "pilot_metrics.json").read_text())
    assert pilot["selection"]["sel_candidates"] == {"value": 0, "status": "ok"}
    assert pilot["selection"]["weeks_to_clear"]["status"] == "not_applicable"
