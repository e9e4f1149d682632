"""Tiny inputs for the referral and worklist tests: rule_results rows, a DuckDB with the
curated tables, and a RunContext. Tests import it after putting ``tests/`` on sys.path."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl

from fh_screen.store import db
from fh_screen.config import Clinic, SelectionSettings, Settings
from fh_screen.context import RunContext

RULE_SCHEMA = {
    "patient_id": pl.Utf8, "age_years": pl.Int32, "sex": pl.Utf8, "practice_id": pl.Utf8,
    "is_child": pl.Boolean, "ldl_max_mmol": pl.Float64, "ldl_max_date": pl.Date, "ldl_max_age": pl.Float64,
    "ldl_max_treated": pl.Boolean, "ldl_untreated_estimate_mmol": pl.Float64, "ldl_source": pl.Utf8,
    "dlcn_points": pl.Int32, "dlcn_category": pl.Utf8, "dlcn_status": pl.Utf8, "simon_broome": pl.Utf8,
    "medped": pl.Utf8, "lab_flag": pl.Boolean, "criteria": pl.List(pl.Utf8), "reason_items": pl.Utf8,
    "reasons": pl.Utf8, "missing_items": pl.List(pl.Utf8), "missing_information": pl.Utf8,
    "secondary_cause": pl.Utf8, "route": pl.Utf8, "excluded_reason": pl.Utf8,
    "paediatric": pl.Utf8, "secondary_probable": pl.Boolean,
    "clinic_last_outcome": pl.Utf8, "clinic_last_outcome_date": pl.Date,
    "ldl_estimate_basis": pl.Utf8, "ldl_estimate_regimen": pl.Utf8, "ldl_correction_factor": pl.Float64,
}
SCORE_SCHEMA = {
    "patient_id": pl.Utf8, "probability": pl.Float64, "model_name": pl.Utf8,
    "model_version": pl.Utf8, "reasons": pl.Utf8, "reason_items": pl.Utf8,
}
AS_OF = date(2026, 11, 23)


def rule(patient_id: str, **over) -> dict:
    """A probable-FH adult on the clinic route; override any column."""
    row = {
        "patient_id": patient_id, "age_years": 45, "sex": "F", "practice_id": "P1", "is_child": False,
        "ldl_max_mmol": 7.2, "ldl_max_date": date(2025, 3, 2), "ldl_max_age": 44.0, "ldl_max_treated": False,
        "ldl_untreated_estimate_mmol": 7.2, "ldl_source": "measured", "dlcn_points": 7,
        "dlcn_category": "probable", "dlcn_status": "scored", "simon_broome": "possible", "medped": "not_met",
        "lab_flag": True, "criteria": ["dlcn.ldl_6_5_to_8_5"],
        "reason_items": json.dumps([{"code": "ldl_high", "params": {"value": 7.2}}]),
        "reasons": "LDL-C 7.2 mmol/L on 2025-03-02 at age 44, untreated",
        "missing_items": ["family_history_not_recorded", "physical_exam_not_recorded"],
        "missing_information": "family history not recorded; no physical examination recorded",
        "secondary_cause": None, "route": "refer_lipid_clinic", "excluded_reason": None,
    }
    row.update(over)
    row.setdefault("paediatric", "not_applicable")
    row.setdefault("secondary_probable", row["secondary_cause"] is not None)
    row.setdefault("clinic_last_outcome", None)
    row.setdefault("clinic_last_outcome_date", None)
    row.setdefault("ldl_estimate_basis", "measured_untreated")
    row.setdefault("ldl_estimate_regimen", None)
    row.setdefault("ldl_correction_factor", None)
    return row


def rules_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RULE_SCHEMA, orient="row") if rows else pl.DataFrame(schema=RULE_SCHEMA)


def patients_frame(rows: list[dict], **over_by_id) -> pl.DataFrame:
    """patients rows for the given rule rows; ``over_by_id={'p1': {'deceased_date': ...}}``."""
    out = []
    for r in rows:
        p = {
            "patient_id": r["patient_id"], "birth_date": date(1980, 1, 1), "sex": r["sex"],
            "practice_id": r["practice_id"], "postcode": "5000", "deceased_date": None,
            "moved_out_date": None, "delivery_id": "d1",
        }
        p.update(over_by_id.get(r["patient_id"], {}))
        out.append(p)
    return pl.DataFrame(out, schema={
        "patient_id": pl.Utf8, "birth_date": pl.Date, "sex": pl.Utf8, "practice_id": pl.Utf8, "postcode": pl.Utf8,
        "deceased_date": pl.Date, "moved_out_date": pl.Date, "delivery_id": pl.Utf8,
    }, orient="row")


def outcomes_frame(rows: list[tuple[str, date, str]] = ()) -> pl.DataFrame:
    return pl.DataFrame(
        [{"patient_id": p, "outcome_date": d, "outcome": o} for p, d, o in rows],
        schema={"patient_id": pl.Utf8, "outcome_date": pl.Date, "outcome": pl.Utf8},
        orient="row",
    )


def settings(clinics: list[Clinic] | None = None, lang: str = "da", **selection) -> Settings:
    clinics = clinics if clinics is not None else [
        Clinic(clinic_id="LK-NORD", name="Lipidklinik Nord", weekly_capacity=2, postcodes=["5"]),
        Clinic(clinic_id="LK-SYD", name="Lipidklinik Syd", weekly_capacity=2, postcodes=["7"], practices=["P9"]),
        Clinic(clinic_id="PAED", name="Børnelipidklinik", weekly_capacity=1, paediatric=True),
    ]
    return Settings(
        clinics=clinics, paediatric_clinic_id=next((c.clinic_id for c in clinics if c.paediatric), None),
        selection=SelectionSettings(**selection), worklist_language=lang,
    )


def build_db(
    path: Path,
    rules: list[dict],
    patients: pl.DataFrame | None = None,
    scores: pl.DataFrame | None = None,
    labs: list[dict] | None = None,
    meds: list[dict] | None = None,
    outcomes: pl.DataFrame | None = None,
    contacts: list[dict] | None = None,
) -> Path:
    """A DuckDB file with the curated schema and the given derived/input rows."""
    con = db.connect(path)
    try:
        _replace(con, "patients", patients if patients is not None else patients_frame(rules))
        db.replace_table(con, "rule_results", rules_frame(rules))
        if scores is not None:
            db.replace_table(con, "model_scores", scores)
        if labs:
            con.register("_l", pl.DataFrame(labs))
            con.execute("""INSERT INTO lab_results SELECT result_id, patient_id, sampled_at, analyte, 'measured', 'NPU',
                           value, 'mmol/L', NULL, CAST(value AS VARCHAR), 'mmol/L', status, NULL, 'd1' FROM _l""")
            con.unregister("_l")
        if meds:
            con.register("_m", pl.DataFrame(meds))
            con.execute("INSERT INTO medications SELECT patient_id, atc_code, dispensed_on, strength_mg, 'd1' FROM _m")
            con.unregister("_m")
        if outcomes is not None and outcomes.height:
            replace_outcomes(con, outcomes)
        if contacts:
            con.register("_c", pl.DataFrame(contacts))
            con.execute("INSERT INTO contacts SELECT patient_id, full_name, NULL, NULL, NULL, 'da', 'd1' FROM _c")
            con.unregister("_c")
    finally:
        con.close()
    return path


def replace_outcomes(con, outcomes: pl.DataFrame) -> None:
    con.execute("DELETE FROM clinic_outcomes")
    con.register("_o", outcomes)
    con.execute("INSERT INTO clinic_outcomes SELECT patient_id, outcome_date, outcome, NULL, 'd1' FROM _o")
    con.unregister("_o")


def _replace(con, table: str, frame: pl.DataFrame) -> None:
    con.execute(f"DELETE FROM {db.checked_table(table)}")
    con.register("_f", frame)
    con.execute(f"INSERT INTO {table} SELECT * FROM _f")
    con.unregister("_f")


def context(tmp: Path, db_path: Path, as_of: date = AS_OF, cfg: Settings | None = None, manifest=None) -> RunContext:
    work = tmp / f"work-{as_of.isoformat()}"
    work.mkdir(parents=True, exist_ok=True)
    return RunContext(
        settings=cfg or settings(), db_path=db_path, out_dir=tmp / "out", work_dir=work, as_of=as_of,
        manifest=manifest if manifest is not None else {"rules": {"dlcn": "dlcn_v1", "simon_broome": "sb_v1"}},
    )
