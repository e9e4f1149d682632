"""Prospective evidence is read for tonight's eligible patients only, and gives each of them
exactly what reading the whole region gives: a night's referral cost follows its candidates,
not the size of the region's lab history."""

import sys
from datetime import date, datetime
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.stages.referrals import prospective  # noqa: E402
from fh_screen.stages.referrals import step as r  # noqa: E402
from fh_screen.store import db  # noqa: E402

AS_OF = f.AS_OF


def _store(tmp_path):
    """p1..p4 with lipid results, an outcome, a family-history item, an FH diagnosis and a
    relative confirmed at the clinic, delivered on two nights."""
    rows = [f.rule(f"p{i}") for i in range(1, 5)]
    labs = [
        {"result_id": "r1", "patient_id": "p1", "sampled_at": datetime(2026, 3, 1), "analyte": "ldl", "value": 7.0,
         "status": "final"},
        {"result_id": "r2", "patient_id": "p1", "sampled_at": datetime(2026, 9, 1), "analyte": "ldl", "value": 5.0,
         "status": "final"},
        {"result_id": "r3", "patient_id": "p2", "sampled_at": datetime(2026, 5, 1), "analyte": "tc", "value": 9.0,
         "status": "final"},
        {"result_id": "r4", "patient_id": "p3", "sampled_at": datetime(2026, 6, 1), "analyte": "ldl", "value": 6.0,
         "status": "final"},
    ]
    path = f.build_db(tmp_path / "e.duckdb", rows, labs=labs,
                      outcomes=f.outcomes_frame([("p4", date(2026, 10, 1), "fh_clinical")]))
    con = db.connect(path)
    try:
        con.execute("INSERT INTO deliveries VALUES ('d1', 'h', ?, ?), ('d2', 'h', ?, ?)",
                    [date(2026, 6, 30), datetime(2026, 6, 30), date(2026, 10, 2), datetime(2026, 10, 2)])
        con.execute("INSERT INTO relations VALUES ('p4', 'p2', 'sibling', 'd2'), ('p3', 'p1', 'parent', 'd1')")
        con.execute("INSERT INTO family_history VALUES ('p3', 'premature_chd', DATE '2026-10-01', 'd2')")
        con.execute("INSERT INTO diagnoses VALUES ('p1', 'E780B', 'DE780B', DATE '2026-08-01', 'd2')")
    finally:
        con.close()
    return path


def test_evidence_of_some_patients_equals_their_rows_of_everyones(tmp_path):
    con = db.connect(_store(tmp_path))
    try:
        everyone = prospective.read_evidence(con, AS_OF, pl.Series(["p1", "p2", "p3", "p4"]))
        some = prospective.read_evidence(con, AS_OF, pl.Series(["p2", "p3"]))
    finally:
        con.close()
    assert everyone.height == 4
    assert sorted(some["patient_id"]) == ["p2", "p3"]
    # p2's evidence includes the sibling p4 confirmed (p2 on the relative side of the row);
    # p3's the parent p1's FH diagnosis, though neither relative was asked for.
    assert some.sort("patient_id").rows() == everyone.filter(pl.col("patient_id").is_in(["p2", "p3"])) \
        .sort("patient_id").rows()
    by_id = {row[0]: row[1:] for row in some.rows()}
    assert by_id["p2"] == (date(2026, 10, 1), date(2026, 6, 30))   # the outcome came with d1
    assert by_id["p3"] == (date(2026, 10, 1), date(2026, 10, 2))


def test_the_plan_asks_for_the_evidence_of_tonights_eligible_patients_only():
    rows = [f.rule("p1"), f.rule("p2", excluded_reason="already_diagnosed"),
            f.rule("p3", dlcn_points=1, dlcn_category="unlikely", simon_broome="not_met", lab_flag=False),
            f.rule("p4")]
    asked = []

    def reader(ids: pl.Series) -> pl.DataFrame:
        asked.append(sorted(ids.to_list()))
        return prospective.empty_evidence()

    by_reader, _ = r.plan_referrals(f.rules_frame(rows), None, f.patients_frame(rows), f.outcomes_frame(),
                                    r.empty_events(), f.settings(), AS_OF, reader)
    by_frame, _ = r.plan_referrals(f.rules_frame(rows), None, f.patients_frame(rows), f.outcomes_frame(),
                                   r.empty_events(), f.settings(), AS_OF, prospective.empty_evidence())
    assert asked == [["p1", "p4"]]
    assert by_reader.equals(by_frame)
