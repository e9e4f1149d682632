"""MEDPED (Make Early Diagnoses to Prevent Early Deaths) criteria, version 1.

FH when total cholesterol exceeds the cut-off for the person's age and closest relative with FH.

References:
    Williams RR et al. Am J Cardiol 1993;72:171-6; table reproduced in JAHA (PMC6951065,
    Table 1). Summarised in docs/clinical-reference.md §3.

Decisions:
    * Strictly above the cut-off, at the age of the sample, compared at 2 decimals.
    * Column: first degree if a first-degree relative has confirmed FH (or the item
      fh_first_degree is recorded); second degree if a second-degree relative has; else general
      population. Third-degree relatives are not derivable from ``relations``.
    * Pre-treatment TC only; only on-treatment TC -> ``not_calculable`` (the cut-offs were set on
      untreated values). No TC at all -> ``not_calculable``.
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, fmt_mmol, fmt_int, reported

RULE = reference.load("medped_v1")
NAME, VERSION = RULE["name"], RULE["version"]
COLUMNS = ("first_degree", "second_degree", "general")


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``medped`` (met|not_met|not_calculable), ``medped_column`` and ``medped_cutoff_mmol``."""
    rows = RULE["cutoffs"]
    age = pl.col("tc_max_untreated_age")
    column = (
        pl.when(pl.col("fdr_confirmed_fh").fill_null(False) | pl.col("fhx_fh_first_degree").fill_null(False))
        .then(pl.lit("first_degree"))
        .when(pl.col("sdr_confirmed_fh").fill_null(False)).then(pl.lit("second_degree"))
        .otherwise(pl.lit("general"))
    )
    lf = lf.with_columns(column.alias("medped_column"))
    cutoff = pl.lit(None, dtype=pl.Float64)
    for col in COLUMNS:
        cutoff = pl.when(pl.col("medped_column") == col).then(reference.band_value(age, rows, col)).otherwise(cutoff)
    lf = lf.with_columns(cutoff.alias("medped_cutoff_mmol"))
    result = (
        pl.when(pl.col("tc_max_untreated_mmol").is_null()).then(pl.lit("not_calculable"))
        .when(reported("tc_max_untreated_mmol") > pl.col("medped_cutoff_mmol")).then(pl.lit("met"))
        .otherwise(pl.lit("not_met"))
    )
    return lf.with_columns(result.alias("medped"))


def reasons() -> list[Reason]:
    return [Reason(pl.col("medped") == "met", "medped_met", {
        "tc": fmt_mmol("tc_max_untreated_mmol"), "age": fmt_int("tc_max_untreated_age"),
        "cutoff": fmt_mmol("medped_cutoff_mmol"), "column": pl.col("medped_column")})]


def criteria() -> list[Criterion]:
    return [Criterion(pl.col("medped") == "met", "medped.met")]
