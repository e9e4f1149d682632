"""Rule reference data: the versioned YAML files under ``reference/rules`` and small lookups.

Rules are data plus one vectorised implementation; this module is the only place that reads the
data, so a rule module and the features that feed it always see the same numbers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

# The packaged reference data (code lists, unit maps, rule YAML) lives beside this module.
REFERENCE_DIR = Path(__file__).resolve().parent
RULES_DIR = REFERENCE_DIR / "rules"
REFERENCE_DIR = RULES_DIR.parent


@lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    """The parsed ``reference/rules/<name>.yaml`` (cached; treat as read-only)."""
    data = yaml.safe_load((RULES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    for key in ("name", "version", "source"):
        if not data.get(key):
            raise ValueError(f"rule file {name}.yaml lacks {key!r}")
    return data


@lru_cache(maxsize=None)
def csv(name: str) -> pl.DataFrame:
    """A reference CSV (``reference/<name>.csv``) as a polars frame."""
    return pl.read_csv(REFERENCE_DIR / f"{name}.csv", infer_schema_length=None)


def band_value(age: pl.Expr, rows: list[dict], field: str, sex: pl.Expr | None = None,
               sex_value: str | None = None) -> pl.Expr:
    """``rows[i][field]`` for the row whose [age_from, age_to] holds ``age``; null outside.

    A when/then chain over a handful of table rows keeps lookups vectorised without a join.
    With ``sex``/``sex_value`` the chain only applies where ``sex == sex_value``.
    """
    expr = pl.lit(None, dtype=pl.Float64)
    for row in reversed(rows):
        cond = (age >= row["age_from"]) & (age <= row["age_to"])
        if sex is not None:
            cond = cond & (sex == sex_value)
        expr = pl.when(cond).then(pl.lit(float(row[field]))).otherwise(expr)
    return expr


def by_sex(age: pl.Expr, sex: pl.Expr, table: dict[str, list[dict]], field: str) -> pl.Expr:
    """Like :func:`band_value` for a table keyed by sex (``{"M": rows, "F": rows}``)."""
    expr = pl.lit(None, dtype=pl.Float64)
    for sex_value, rows in table.items():
        expr = pl.coalesce(band_value(age, rows, field, sex, sex_value), expr)
    return expr
