"""The features and rules steps on a temp DuckDB: as-of filtering in SQL, table contracts,
idempotency and the rule versions in the run manifest."""

from datetime import date
from pathlib import Path

import pytest

from fh_screen.store import db
from fh_screen.stages.rules import versions
from fh_screen.stages.rules.results import CONTRACT_COLUMNS
from fh_screen.app.run import STEPS, execute_step, prepare

AS_OF = date(2026, 11, 23)


@pytest.fixture()
def ctx(tmp_path: Path):
    path = tmp_path / "fh.duckdb"
    con = db.connect(path)
    con.execute("""INSERT INTO patients VALUES
        ('A', '1980-06-15', 'M', 'P1', '5000', NULL, NULL, 'd'),
        ('B', '1990-01-01', 'F', 'P2', '7100', NULL, NULL, 'd')""")
    labs = [("r1", "A", "2024-05-02 08:00", "ldl", 7.9, "final"), ("r2", "A", "2024-06-01 08:00", "ldl", 12.0, "cancelled"),
            ("r3", "A", "2026-11-24 09:00", "ldl", 13.0, "final"), ("r4", "A", "2024-05-10 08:00", "tsh", 14.0, "final"),
            ("r5", "B", "2023-01-01 08:00", "ldl", 3.1, "final")]
    for rid, pid, ts, analyte, value, status in labs:
        con.execute("INSERT INTO lab_results VALUES (?, ?, ?, ?, 'measured', 'X', ?, 'mmol/L', NULL, ?, 'mmol/L', ?,"
                    " NULL, 'd')", [rid, pid, ts, analyte, value, str(value), status])
    con.execute("""INSERT INTO diagnoses VALUES ('B', 'E780B', 'DE780B', '2026-12-01', 'd'),
                                                ('A', 'I219', 'DI21.9', '2020-01-01', 'd')""")
    con.execute("INSERT INTO family_history VALUES ('A', 'tendon_xanthoma', '2027-01-01', 'd')")
    con.execute("INSERT INTO clinic_outcomes VALUES ('B', '2027-01-01', 'fh_genetic', 'LDLR', 'd')")
    con.execute("INSERT INTO medications VALUES ('A', 'C10AA05', '2026-11-24', 40, 'd')")
    con.close()
    return prepare(None, path, tmp_path / "out", AS_OF)


def test_steps_are_registered_after_load():
    names = [s.name for s in STEPS]
    assert names[names.index("load") + 1: names.index("load") + 3] == ["features", "rules"]


def test_features_and_rules_steps(ctx):
    report = execute_step(ctx, "features")
    assert report["patients"] == 2 and report["with_ldl"] == 2
    execute_step(ctx, "rules")
    con = ctx.connect(read_only=True)
    feats = {r[0]: r for r in con.execute(
        "SELECT patient_id, ldl_max_mmol, n_ldl_results, fh_diagnosis, fhx_any_recorded, clinic_confirmed_fh,"
        " lipid_lowering_ever, chd_first_age, sec_tsh_max_miu_l FROM patient_features").fetchall()}
    cols = [r[0] for r in con.execute("DESCRIBE patient_features").fetchall()]
    result_cols = {r[0]: r[1] for r in con.execute("DESCRIBE rule_results").fetchall()}
    a = con.execute("SELECT dlcn_points, reasons, secondary_cause, route, criteria FROM rule_results"
                    " WHERE patient_id = 'A'").fetchone()
    con.close()
    # cancelled and after-as-of rows are invisible; so are B's later diagnosis and outcome
    assert feats["A"][1:] == (7.9, 1, False, False, False, False, 39, 14.0)
    assert feats["B"][3] is False and feats["B"][5] is False
    assert list(result_cols)[: len(CONTRACT_COLUMNS)] == list(CONTRACT_COLUMNS)
    assert result_cols["criteria"] == "VARCHAR[]" and result_cols["missing_items"] == "VARCHAR[]"
    assert result_cols["lab_flag"] == "BOOLEAN" and result_cols["dlcn_points"] == "INTEGER"
    assert a[0] == 7  # LDL 6.5-8.4 (5) + premature CHD at 39 (2)
    assert "LDL-C used for scoring: 7.9 mmol/L measured untreated on 2024-05-02 at age 43" in a[1]
    assert (a[2], a[3]) == ("TSH 14 mIU/L on 2024-05-10", "check_secondary_cause_first")
    assert ctx.manifest["rules"] == versions()
    assert ctx.manifest["rules"]["dlcn"]["version"] == "1.2.0"


def test_rerun_changes_nothing(ctx):
    runs = []
    for _ in range(2):
        execute_step(ctx, "features")
        execute_step(ctx, "rules")
        con = ctx.connect(read_only=True)
        runs.append([con.execute(f"SELECT * FROM {t} ORDER BY patient_id").fetchall()
                     for t in ("patient_features", "rule_results")])
        con.close()
    assert runs[0] == runs[1] and len(runs[1][1]) == 2
