"""The referrals step with the bounded backlog on a DuckDB file: the ledger records flow and
expected week, ``selection_runs`` holds the night's figures, GP worklists name weeks (never an
open-ended waiting count), and a new high result delivered later is a prospective flag."""

import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.config import BacklogSettings, Clinic  # noqa: E402
from fh_screen.stages.referrals.step import referrals_step  # noqa: E402

AS_OF = f.AS_OF
NEXT = AS_OF + timedelta(days=7)


def settings():
    clinic = Clinic(clinic_id="LK", name="Lipidklinik", weekly_capacity=2, postcodes=["5"])
    return f.settings(clinics=[clinic], lang="en").model_copy(
        update={"backlog": BacklogSettings(horizon_weeks=2, share=1.0, lookback_years=20)})


def read(db_path, sql, params=()):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql, list(params)).pl()
    finally:
        con.close()


def deliver(db_path, delivery_id, as_of, labs):
    con = duckdb.connect(str(db_path))
    try:
        con.execute("INSERT INTO deliveries VALUES (?, 'h', ?, ?)", [delivery_id, as_of, datetime(2026, 1, 1)])
        for result_id, pid, day, value in labs:
            con.execute("INSERT INTO lab_results VALUES (?, ?, ?, 'ldl', 'measured', 'NPU', ?, 'mmol/L', NULL, "
                        "CAST(? AS VARCHAR), 'mmol/L', 'final', NULL, ?)", [result_id, pid, day, value, value, delivery_id])
    finally:
        con.close()


def test_queue_is_bounded_worklists_name_weeks_and_new_results_are_taken_first(tmp_path):
    rows = [f.rule(f"p{i:02d}", dlcn_points=20 - i) for i in range(10)]
    db_path = f.build_db(tmp_path / "r.duckdb", rows)
    deliver(db_path, "d1", AS_OF, [(f"r{i}", f"p{i:02d}", datetime(2024, 3, 1), 7.0) for i in range(10)])

    report = referrals_step(f.context(tmp_path, db_path, cfg=settings()))
    events = read(db_path, "SELECT patient_id, event, flow, slot_week FROM referral_events ORDER BY patient_id")
    assert events.rows() == [
        ("p00", "listed", "backlog", AS_OF), ("p01", "listed", "backlog", AS_OF),
        ("p02", "queued", "backlog", NEXT), ("p03", "queued", "backlog", NEXT),
    ]   # 2 weeks x 2 places; p04..p09 are below the line: no event
    figures = read(db_path, "SELECT * FROM selection_runs WHERE clinic_id = 'LK'").to_dicts()[0]
    assert (figures["below_line"], figures["backlog_places"], figures["backlog_size"]) == (6, 4, 8)
    assert report["selection"]["below_line"] == 6

    page = (tmp_path / f"work-{AS_OF.isoformat()}" / "worklists" / "P1.html").read_text(encoding="utf-8")
    assert page.count("Lipid-clinic place expected in week 48, 2026.") == 2
    assert "week 49, 2026: 2 patient(s)" in page
    assert "waiting for lipid-clinic capacity" not in page and "6 patient" not in page

    # a week later a new high LDL-C for the lowest-ranked patient arrives: a prospective flag
    deliver(db_path, "d2", NEXT, [("r99", "p09", datetime(2026, 11, 28), 9.0)])
    referrals_step(f.context(tmp_path, db_path, as_of=NEXT, cfg=settings()))
    tonight = read(db_path, "SELECT patient_id, event, flow FROM referral_events WHERE as_of = ? ORDER BY patient_id",
                   [NEXT])
    assert ("p09", "listed", "prospective") in tonight.rows()
    assert ("p02", "listed", "backlog") in tonight.rows() and ("p03", "queued", "backlog") in tonight.rows()
