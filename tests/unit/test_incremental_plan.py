"""Which patients an incremental night recomputes, and when it makes a full pass (``store.changes``)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from fh_screen.app.privacy import erase_patient
from fh_screen.config import IncrementalSettings, load_settings
from fh_screen.stages.features import partitions
from fh_screen.stages.features.build import boundary_day_counts, build_features, load_inputs, own_features
from fh_screen.stages.ingest import step as ingest
from fh_screen.store import changes, db

DAY = date(2026, 3, 10)
WEEKLY = load_settings()          # the default: a full pass every 7 days
SETTINGS = WEEKLY.model_copy(update={"incremental": IncrementalSettings(full_pass_days=3650)})
# A chain of relations rows A-B-C-D-E-F (each the parent of the next); G stands alone.
CHAIN = "ABCDEF"


@pytest.fixture
def con(tmp_path):
    con = db.connect(tmp_path / "store.duckdb")
    for pid in CHAIN + "G":
        con.execute("INSERT INTO patients VALUES (?, DATE '1980-06-01', 'F', 'P1', '5000', NULL, NULL, 'd1')", [pid])
        con.execute("INSERT INTO lab_results VALUES (?, ?, TIMESTAMP '2025-01-05 08:00', 'ldl', 'measured', 'c', "
                    "4.0, 'mmol/L', NULL, '4.0', 'mmol/L', 'final', 'P1', 'd1')", [f"R{pid}", pid])
    for parent, child in zip(CHAIN, CHAIN[1:]):
        con.execute("INSERT INTO relations VALUES (?, ?, 'child', 'd1')", [parent, child])
    yield con
    con.close()


def _deliver(con, table, rows):
    """What the load step does with a delivered table: ``rows`` (a query of the table's
    columns) staged as ``stg_<table>`` and merged (replacing rows with the same key)."""
    con.execute(f"CREATE OR REPLACE TABLE stg_{table} AS {rows}")
    ingest._merge(con, table, "d2")
    con.execute(f"DROP TABLE stg_{table}")


def _night(con, as_of, settings=SETTINGS, evidence=None):
    """One night's plan, saved. ``evidence``: the changed patients whose evidence as a
    relative changed (the features step finds them, ``partitions.evidence_changed``;
    default: all of them)."""
    plan = changes.plan_features(con, as_of, settings, boundary_day_counts())
    if not plan.full:
        plan = changes.widen(con, plan, plan.recompute if evidence is None else evidence)
    changes.save_features(con, plan, as_of, settings)
    return plan


def test_first_night_is_full_then_nothing_changed_means_nobody_is_recomputed(con):
    assert _night(con, DAY).reason == "first night"
    plan = _night(con, DAY + timedelta(days=1))
    assert not plan.full and plan.recompute.height == 0


def test_a_changed_result_recomputes_the_patient_and_everyone_within_three_relations_rows(con):
    _night(con, DAY)
    _deliver(con, "lab_results", "SELECT * EXCLUDE (delivery_id) REPLACE (6.5 AS value, 'corrected' AS status) "
                                 "FROM lab_results WHERE patient_id = 'A'")
    plan = _night(con, DAY + timedelta(days=1))
    assert plan.recompute["patient_id"].to_list() == ["A", "B", "C", "D"]   # E, F and G keep their rows


def test_a_new_relation_counts_for_both_ends(con):
    _night(con, DAY)
    _deliver(con, "relations", "SELECT 'G' AS patient_id, 'F' AS relative_id, 'sibling' AS relationship")
    plan = _night(con, DAY + timedelta(days=1))
    assert plan.recompute["patient_id"].to_list() == ["C", "D", "E", "F", "G"]


def test_relatives_are_recomputed_only_where_their_family_evidence_changed(con):
    """A's new result changes nothing A's relatives see (``evidence`` empty): only A. A new
    relation changes the family graph whatever the evidence: its ends' families."""
    _night(con, DAY)
    _deliver(con, "lab_results", "SELECT * EXCLUDE (delivery_id) REPLACE ('RA2' AS result_id) "
                                 "FROM lab_results WHERE patient_id = 'A'")
    _deliver(con, "relations", "SELECT 'G' AS patient_id, 'F' AS relative_id, 'sibling' AS relationship")
    plan = _night(con, DAY + timedelta(days=1), evidence=pl.DataFrame(schema={"patient_id": pl.Utf8}))
    assert plan.recompute["patient_id"].to_list() == ["A", "C", "D", "E", "F", "G"]


def test_evidence_changes_only_with_what_a_relative_sees(con):
    """A lower LDL-C than A's highest leaves A's evidence as a relative unchanged; a higher one
    changes it (the LDL-C category relatives are judged by)."""
    db.replace_table(con, "patient_features", build_features(load_inputs(con, DAY), DAY))
    _night(con, DAY)
    night = DAY + timedelta(days=1)
    for value, changed in ((3.0, []), (9.5, ["A"])):
        _deliver(con, "lab_results", f"SELECT * EXCLUDE (delivery_id) REPLACE ('RA{value}' AS result_id, {value} AS value, "
                                     "TIMESTAMP '2025-06-05 08:00' AS sampled_at) FROM lab_results WHERE result_id = 'RA'")
        changes.plan_features(con, night, SETTINGS, boundary_day_counts())
        own = own_features(load_inputs(con, night, scope=changes.CHANGED_TABLE), night)
        assert partitions.evidence_changed(con, own)["patient_id"].to_list() == changed


