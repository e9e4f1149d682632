"""Which columns of ``patient_features`` the model reads, and in what form.

The feature values themselves come only from ``fh_screen.stages.features.build`` (one feature module);
this file only names the columns the model uses, so a mismatch between an artefact and
the running code can be detected and refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from fh_screen.errors import UserError

# The scorer is for people alive, in the region, with at least one LDL-C value; training
# and scoring use the same definition (``eligible``), which reads only these columns.
ELIGIBILITY_COLUMNS = ("ldl_max_mmol", "is_deceased", "is_moved_out")


def eligible(features: pl.DataFrame) -> pl.DataFrame:
    """The rows the scorer is for (training and scoring alike)."""
    return features.filter(
        pl.col("ldl_max_mmol").is_not_null() & ~pl.col("is_deceased") & ~pl.col("is_moved_out")
    )


SPEC_FILE = Path(__file__).with_name("feature_spec.yaml")


@dataclass(frozen=True)
class Feature:
    name: str
    reason_en: str
    reason_da: str


class SchemaMismatch(UserError):
    """The artefact was trained on other features than this code computes."""


@lru_cache(maxsize=1)
def load_spec() -> tuple[Feature, ...]:
    data = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return tuple(Feature(**item) for item in data["features"])


def names(spec: tuple[Feature, ...] | None = None) -> list[str]:
    return [f.name for f in (spec or load_spec())]


def check(expected: list[str], available: list[str]) -> None:
    """Refuse to score when the artefact's feature list differs from the code's."""
    if expected != available:
        missing = sorted(set(expected) - set(available))
        extra = sorted(set(available) - set(expected))
        raise SchemaMismatch(
            "the model artefact's feature schema does not match this version's features "
            f"(missing: {', '.join(missing) or 'none'}; not in artefact: {', '.join(extra) or 'none'}; "
            f"order differs: {not missing and not extra}); retrain it with 'fhscreen train'"
        )


def matrix(features: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """Float matrix in ``columns`` order; booleans become 0/1 and missing values NaN."""
    absent = [c for c in columns if c not in features.columns]
    if absent:
        raise SchemaMismatch(f"patient_features lacks model inputs: {', '.join(absent)}")
    return (
        features.select([pl.col(c).cast(pl.Float64, strict=False) for c in columns])
        .fill_null(float("nan"))
        .to_numpy()
        .astype(np.float64)
    )


# An FH-coded or clinic-confirmed person: the same definition as the rules' "already_diagnosed".
KNOWN_CASE_COLUMNS = ("fh_diagnosis", "clinic_confirmed_fh")


def known_case(features: pl.DataFrame) -> pl.Series:
    """True for a person the region already knows as an FH case (reads ``KNOWN_CASE_COLUMNS``)."""
    return features.select(
        (pl.col("fh_diagnosis").fill_null(False) | pl.col("clinic_confirmed_fh").fill_null(False)).alias("known")
    )["known"]
