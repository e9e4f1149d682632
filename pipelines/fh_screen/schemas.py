"""Every table at a stage boundary, declared once: the delivered tables and the store.

``TABLES``, the input side of the data contract (docs/contract.md §1): each delivered table
lists its columns with a *kind* that says how the delivered text is parsed, whether the
column must be in the file, and whether a row needs a value in it. The natural key says
which rows replace each other when a later delivery repeats them (and which rows are
duplicates within one delivery).

``STORE``: every table a step writes into the store (``app.run.STEPS``), with its columns
and DuckDB types in table order: the curated tables, the run's records and the derived
tables (patient_features, rule_results, model_scores, the referral and cascade ledgers,
selection_runs). The DDL in ``store/sql`` and the Great Expectations column sets are tested
against it (tests/unit/test_schemas.py, tests/unit/test_validation_suites.py), and so is the
store a real two-night run leaves (tests/integration/test_data_flow.py).

Staging tables ``stg_<table>`` hold the curated columns (``CURATED_COLUMNS``: the store's
columns without ``delivery_id``), plus ``_row`` (the 1-based data row in the delivered file).
"""

from __future__ import annotations

from dataclasses import dataclass

# Column kinds: how the delivered text is read.
ID = "id"              # identifier: trimmed, kept as text (leading zeros matter)
TEXT = "text"          # free text: trimmed
LOWER = "lower"        # a value set written in lower case (status, relationship, outcome ...)
UPPER = "upper"        # a code written in upper case (ATC, sex)
DATE = "date"          # ISO YYYY-MM-DD
DATETIME = "datetime"  # ISO date or date-time
NUMBER = "number"      # decimal number, decimal mark per the file's dialect


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required_column: bool = False   # the file must have this column (else the delivery is refused)
    required_value: bool = False    # a row without a value is quarantined


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]            # natural key (last delivery wins; unique within a delivery)
    required: bool = False          # the delivery must contain this table
    # The whole table arrives in every delivery (a register extract, not the day's events):
    # only its rows that differ from the store are staged, validated and loaded, so a night
    # costs what changed. A row the store already holds as delivered changes nothing.
    whole: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _c(name: str, kind: str, need: str = "") -> Column:
    """``need``: '' optional, 'v' value required, 'cv' column and value required, 'c' column only."""
    return Column(name, kind, required_column="c" in need, required_value="v" in need)


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "patients",
            (
                _c("patient_id", ID, "cv"),
                _c("birth_date", DATE, "cv"),
                _c("sex", UPPER, "c"),          # empty -> 'U'
                _c("practice_id", ID),
                _c("postcode", ID),
                _c("deceased_date", DATE),
                _c("moved_out_date", DATE),
            ),
            key=("patient_id",),
            required=True,
            whole=True,
        ),
        TableSpec(
            "lab_results",
            (
                _c("result_id", ID, "cv"),
                _c("patient_id", ID, "cv"),
                _c("sampled_at", DATETIME, "cv"),
                _c("analyte", ID, "cv"),
                _c("value", NUMBER, "cv"),      # a cancellation may come without a value
                _c("unit", TEXT, "cv"),
                _c("status", LOWER),            # empty -> 'final'
                _c("ordering_practice_id", ID),
            ),
            key=("result_id",),
            required=True,
        ),
        TableSpec(
            "medications",
            (
                _c("patient_id", ID, "cv"),
                _c("atc_code", UPPER, "cv"),
                _c("dispensed_on", DATE, "cv"),
                _c("strength_mg", NUMBER),
            ),
            key=("patient_id", "atc_code", "dispensed_on", "strength_mg"),
        ),
        TableSpec(
            "diagnoses",
            (
                _c("patient_id", ID, "cv"),
                _c("icd10_code", UPPER, "cv"),
                _c("diagnosed_on", DATE, "cv"),
            ),
            key=("patient_id", "icd10_code", "diagnosed_on"),
        ),
        TableSpec(
            "relations",
            (
                _c("patient_id", ID, "cv"),
                _c("relative_id", ID, "cv"),
                _c("relationship", LOWER, "cv"),
            ),
            key=("patient_id", "relative_id", "relationship"),
        ),
        TableSpec(
            "family_history",
            (
                _c("patient_id", ID, "cv"),
                _c("item", LOWER, "cv"),
                _c("recorded_on", DATE, "cv"),
            ),
            key=("patient_id", "item", "recorded_on"),
        ),
        TableSpec(
            "clinic_outcomes",
            (
                _c("patient_id", ID, "cv"),
                _c("outcome_date", DATE, "cv"),
                _c("outcome", LOWER, "cv"),
                _c("gene", UPPER),
            ),
            key=("patient_id", "outcome_date", "outcome"),
        ),
        TableSpec(
            "contacts",
            (
                _c("patient_id", ID, "cv"),
                _c("full_name", TEXT),
                _c("address", TEXT),
                _c("postcode", ID),
                _c("city", TEXT),
                _c("language", LOWER),
            ),
            key=("patient_id",),
            whole=True,
        ),
    )
}