def test_a_result_corrected_onto_another_patient_recomputes_both(con):
    """The replaced row names A, its correction G: A loses the result, G gains it."""
    _night(con, DAY)
    _deliver(con, "lab_results", "SELECT * EXCLUDE (delivery_id) REPLACE ('G' AS patient_id, 'corrected' AS status) "
                                 "FROM lab_results WHERE patient_id = 'A'")
    plan = _night(con, DAY + timedelta(days=1))
    assert plan.recompute["patient_id"].to_list() == ["A", "B", "C", "D", "G"]


def test_an_erasure_recomputes_the_relatives_and_never_notes_the_erased_person(con):
    """Erasing C splits the chain: B and D lose a relative (so do A and E, F through them)."""
    _night(con, DAY)
    erase_patient(con, "C", DAY)
    assert con.execute("SELECT count(*) FROM incr_changes WHERE patient_id = 'C'").fetchone()[0] == 0
    plan = _night(con, DAY + timedelta(days=1))
    assert plan.recompute["patient_id"].to_list() == ["A", "B", "D", "E", "F"]


def test_a_record_is_a_change_on_the_night_its_date_is_reached(con):
    """A result dated after the run date (already in the store) counts from its sample date."""
    con.execute("DELETE FROM relations")
    con.execute("INSERT INTO lab_results VALUES ('RF', 'G', TIMESTAMP '2026-03-14 08:00', 'ldl', 'measured', 'c', "
                "7.0, 'mmol/L', NULL, '7.0', 'mmol/L', 'final', 'P1', 'd1')")
    _night(con, DAY)
    assert _night(con, date(2026, 3, 13)).recompute.height == 0
    assert _night(con, date(2026, 3, 14)).recompute["patient_id"].to_list() == ["G"]
    assert _night(con, date(2026, 3, 15)).recompute.height == 0


def test_a_rerun_plans_the_same_and_notes_after_the_plan_wait_for_the_next_night(con):
    _night(con, DAY)
    _deliver(con, "lab_results", "SELECT * EXCLUDE (delivery_id) REPLACE ('corrected' AS status) "
                                 "FROM lab_results WHERE patient_id = 'G'")
    night = DAY + timedelta(days=1)
    plan = changes.plan_features(con, night, SETTINGS, boundary_day_counts())
    plan = changes.widen(con, plan, plan.recompute)
    _deliver(con, "lab_results", "SELECT * EXCLUDE (delivery_id) REPLACE ('corrected' AS status) "
                                 "FROM lab_results WHERE patient_id = 'F'")   # after the plan was made
    changes.save_features(con, plan, night, SETTINGS)
    assert plan.recompute["patient_id"].to_list() == ["G"]
    rerun = changes.plan_features(con, night, SETTINGS, boundary_day_counts())
    rerun = changes.widen(con, rerun, rerun.recompute)
    assert rerun.recompute["patient_id"].to_list() == ["C", "D", "E", "F", "G"]   # G again, and F now
    assert _night(con, night + timedelta(days=1)).recompute["patient_id"].to_list() == ["C", "D", "E", "F"]


@pytest.mark.parametrize(("days", "crossed"), [(0, False), (1, True), (2, True)])
def test_birthday_is_a_boundary(con, days, crossed):
    """Born 1 June: the night of 1 June (and any night after 31 May) crosses it."""
    con.execute("DELETE FROM relations")
    _night(con, date(2026, 5, 31))
    plan = _night(con, date(2026, 5, 31) + timedelta(days=days))
    assert (plan.recompute.height == 7) is crossed


def test_treatment_coverage_ending_is_a_boundary(con):
    coverage = 100   # reference/rules/ldl_estimation_v*.yaml treatment.coverage_days
    con.execute("DELETE FROM relations")
    con.execute("INSERT INTO medications VALUES ('B', 'C10AA01', DATE '2026-01-01', 20.0, 'd1')")
    end = date(2026, 1, 1) + timedelta(days=coverage + 1)       # first day not covered
    _night(con, end - timedelta(days=10))
    assert _night(con, end - timedelta(days=4)).recompute.height == 0
    assert _night(con, end).recompute["patient_id"].to_list() == ["B"]


def test_day_counts_come_from_the_current_rules():
    counts = boundary_day_counts()
    assert {28, 29, 100, 101} <= set(counts["medication_days"])
    assert {365, 366} <= set(counts["outcome_days"])


@pytest.mark.parametrize(("first", "then", "as_of", "reason"), [
    (SETTINGS, SETTINGS.model_copy(update={"incremental": IncrementalSettings(enabled=False, full_pass_days=3650)}),
     DAY + timedelta(days=1), "incremental nights switched off (incremental.enabled)"),
    (SETTINGS, SETTINGS, DAY - timedelta(days=1), "run date before the last night's"),
    (WEEKLY, WEEKLY, DAY + timedelta(days=6), ""),
    (WEEKLY, WEEKLY, DAY + timedelta(days=7), "scheduled full pass (every 7 days)"),
    (SETTINGS, SETTINGS.model_copy(update={"worklist_language": "en"}), DAY + timedelta(days=1),
     "code, reference data or settings changed"),
])
def test_when_a_night_is_a_full_pass(con, first, then, as_of, reason):
    _night(con, DAY, first)
    plan = changes.plan_features(con, as_of, then, boundary_day_counts())
    assert (plan.reason, plan.full) == (reason, bool(reason))


def test_family_partitions_keep_families_whole(con):
    con.execute("INSERT INTO relations VALUES ('G', 'X', 'parent', 'd1')")   # X: named only in relations
    assert changes.family_partitions(con, 2) == 4
    rows = con.execute("SELECT patient_id, family, part FROM _incr_family ORDER BY 1").fetchall()
    families = {pid: (family, part) for pid, family, part in rows}
    assert {families[p] for p in CHAIN} == {families["A"]} and families["G"] == families["X"]
    assert families["A"][0] != families["G"][0]
