"""Training labels as a region has them, and (for evaluation only) synthetic truth."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from fh_screen.store import db

CONFIRMED = ("fh_genetic", "fh_clinical")


def practice_labels(con: db.Connection, as_of: date) -> pl.DataFrame:
    """patient_id, labelled: 1 for a lipid-clinic confirmed case or an existing FH diagnosis
    (FH-specific codes only: SKS DE780B, ICD-10-CM E78.01; plain E78.0 is pure hypercholesterolaemia, exclusions_v2 fh_specific_codes) recorded by ``as_of``; 0 for everyone else."""
    return con.execute(
        """
        SELECT p.patient_id,
               CAST(EXISTS (SELECT 1 FROM clinic_outcomes o
                             WHERE o.patient_id = p.patient_id AND o.outcome IN (?, ?)
                               AND o.outcome_date <= ?)
                    OR EXISTS (SELECT 1 FROM diagnoses d
                                WHERE d.patient_id = p.patient_id AND d.icd10_code IN ('E780B', 'E7801')
                                  AND d.diagnosed_on <= ?) AS INTEGER) AS labelled
        FROM patients p ORDER BY p.patient_id
        """,
        [*CONFIRMED, as_of, as_of],
    ).pl()


def truth_labels(truth_path: Path) -> pl.DataFrame:
    """patient_id, fh_carrier from a synthetic region's ground truth (never used in production)."""
    truth = pl.read_parquet(truth_path) if str(truth_path).endswith(".parquet") else pl.read_csv(truth_path)
    return truth.select(pl.col("patient_id").cast(pl.Utf8), pl.col("fh_carrier").cast(pl.Int8))
