"""Metric definitions on a hand-made region where every number is known in advance."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from fh_screen.store import db
from fh_screen.config import load_settings
from fh_screen.stages.metrics import compute, derive, federated, pilot
from fh_screen.outputs import metrics_schema as S

AS_OF = date(2026, 11, 23)

PATIENTS = [  # id, birth, sex, practice, deceased, moved_out
    ("P1", "1976-05-01", "F", "X", None, None),
    ("P2", "1996-05-01", "M", "X", None, None),
    ("P3", "1956-05-01", "F", "Y", None, None),
    ("P4", "2016-05-01", "M", None, None, None),
    ("P5", "1950-05-01", "M", "Y", "2026-01-01", None),
    ("P6", "1981-05-01", "F", "Y", None, None),
    ("P7", "1985-05-01", "M", "Y", None, "2026-06-01"),
]
LABS = [  # id, patient, sampled_at, analyte, value, status
    ("L1", "P1", "2026-01-10", "ldl", 6.0, "final"),
    ("L2", "P1", "2026-06-01", "ldl", 4.0, "final"),
    ("L3", "P2", "2026-02-01", "ldl", 5.5, "final"),
    ("L4", "P3", "2025-05-01", "tc", 8.0, "final"),
    ("L5", "P4", "2026-05-01", "ldl", 3.0, "cancelled"),
    ("L6", "P6", "2024-05-01", "hdl", 1.2, "final"),
    ("L7", "P7", "2025-12-01", "ldl", 7.0, "final"),
    ("L8", "P2", "2026-12-01", "ldl", 2.0, "final"),          # after the run date: ignored
]
MEDS = [("P1", "C10AA05", "2025-12-01", 20.0), ("P1", "C10AA05", "2026-04-10", 40.0),
        ("P2", "C10AA07", "2026-05-10", 10.0)]
OUTCOMES = [("P1", "2026-03-01", "pending"), ("P1", "2026-04-01", "fh_genetic"),
            ("P2", "2026-05-01", "not_fh"), ("P7", "2026-02-01", "did_not_attend"),
            ("P2", "2026-12-01", "fh_clinical")]                # after the run date: ignored
EVENTS = [  # as_of, patient, event, clinic, probability, dlcn points
    ("2026-02-01", "P1", "queued", None, None, None),
    ("2026-02-15", "P1", "listed", "C1", 0.7, 7),
    ("2026-03-01", "P2", "listed", "C2", 0.1, 3),
    ("2026-01-05", "P7", "listed", "C1", None, 8),
]
RULES = [  # patient, age, dlcn, simon broome, medped, lab flag, paediatric, excluded
    ("P1", 50, 7, "possible", "met", True, "not_applicable", None),
    ("P2", 30, 3, "not_met", "not_met", False, "not_applicable", None),
    ("P3", 70, 2, "not_met", "not_met", True, "not_applicable", None),
    ("P6", 45, 9, "definite", "met", True, "not_applicable", "already_diagnosed"),
]
CASCADE = [  # index, relative, letter sent, closed on, result
    ("P1", "R1", "2026-05-01", "2026-06-01", "likely"),     # tested after the letter, positive
    ("P1", "R2", "2026-05-01", None, "unlikely"),           # result from before the letter: loop open
    ("P1", "R3", None, None, None),
    ("P1", None, None, None, None),                         # index-only row: no relative
]


@pytest.fixture
def region_db(tmp_path):
    path = tmp_path / "hand.duckdb"
    con = db.connect(path)
    for p in PATIENTS:
        con.execute("INSERT INTO patients VALUES (?, ?, ?, ?, '5000', ?, ?, 'd')", list(p))
    for r in LABS:
        con.execute("INSERT INTO lab_results VALUES (?, ?, ?, ?, 'measured', 'x', ?, 'mmol/L', NULL, '', '', ?, NULL, 'd')",
                    list(r))
    for m in MEDS:
        con.execute("INSERT INTO medications VALUES (?, ?, ?, ?, 'd')", list(m))
    for o in OUTCOMES:
        con.execute("INSERT INTO clinic_outcomes VALUES (?, ?, ?, NULL, 'd')", list(o))
    con.execute("CREATE TABLE referral_events (as_of DATE, patient_id VARCHAR, event VARCHAR, practice_id VARCHAR, "
                "clinic_id VARCHAR, rank INT, probability DOUBLE, dlcn_points INT, dlcn_category VARCHAR, route VARCHAR)")
    for e in EVENTS:
        con.execute("INSERT INTO referral_events VALUES (?, ?, ?, NULL, ?, 1, ?, ?, NULL, 'refer_lipid_clinic')", list(e))
    con.execute("CREATE TABLE rule_results (patient_id VARCHAR, age_years INT, dlcn_points INT, simon_broome VARCHAR, "
                "medped VARCHAR, lab_flag BOOLEAN, paediatric VARCHAR, excluded_reason VARCHAR)")
    for r in RULES:
        con.execute("INSERT INTO rule_results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(r))
    con.execute("CREATE TABLE cascade_ledger (index_patient_id VARCHAR, relative_id VARCHAR, relationship VARCHAR, "
                "degree INT, status VARCHAR, letter_sent_on DATE, reminder_due DATE, closed_on DATE, result VARCHAR, "
                "updated_on DATE)")
    for c in CASCADE:
        con.execute("INSERT INTO cascade_ledger VALUES (?, ?, 'sibling', 1, 'x', ?, NULL, ?, ?, NULL)", list(c))
    con.close()
    return path


@pytest.fixture
def table(region_db):
    settings = load_settings()
    con = db.connect(region_db, read_only=True)
    try:
        return compute.compute_aggregates(con, AS_OF, "hand", settings.selection, settings.metrics)
    finally:
        con.close()


def value(table: pl.DataFrame, metric: str, dimension: str = "all", level: str = "all") -> float:
    hit = table.filter((pl.col("dimension") == dimension) & (pl.col("level") == level) & (pl.col("metric") == metric))
    return hit["value"].sum()


@pytest.mark.parametrize("metric, expected", [
    ("population", 6),          # P5 died before the run date; P7 moved out but was referred
    ("tested", 5),              # P4's only result is cancelled
    ("flagged", 4),             # P1 route, P3 lab flag, P2 and P7 referred; P6 excluded
    ("referred", 3),
    ("attended", 2),
    ("confirmed", 1),
    ("outcome_fh_genetic", 1),  # latest outcome wins over the earlier 'pending'
    ("outcome_not_fh", 1),      # P2's fh_clinical is after the run date
    ("outcome_did_not_attend", 1),
    ("treatment_started", 1),   # P2: nothing in the year before
    ("treatment_intensified", 1),  # P1: 20 mg -> 40 mg
    ("treatment_changed", 2),
    ("ldl_change_n", 1),
    ("already_diagnosed", 1),
    ("cascade_identified", 3),
    ("cascade_contacted", 2),
    ("cascade_tested", 1),      # only a result after the letter closes the loop
    ("cascade_positive", 1),
    ("rule_pos_dlcn", 1),       # DLCN at listing: P1 7 >= 6, P2 3 < 6
    ("rule_pos_confirmed_dlcn", 1),
    ("rule_pos_model", 1),      # P1 0.7 >= 0.20, P2 0.1 < 0.20
    ("rule_pos_simon_broome", 1),
    ("calib_n", 2),
    ("calib_n_p3", 1),          # 0.7 falls in [0.6, 0.8)
    ("calib_n_p0", 1),
])
def test_definitions(table, metric, expected):
    assert value(table, metric) == expected


def test_ldl_change_and_durations(table):
    assert value(table, "ldl_change_sum_mmol") == pytest.approx(-2.0)
    assert value(table, "hist_days_flag_to_listed_w002") == 1      # P1: 14 days
    assert value(table, "hist_days_flag_to_listed_w000") == 2      # P2, P7: listed on first sight
    assert value(table, "hist_days_listed_to_visit_w006") == 1     # P1: 45 days
    assert value(table, "hist_days_listed_to_visit_w008") == 1     # P2: 61 days


def test_dimensions_partition_everyone(table):
    for dim in ("sex", "practice", "age_band", "month", "clinic"):
        levels = table.filter((pl.col("dimension") == dim) & (pl.col("metric") == "population"))
        assert levels["value"].sum() == 6
    assert value(table, "population", "practice", "no_practice") == 1
    assert value(table, "referred", "month", "2026-02") == 1
    assert value(table, "referred", "clinic", "C1") == 2
    assert value(table, "population", "age_band", "0-17") == 1


def test_cost_and_expected_cases_arithmetic(table):
    # GP review 400 x 3 referred; lab 60 x (3 referred + 1 tested relative);
    # clinic visit 2500 and genetic test 4000 x (2 attended + 1 tested relative); letter 25 x 2.
    expected_cost = 400 * 3 + 60 * 4 + 2500 * 3 + 4000 * 3 + 25 * 2
    assert expected_cost == 20990
    assert value(table, "cost_dkk") == pytest.approx(expected_cost)
    assert value(table, "expected_cases") == pytest.approx(6 / 250)


def test_cost_per_case_derived_when_cells_are_published():
    """Large numbers, nothing withheld: cost per new case = cost / (confirmed + positive relatives)."""
    rows = {"population": 100_000, "tested": 60_000, "flagged": 900, "referred": 500, "attended": 300,
            "confirmed": 80, "outcome_fh_genetic": 50, "outcome_fh_clinical": 30, "outcome_not_fh": 220,
            "outcome_did_not_attend": 100, "outcome_declined": 50, "outcome_pending": 25, "outcome_none": 25,
            "treatment_changed": 200, "treatment_started": 120, "treatment_intensified": 80, "ldl_change_n": 150,
            "already_diagnosed": 150, "cascade_identified": 200, "cascade_contacted": 150, "cascade_tested": 100,
            "cascade_positive": 45, "cost_dkk": 3_000_000.0, "expected_cases": 400.0}
    for r in ("dlcn", "simon_broome", "medped", "lab_flag", "model"):
        rows[f"rule_pos_{r}"], rows[f"rule_pos_confirmed_{r}"] = 150, 60
    frame = pl.DataFrame({"dimension": "all", "level": "all", "metric": list(rows),
                          "value": [float(v) for v in rows.values()]})
    rows["new_cases"] = rows["confirmed"] + rows["cascade_positive"]
    frame = pl.DataFrame({"dimension": "all", "level": "all", "metric": list(rows),
                          "value": [float(v) for v in rows.values()]})
    tables = derive.evaluator_tables(frame, 4)
    derived = derive.lookup(tables["derived"])
    assert derive.lookup(tables["counts"])["new_cases"] == {"value": 125, "status": "ok"}
    assert derived["cost_per_new_case_dkk"]["value"] == pytest.approx(3_000_000 / 125)
    assert derived["cost_per_confirmed_case_dkk"]["value"] == pytest.approx(3_000_000 / 80)
    assert derived["share_of_expected_found"]["value"] == pytest.approx((80 + 150) / 400)
    assert derived["ppv_dlcn"]["value"] == pytest.approx(0.4)


def test_small_region_withholds_cost_per_case(table):
    region = {"region_id": "hand", "as_of": AS_OF.isoformat(), "expected_prevalence": 1 / 250,
              "small_cell_max": 4, "unit_costs_dkk": {}}
    document = pilot.pilot_document(federated.aggregates_document(table, region))
    assert document["headline"]["cost_per_new_case_dkk"] == {"value": None, "status": "suppressed"}
    assert document["headline"]["cost_per_confirmed_case_dkk"] == {"value": None, "status": "suppressed"}
    assert document["headline"]["referred"] == {"value": None, "status": "suppressed"}
    assert document["headline"]["population"] == {"value": 6, "status": "ok"}


@pytest.mark.parametrize("bins, expected", [
    ({0: 1}, 3.5),                 # one person in week 0: the middle of the week
    ({0: 2, 2: 2}, 7.0),           # half in week 0 -> the median is the end of week 0
    ({1: 4}, 10.5),
    ({}, None),
])
def test_median_from_weekly_bins(bins, expected):
    assert derive._median_from_hist(bins) == expected


def test_missing_derived_tables_give_zero_counts(tmp_path):
    path = tmp_path / "bare.duckdb"
    con = db.connect(path)
    con.execute("INSERT INTO patients VALUES ('Q1', '1970-01-01', 'F', NULL, NULL, NULL, NULL, 'd')")
    settings = load_settings()
    table = compute.compute_aggregates(con, AS_OF, "bare", settings.selection, settings.metrics)
    con.close()
    assert value(table, "population") == 1
    assert value(table, "referred") == 0


def _flagged(path, **selection) -> float:
    settings = load_settings()
    con = db.connect(path, read_only=True)
    try:
        table = compute.compute_aggregates(con, AS_OF, "hand", settings.selection.model_copy(update=selection),
                                           settings.metrics)
    finally:
        con.close()
    return value(table, "flagged")


def test_flagged_counts_the_lab_flag_only_when_the_region_selects_on_it(region_db):
    """The metrics select with the worklists' rule: P3 is flagged by the lab flag alone, so
    with ``use_lab_flag: false`` only P1 (DLCN 7) and the referred P2 and P7 remain."""
    assert _flagged(region_db, use_lab_flag=True) == 4
    assert _flagged(region_db, use_lab_flag=False) == 3


def test_the_model_alone_never_flags(region_db):
    """P3 without the lab flag and DLCN 2 meets no clinical criterion: a probability of 0.9
    does not flag them (decision no_model_only_referral); with DLCN 3 it does."""
    con = db.connect(region_db)
    con.execute("UPDATE rule_results SET lab_flag = FALSE WHERE patient_id = 'P3'")
    con.execute("CREATE TABLE model_scores (patient_id VARCHAR, probability DOUBLE, model_name VARCHAR, "
                "model_version VARCHAR)")
    con.execute("INSERT INTO model_scores VALUES ('P3', 0.9, 'fh_baseline', '1')")
    con.close()
    assert _flagged(region_db) == 3
    con = db.connect(region_db)
    con.execute("UPDATE rule_results SET dlcn_points = 3 WHERE patient_id = 'P3'")
    con.close()
    assert _flagged(region_db) == 4


@pytest.mark.parametrize("people", [1, 2, 3, 6])
def test_ranges_of_people_add_up_to_the_whole_region(region_db, table, people):
    """The metrics hold the person rows of one range of patients at a time: however the
    region is cut, the federated table is the one computed over everyone at once."""
    settings = load_settings()
    con = db.connect(region_db, read_only=True)
    try:
        assert len(compute.patient_ranges(con, people)) == -(-len(PATIENTS) // people)
        ranged = compute.compute_aggregates(con, AS_OF, "hand", settings.selection, settings.metrics, people)
    finally:
        con.close()
    counts = pl.col("metric").is_in(list(S.COUNT_METRICS)) | pl.col("metric").str.starts_with("hist_")
    assert ranged.filter(counts).equals(table.filter(counts))
    joined = table.join(ranged, on=["dimension", "level", "metric"], how="full", coalesce=True)
    assert joined.height == table.height == ranged.height
    assert joined.select((pl.col("value") - pl.col("value_right")).abs().max()).item() < 1e-9


def test_only_the_rule_rows_that_count_are_read_and_the_table_is_the_same(region_db, table, monkeypatch):
    """With ``clinical_criterion`` stored, the metrics read the rule rows and scores of the
    excluded, the possibly triggered and the referred only. P4 (a child meeting nothing,
    never referred, scored 0.9) is left out, and the federated table is exactly the one
    computed from every row; P2 (DLCN 3, no criterion) is read because P2 was referred."""
    con = db.connect(region_db)
    con.execute("ALTER TABLE rule_results ADD COLUMN clinical_criterion BOOLEAN")
    con.execute("UPDATE rule_results SET clinical_criterion = patient_id IN ('P1', 'P3', 'P6')")
    con.execute("INSERT INTO rule_results VALUES ('P4', 10, 0, 'not_met', 'not_met', FALSE, 'not_met', NULL, FALSE)")
    con.execute("CREATE TABLE model_scores (patient_id VARCHAR, probability DOUBLE, model_version VARCHAR)")
    con.execute("INSERT INTO model_scores VALUES ('P1', 0.7, '1'), ('P2', 0.1, '1'), ('P3', 0.3, '1'), ('P4', 0.9, '1')")
    con.close()
    settings = load_settings()
    con = db.connect(region_db, read_only=True)
    try:
        con.execute(db.sql("metrics_tested"), {"as_of": AS_OF})
        which = compute.rule_rows_that_count(con, settings.selection)
        read = compute.read_range(con, AS_OF, (None, None), which)
        narrowed = compute.compute_aggregates(con, AS_OF, "hand", settings.selection, settings.metrics)
        monkeypatch.setattr(compute, "rule_rows_that_count", lambda con, selection: "")
        every_row = compute.compute_aggregates(con, AS_OF, "hand", settings.selection, settings.metrics)
    finally:
        con.close()
    assert read["rules"]["patient_id"].to_list() == ["P1", "P2", "P3", "P6"]
    assert read["model"]["patient_id"].to_list() == ["P1", "P2", "P3"]
    assert narrowed.equals(every_row)
    assert value(narrowed, "flagged") == value(table, "flagged") == 4
