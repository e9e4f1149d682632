"""The input side of the data contract (docs/contract.md §1), declared once.

Each delivered table lists its columns with a *kind* that says how the delivered text is
parsed, whether the column must be in the file, and whether a row needs a value in it.
The natural key says which rows replace each other when a later delivery repeats them
(and which rows are duplicates within one delivery).

Staging tables ``stg_<table>`` hold the curated columns of ``sql/schema.sql`` without
``delivery_id``, plus ``_row`` (the 1-based data row in the delivered file).
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
        ),
    )
}

# Curated (= staged) columns per table, in sql/schema.sql order, without delivery_id.
CURATED_COLUMNS: dict[str, list[str]] = {
    "patients": ["patient_id", "birth_date", "sex", "practice_id", "postcode", "deceased_date", "moved_out_date"],
    "lab_results": [
        "result_id", "patient_id", "sampled_at", "analyte", "method", "code", "value", "unit",
        "censored", "value_raw", "unit_raw", "status", "ordering_practice_id",
    ],
    "medications": ["patient_id", "atc_code", "dispensed_on", "strength_mg"],
    "diagnoses": ["patient_id", "icd10_code", "icd10_raw", "diagnosed_on"],
    "relations": ["patient_id", "relative_id", "relationship"],
    "family_history": ["patient_id", "item", "recorded_on"],
    "clinic_outcomes": ["patient_id", "outcome_date", "outcome", "gene"],
    "contacts": ["patient_id", "full_name", "address", "postcode", "city", "language"],
}

REQUIRED_TABLES = tuple(name for name, spec in TABLES.items() if spec.required)