def _columns(spec: str) -> tuple[tuple[str, str], ...]:
    """``"name TYPE, name TYPE"`` -> ((name, TYPE), ...): a table's columns as DuckDB reports them."""
    return tuple(tuple(item.strip().rsplit(" ", 1)) for item in spec.split(","))


STORE: dict[str, tuple[tuple[str, str], ...]] = {
    "patients": _columns(
        "patient_id VARCHAR, birth_date DATE, sex VARCHAR, practice_id VARCHAR, postcode VARCHAR, "
        "deceased_date DATE, moved_out_date DATE, delivery_id VARCHAR"
    ),
    "lab_results": _columns(
        "result_id VARCHAR, patient_id VARCHAR, sampled_at TIMESTAMP, analyte VARCHAR, method VARCHAR, "
        "code VARCHAR, value DOUBLE, unit VARCHAR, censored VARCHAR, value_raw VARCHAR, "
        "unit_raw VARCHAR, status VARCHAR, ordering_practice_id VARCHAR, delivery_id VARCHAR"
    ),
    "medications": _columns(
        "patient_id VARCHAR, atc_code VARCHAR, dispensed_on DATE, strength_mg DOUBLE, "
        "delivery_id VARCHAR"
    ),
    "diagnoses": _columns(
        "patient_id VARCHAR, icd10_code VARCHAR, icd10_raw VARCHAR, diagnosed_on DATE, "
        "delivery_id VARCHAR"
    ),
    "relations": _columns(
        "patient_id VARCHAR, relative_id VARCHAR, relationship VARCHAR, delivery_id VARCHAR"
    ),
    "family_history": _columns("patient_id VARCHAR, item VARCHAR, recorded_on DATE, delivery_id VARCHAR"),
    "clinic_outcomes": _columns(
        "patient_id VARCHAR, outcome_date DATE, outcome VARCHAR, gene VARCHAR, delivery_id VARCHAR"
    ),
    "contacts": _columns(
        "patient_id VARCHAR, full_name VARCHAR, address VARCHAR, postcode VARCHAR, city VARCHAR, "
        "language VARCHAR, delivery_id VARCHAR"
    ),
    "deliveries": _columns("delivery_id VARCHAR, content_hash VARCHAR, as_of DATE, loaded_at TIMESTAMP"),
    "quarantine": _columns(
        "delivery_id VARCHAR, table_name VARCHAR, row_number BIGINT, row_key VARCHAR, rule VARCHAR, "
        "reason VARCHAR, raw VARCHAR"
    ),
    "delivery_stats": _columns(
        "delivery_id VARCHAR, table_name VARCHAR, as_of DATE, received BIGINT, recorded_at TIMESTAMP"
    ),
    "store_identity": _columns("store_id VARCHAR, erasure_key BLOB"),
    "erasure_register": _columns("id_hash VARCHAR, key_check VARCHAR, erased_on DATE"),
    "incr_changes": _columns("patient_id VARCHAR, noted BIGINT, seq BIGINT, links BOOLEAN"),
    "incr_steps": _columns(
        "step VARCHAR, seq BIGINT, as_of DATE, full_seq BIGINT, full_as_of DATE, logic VARCHAR"
    ),
    "incr_recompute": _columns("patient_id VARCHAR, seq BIGINT"),
    "patient_features": _columns(
        "patient_id VARCHAR, sex VARCHAR, practice_id VARCHAR, postcode VARCHAR, deceased_date DATE, "
        "moved_out_date DATE, age_years INTEGER, age_exact_years DOUBLE, sex_male TINYINT, "
        "is_deceased BOOLEAN, is_moved_out BOOLEAN, is_child BOOLEAN, n_ldl_results INTEGER, "
        "ldl_first_date DATE, ldl_last_date DATE, ldl_last_mmol DOUBLE, ldl_median_mmol DOUBLE, "
        "ldl_slope_mmol_per_year DOUBLE, ldl_span_years DOUBLE, n_samples_treated INTEGER, "
        "ldl_max_age_lt40_mmol DOUBLE, ldl_max_age_18_39_mmol DOUBLE, child_ldl_max_mmol DOUBLE, "
        "child_ldl_second_mmol DOUBLE, child_ldl_max_date DATE, ldl_max_age_ge40_mmol DOUBLE, "
        "ldl_max_mmol DOUBLE, ldl_max_date DATE, ldl_max_age INTEGER, ldl_max_source VARCHAR, "
        "ldl_max_treated BOOLEAN, ldl_max_regimen VARCHAR, ldl_max_untreated_mmol DOUBLE, "
        "ldl_max_untreated_date DATE, ldl_max_untreated_age INTEGER, "
        "ldl_untreated_estimate_mmol DOUBLE, ldl_estimate_date DATE, ldl_estimate_age INTEGER, "
        "ldl_estimate_measured_mmol DOUBLE, ldl_estimate_source VARCHAR, ldl_estimate_treated BOOLEAN, "
        "ldl_estimate_regimen VARCHAR, ldl_correction_factor DOUBLE, ldl_correction_source VARCHAR, "
        "ldl_estimate_statin_intensity TINYINT, tc_at_estimate_mmol DOUBLE, "
        "hdl_at_estimate_mmol DOUBLE, tg_at_estimate_mmol DOUBLE, ldl_estimate_basis VARCHAR, "
        "ldl_estimate_days_on_treatment INTEGER, non_hdl_at_estimate_mmol DOUBLE, "
        "ldl_percentile DOUBLE, tc_max_mmol DOUBLE, hdl_max_mmol DOUBLE, tg_max_mmol DOUBLE, "
        "tc_max_date DATE, tc_max_age INTEGER, tc_max_treated BOOLEAN, tc_max_untreated_mmol DOUBLE, "
        "tc_max_untreated_date DATE, tc_max_untreated_age INTEGER, lpa_max_mg_l DOUBLE, "
        "lpa_molar_max_nmol_l DOUBLE, apob_max_g_l DOUBLE, lipid_lowering_ever BOOLEAN, "
        "lipid_lowering_first_date DATE, ezetimibe_ever BOOLEAN, pcsk9_ever BOOLEAN, "
        "lipid_lowering_now BOOLEAN, statin_intensity_now TINYINT, regimen_now VARCHAR, "
        "sec_tsh_max_miu_l DOUBLE, sec_tsh_date DATE, sec_hba1c_max_mmol_mol DOUBLE, "
        "sec_hba1c_date DATE, sec_tg_max_mmol DOUBLE, sec_tg_date DATE, sec_albumin_min_g_l DOUBLE, "
        "sec_albumin_date DATE, sec_uacr_max_mg_mmol DOUBLE, sec_uacr_date DATE, "
        "sec_alp_max_u_l DOUBLE, sec_alp_date DATE, sec_ggt_max_u_l DOUBLE, sec_ggt_date DATE, "
        "sec_alat_max_u_l DOUBLE, sec_alat_date DATE, sec_egfr_min DOUBLE, sec_egfr_date DATE, "
        "sec_creatinine_max_umol_l DOUBLE, sec_creatinine_date DATE, sec_drug_atc VARCHAR, "
        "sec_drug_date DATE, fh_specific_code VARCHAR, fh_specific_date DATE, e780_code VARCHAR, "
        "e780_date DATE, chd_first_date DATE, chd_first_age INTEGER, other_cvd_first_date DATE, "
        "other_cvd_first_age INTEGER, fh_diagnosis BOOLEAN, fh_diagnosis_code VARCHAR, "
        "fh_diagnosis_date DATE, fh_diagnosis_specific BOOLEAN, "
        "fhx_premature_chd_first_degree BOOLEAN, fhx_fh_first_degree BOOLEAN, "
        "fhx_high_ldl_first_degree_adult BOOLEAN, fhx_high_ldl_child_relative BOOLEAN, "
        "fhx_tendon_xanthoma BOOLEAN, fhx_arcus_before_45 BOOLEAN, fhx_premature_chd_self BOOLEAN, "
        "fhx_premature_pvd_self BOOLEAN, fhx_recorded_on DATE, fhx_any_recorded BOOLEAN, "
        "clinic_confirmed_fh BOOLEAN, clinic_confirmed_date DATE, clinic_gene VARCHAR, "
        "clinic_dna_variant BOOLEAN, clinic_not_fh_date DATE, clinic_last_outcome VARCHAR, "
        "clinic_last_outcome_date DATE, n_lab_results INTEGER, n_fdr INTEGER, "
        "fdr_confirmed_fh BOOLEAN, fdr_premature_chd BOOLEAN, fdr_chd_before_60 BOOLEAN, "
        "fdr_ldl_pct_max DOUBLE, child_ldl_pct_max DOUBLE, fdr_ldl_likely BOOLEAN, "
        "fdr_tc_raised BOOLEAN, fdr_xanthoma_or_arcus BOOLEAN, fdr_tendon_xanthoma BOOLEAN, "
        "parent_genetic_fh BOOLEAN, parent_high_cholesterol BOOLEAN, n_sdr INTEGER, "
        "sdr_confirmed_fh BOOLEAN, sdr_chd_before_50 BOOLEAN, sdr_tc_raised BOOLEAN, "
        "sdr_tendon_xanthoma BOOLEAN, ldl_max_to_not_fh_mmol DOUBLE, n_missing_core INTEGER, "
        "as_of DATE"
    ),
    "rule_results": _columns(
        "patient_id VARCHAR, age_years INTEGER, sex VARCHAR, practice_id VARCHAR, is_child BOOLEAN, "
        "ldl_max_mmol DOUBLE, ldl_max_date DATE, ldl_max_age INTEGER, ldl_max_treated BOOLEAN, "
        "ldl_untreated_estimate_mmol DOUBLE, ldl_source VARCHAR, dlcn_points INTEGER, "
        "dlcn_category VARCHAR, dlcn_status VARCHAR, simon_broome VARCHAR, medped VARCHAR, "
        "lab_flag BOOLEAN, criteria VARCHAR[], reason_items VARCHAR, reasons VARCHAR, "
        "missing_items VARCHAR[], missing_information VARCHAR, secondary_cause VARCHAR, route VARCHAR, "
        "excluded_reason VARCHAR, as_of DATE, postcode VARCHAR, ldl_estimate_date DATE, "
        "ldl_estimate_age INTEGER, ldl_estimate_measured_mmol DOUBLE, ldl_estimate_treated BOOLEAN, "
        "ldl_estimate_regimen VARCHAR, ldl_estimate_source VARCHAR, ldl_estimate_basis VARCHAR, "
        "ldl_correction_factor DOUBLE, ldl_correction_source VARCHAR, ldl_percentile DOUBLE, "
        "dlcn_family_points INTEGER, dlcn_clinical_points INTEGER, dlcn_exam_points INTEGER, "
        "dlcn_ldl_points INTEGER, dlcn_dna_points INTEGER, medped_column VARCHAR, "
        "medped_cutoff_mg_dl INTEGER, medped_tc_mg_dl INTEGER, lab_flag_threshold_exceeded BOOLEAN, "
        "secondary_probable BOOLEAN, relative_cutoff_category VARCHAR, rule_versions VARCHAR, "
        "paediatric VARCHAR, selected_by_rules VARCHAR, clinical_criterion BOOLEAN, "
        "clinic_last_outcome VARCHAR, clinic_last_outcome_date DATE"
    ),
    "model_scores": _columns(
        "patient_id VARCHAR, probability DOUBLE, probability_band VARCHAR, known_case BOOLEAN, "
        "model_name VARCHAR, model_version VARCHAR, reasons VARCHAR, reason_items VARCHAR, model_logit DOUBLE"
    ),
    "referral_events": _columns(
        "as_of DATE, patient_id VARCHAR, event VARCHAR, practice_id VARCHAR, clinic_id VARCHAR, "
        "rank INTEGER, probability DOUBLE, dlcn_points INTEGER, dlcn_category VARCHAR, route VARCHAR, "
        "flow VARCHAR, slot_week DATE, model_logit DOUBLE"
    ),
    "referral_ledger": _columns(
        "patient_id VARCHAR, first_listed_on DATE, last_listed_on DATE, times_listed INTEGER, "
        "clinic_id VARCHAR, status VARCHAR"
    ),
    "selection_runs": _columns(
        "as_of DATE, clinic_id VARCHAR, weekly_capacity INTEGER, expected_prospective_weekly INTEGER, "
        "backlog_places INTEGER, candidates INTEGER, prospective_candidates INTEGER, "
        "prospective_selected INTEGER, backlog_selected INTEGER, clinic_listed INTEGER, "
        "queued INTEGER, backlog_queued INTEGER, below_line INTEGER, outside_lookback INTEGER, "
        "check_first_listed INTEGER, check_first_backlog_listed INTEGER, check_first_held INTEGER, "
        "below_line_expected_carriers DOUBLE, horizon_expected_carriers DOUBLE, backlog_size INTEGER, "
        "backlog_weekly_places INTEGER, weeks_to_clear DOUBLE"
    ),
    "cascade_ledger": _columns(
        "index_patient_id VARCHAR, relative_id VARCHAR, relationship VARCHAR, degree INTEGER, "
        "status VARCHAR, status_detail VARCHAR, letter VARCHAR, letter_sent_on DATE, "
        "reminder_due DATE, closed_on DATE, result VARCHAR, result_date DATE, updated_on DATE"
    ),
    "cascade_letters": _columns(
        "index_patient_id VARCHAR, patient_id VARCHAR, kind VARCHAR, language VARCHAR, file VARCHAR, "
        "sent_on DATE"
    ),
}


def column_names(table: str) -> list[str]:
    """The columns of the store table ``table``, in table order."""
    return [column for column, _ in STORE[table]]


# Curated (= staged) columns per table, in store order, without delivery_id.
CURATED_COLUMNS: dict[str, list[str]] = {
    name: [column for column in column_names(name) if column != "delivery_id"] for name in TABLES
}

REQUIRED_TABLES = tuple(name for name, spec in TABLES.items() if spec.required)
