"""The synthetic region: contract shape, determinism, dialects, ground truth, increments."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

import fh_screen.synth
from fh_screen.errors import UserError
from fh_screen.synth import generate

AS_OF = date(2026, 11, 23)
N = 3000
# Written from docs/contract.md §1, independently of the generator.
CONTRACT = {
    "patients": ["patient_id", "birth_date", "sex", "practice_id", "postcode", "deceased_date", "moved_out_date"],
    "lab_results": ["result_id", "patient_id", "sampled_at", "analyte", "value", "unit", "status", "ordering_practice_id"],
    "medications": ["patient_id", "atc_code", "dispensed_on", "strength_mg"],
    "diagnoses": ["patient_id", "icd10_code", "diagnosed_on"],
    "relations": ["patient_id", "relative_id", "relationship"],
    "family_history": ["patient_id", "item", "recorded_on"],
    "clinic_outcomes": ["patient_id", "outcome_date", "outcome", "gene"],
    "contacts": ["patient_id", "full_name", "address", "postcode", "city", "language"],
}
LDL_CODES = ["NPU01568", "DNK35308", "13457-7", "18262-6"]


def _read(folder: Path, table: str) -> pl.DataFrame:
    return pl.read_csv(folder / f"{table}.csv", infer_schema=False)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    out = tmp_path_factory.mktemp("region")
    summary = generate(out, N, 7, AS_OF, "csv", "plain", nights=3)
    return out, summary


@pytest.fixture(scope="module")
def full(region):
    out, _ = region
    return out / "extracts" / AS_OF.isoformat()


@pytest.fixture(scope="module")
def truth(region):
    out, _ = region
    return pl.read_parquet(out / "ground_truth" / "truth.parquet")


def test_same_seed_gives_identical_files_and_another_seed_differs(region, tmp_path):
    out, _ = region
    again = generate(tmp_path / "again", N, 7, AS_OF, "csv", "plain", nights=3)
    assert _hashes(out) == _hashes(Path(again["summary_file"]).parent)
    other = generate(tmp_path / "other", N, 8, AS_OF, "csv", "plain", nights=1)
    first = Path(other["extract_dirs"][0]) / "lab_results.csv"
    assert hashlib.sha256(first.read_bytes()).digest() != hashlib.sha256((out / "extracts" / AS_OF.isoformat() / "lab_results.csv").read_bytes()).digest()


def test_every_table_has_exactly_the_contract_columns(full):
    assert sorted(p.stem for p in full.iterdir()) == sorted(CONTRACT)
    for table, columns in CONTRACT.items():
        assert _read(full, table).columns == columns, table


def test_ground_truth_is_outside_the_extracts(region):
    out, summary = region
    truth_dir = Path(summary["ground_truth"])
    assert (truth_dir / "truth.parquet").is_file() and (truth_dir / "injected_faults.csv").is_file()
    assert (out / "extracts") not in truth_dir.parents
    names = {p.name for p in (out / "extracts").rglob("*") if p.is_file()}
    assert names <= {f"{t}.csv" for t in CONTRACT}


def test_patients_ids_practices_postcodes_and_children(full):
    patients = _read(full, "patients")
    assert patients.height == N
    assert patients["patient_id"].n_unique() == N
    assert patients["patient_id"].str.contains(r"^P\d{7}$").all()
    practice = patients["practice_id"].drop_nulls()
    assert practice.str.contains(r"^\d{6}$").all()
    assert 0 < patients["practice_id"].null_count() < 0.05 * N
    assert patients["postcode"].str.contains(r"^[5-9]\d{3}$").all()
    birth = patients["birth_date"].str.to_date()
    assert (birth > date(2009, 1, 1)).sum() > 0.05 * N  # children 0-17 for cascade testing
    assert patients["deceased_date"].drop_nulls().len() > 0
    assert patients["moved_out_date"].drop_nulls().len() > 0


def test_lab_results_mix_codes_units_methods_censoring_and_status(full):
    labs = _read(full, "lab_results")
    lipid = labs.filter(pl.col("analyte").is_in(["NPU01566", "2093-3", "NPU01567", "2085-9", "NPU04094", "2571-8", *LDL_CODES]))
    mgdl = (lipid["unit"] == "mg/dL").mean()
    assert 0.06 < mgdl < 0.14
    loinc = labs["analyte"].str.contains(r"^\d+-\d$").mean()
    assert 0.24 < loinc < 0.36
    codes = set(labs["analyte"])
    assert {"NPU01568", "DNK35308", "NPU03577", "NPU19673", "NPU19661", "NPU27300", "NPU19657"} <= codes
    assert labs["value"].str.starts_with("<").sum() > 0
    statuses = set(labs["status"].drop_nulls())
    assert statuses == {"final", "corrected", "cancelled"}
    assert labs["status"].null_count() > 0
    # Some profiles have TC/HDL/TG but no LDL.
    per_sample = labs.filter(pl.col("analyte").is_in(["NPU01566", "2093-3"])).select("patient_id", "sampled_at")
    ldl = labs.filter(pl.col("analyte").is_in(LDL_CODES)).select("patient_id", "sampled_at")
    assert per_sample.join(ldl, on=["patient_id", "sampled_at"], how="anti").height > 0


def test_calculated_ldl_is_friedewald_of_the_reported_values(full):
    labs = _read(full, "lab_results").filter(pl.col("unit") == "mmol/L", pl.col("status").fill_null("final") != "cancelled")
    wide = (labs.filter(pl.col("analyte").is_in(["NPU01566", "NPU01567", "NPU04094", "DNK35308"]))
            .filter(~pl.col("value").str.contains(r"[<>a-z]"))
            .unique(["patient_id", "sampled_at", "analyte"])
            .pivot(on="analyte", index=["patient_id", "sampled_at"], values="value").drop_nulls())
    tc, hdl, tg, ldl = (wide[c].cast(pl.Float64) for c in ("NPU01566", "NPU01567", "NPU04094", "DNK35308"))
    assert wide.height > 100
    assert ((tc - hdl - tg / 2.2 - ldl).abs() <= 0.051).mean() > 0.99


def test_statin_effect_shows_in_later_ldl(full, truth):
    labs = _read(full, "lab_results").filter(pl.col("analyte").is_in(LDL_CODES), pl.col("status").fill_null("final") != "cancelled",
                                              pl.col("value").str.contains(r"^\d+(\.\d+)?$"))
    ldl = labs.with_columns(
        day=pl.col("sampled_at").str.slice(0, 10).str.to_date(),
        mmol=pl.when(pl.col("unit") == "mg/dL").then(pl.col("value").cast(pl.Float64) / 38.67).otherwise(pl.col("value").cast(pl.Float64)),
    )
    treated = truth.filter(pl.col("statin") & ~pl.col("statin_nonresponder")).select("patient_id", "statin_start")
    per = (ldl.join(treated, on="patient_id").with_columns(after=pl.col("day") >= pl.col("statin_start"))
           .group_by("patient_id", "after").agg(pl.col("mmol").mean())
           .pivot(on="after", index="patient_id", values="mmol").drop_nulls())
    assert per.height >= 20
    assert per["true"].mean() < 0.8 * per["false"].mean()


def test_fh_carriers_have_high_ldl_and_some_are_diagnosed(full, truth):
    region = truth.filter(pl.col("in_region"))
    carriers = region.filter(pl.col("fh_carrier"))
    assert carriers.height > 0
    assert carriers["ldl_untreated_age40"].mean() > region.filter(~pl.col("fh_carrier"))["ldl_untreated_age40"].mean() + 1.5
    assert set(carriers["gene"]) <= {"LDLR", "APOB", "PCSK9"}
    dx = _read(full, "diagnoses")
    assert {"DE780B", "E78.0"} & set(dx["icd10_code"])
    assert {"I21.9", "DI219"} <= set(dx["icd10_code"])


def test_relations_are_partial_bidirectional_and_reach_outside_the_region(full):
    rel = _read(full, "relations")
    patients = set(_read(full, "patients")["patient_id"])
    assert set(rel["relationship"]) == {"parent", "child", "sibling"}
    assert (~rel["relative_id"].is_in(list(patients))).sum() > 0
    inside = rel.filter(pl.col("relative_id").is_in(list(patients)))
    flipped = inside.select(patient_id="relative_id", relative_id="patient_id",
                            relationship=pl.col("relationship").replace({"parent": "child", "child": "parent"}))
    assert flipped.join(inside, on=["patient_id", "relative_id", "relationship"], how="anti").height == 0


def test_contacts_have_danish_and_tricky_names(full):
    contacts = _read(full, "contacts")
    names = " ".join(contacts["full_name"])
    assert all(ch in names for ch in "æøå")
    assert "'" in names and '"' in names
    assert set(contacts["language"]) == {"da", "en"}


def test_clinic_outcomes_are_few_and_follow_true_status(full, truth):
    outcomes = _read(full, "clinic_outcomes")
    assert 0 < outcomes.height < 0.05 * N
    assert set(outcomes["outcome"]) <= {"fh_genetic", "fh_clinical", "not_fh", "did_not_attend", "declined", "pending"}
    genetic = outcomes.filter(pl.col("outcome") == "fh_genetic").join(truth, on="patient_id")
    assert genetic["fh_carrier"].all()
    assert (genetic["gene"] == genetic["gene_right"]).all()
    assert outcomes.filter(pl.col("outcome") == "not_fh").join(truth, on="patient_id")["fh_carrier"].sum() == 0


def test_family_history_is_recorded_for_a_minority(full, truth):
    fh = _read(full, "family_history")
    assert 0 < fh.height
    true_count = truth.filter(pl.col("in_region"))["true_premature_chd_first_degree"].sum()
    recorded = (fh["item"] == "premature_chd_first_degree").sum()
    assert 0 < recorded < 0.6 * true_count


def test_injected_faults_are_listed_and_present(region, full):
    out, _ = region
    faults = pl.read_csv(out / "ground_truth" / "injected_faults.csv")
    labs = _read(full, "lab_results")
    assert set(faults["fault"]) == {"unparseable_value", "unknown_unit", "unknown_patient", "future_date", "duplicate_result_id"}
    dup = faults.filter(pl.col("fault") == "duplicate_result_id")["result_id"]
    assert (labs.filter(pl.col("result_id").is_in(dup.implode()))["result_id"].value_counts()["count"] == 2).all()
    assert labs.filter(pl.col("value") == "abc").height == (faults["fault"] == "unparseable_value").sum()
    unknown = faults.filter(pl.col("fault") == "unknown_patient")["patient_id"]
    assert not unknown.is_in(_read(full, "patients")["patient_id"].implode()).any()
    assert labs.filter(pl.col("sampled_at").str.slice(0, 10) > AS_OF.isoformat()).height == (faults["fault"] == "future_date").sum()


def test_later_nights_are_small_increments_with_later_dates(region, full):
    out, summary = region
    dirs = [Path(d) for d in summary["extract_dirs"]]
    assert [d.name for d in dirs] == ["2026-11-23", "2026-11-24", "2026-11-25"]
    first = _read(full, "lab_results")
    seen_ids = set(first["result_id"])
    for night in dirs[1:]:
        labs = _read(night, "lab_results")
        assert 0 < labs.height < 0.05 * first.height
        new = labs.filter(~pl.col("result_id").is_in(list(seen_ids)))
        assert (new["sampled_at"].str.slice(0, 10) >= AS_OF.isoformat()).all()
        again = labs.filter(pl.col("result_id").is_in(list(seen_ids)))
        assert set(again["status"]) == {"corrected", "cancelled"}
        assert _read(night, "patients").height == N
        seen_ids |= set(labs["result_id"])
    changes = pl.read_csv(out / "ground_truth" / "nightly_changes.csv")
    assert "new_result_relative_of_confirmed_case" in set(changes["change"])


def test_danish_dialect_round_trips_to_the_plain_values(full, tmp_path):
    danish = Path(generate(tmp_path / "dk", N, 7, AS_OF, "csv", "danish")["extract_dirs"][0])
    raw = (danish / "lab_results.csv").read_bytes()
    assert raw.splitlines()[0].count(b";") == 7
    text = (danish / "contacts.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        text.decode("utf-8")
    for table, numeric in (("lab_results", "value"), ("medications", "strength_mg"), ("contacts", None)):
        dk = pl.read_csv(io.StringIO((danish / f"{table}.csv").read_bytes().decode("cp1252")), separator=";", infer_schema=False)
        plain = _read(full, table)
        if numeric:
            assert dk[numeric].str.contains(",").any()
            dk = dk.with_columns(pl.col(numeric).str.replace(",", ".", literal=True))
        assert dk.equals(plain), table


def test_parquet_has_proper_types_and_is_reproducible(tmp_path):
    folder = Path(generate(tmp_path / "pq", 1500, 3, AS_OF, "parquet", "plain")["extract_dirs"][0])
    again = Path(generate(tmp_path / "pq2", 1500, 3, AS_OF, "parquet", "plain")["extract_dirs"][0])
    assert _hashes(folder) == _hashes(again)
    assert pl.read_parquet_schema(folder / "patients.parquet")["birth_date"] == pl.Date
    labs = pl.read_parquet_schema(folder / "lab_results.parquet")
    assert labs["sampled_at"] == pl.Datetime("us") and labs["value"] == pl.String
    assert pl.read_parquet_schema(folder / "medications.parquet")["strength_mg"] == pl.Float64


def test_tiny_region_gets_no_forced_faults(tmp_path):
    summary = generate(tmp_path / "tiny", 3, 2, AS_OF, "csv", "plain")
    assert pl.read_csv(Path(summary["ground_truth"]) / "injected_faults.csv").height == 0
    assert _read(Path(summary["extract_dirs"][0]), "patients").height == 3


def test_params_file_overrides_and_rejects_unknown_keys(tmp_path):
    clean = tmp_path / "clean.yaml"
    clean.write_text("faults:\n  dirty_fraction: 0\nmeasurement:\n  mgdl_share_of_lipids: {value: 0.0}\n")
    summary = generate(tmp_path / "clean", 1500, 3, AS_OF, "csv", "plain", params_file=clean)
    labs = _read(Path(summary["extract_dirs"][0]), "lab_results")
    assert labs["result_id"].is_unique().all()
    assert (labs["unit"] != "mg/dL").all()
    assert pl.read_csv(Path(summary["ground_truth"]) / "injected_faults.csv").height == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("genotype:\n  founder_prevalence: 0.01\n")
    with pytest.raises(UserError, match="genotype.founder_prevalence"):
        generate(tmp_path / "bad", 100, 3, AS_OF, params_file=bad)


def test_packaged_shifted_region_changes_the_figures(tmp_path):
    shifted = Path(fh_screen.synth.__file__).parent / "shifted_region.yaml"
    summary = generate(tmp_path / "shifted", 1500, 3, AS_OF, "csv", "plain", params_file=shifted)
    assert summary["figures"]["fh_prevalence_founders"]["target"] == 0.0046
    assert 0.5 < summary["figures"]["share_results_loinc"]["value"] < 0.7


def test_summary_reports_figures_with_targets_and_sources(region):
    out, _ = region
    summary = json.loads((out / "synth_summary.json").read_text())
    for name in ("fh_prevalence_region", "mean_untreated_ldl_by_age_band", "share_ever_tested_10y",
                 "share_on_statin_now", "share_lipid_results_mg_dl"):
        figure = summary["figures"][name]
        assert figure["source"] and "target" in figure and figure["value"] is not None
    assert summary["rows_full_delivery"]["patients"] == N
