"""MEDPED (Make Early Diagnoses to Prevent Early Deaths) criteria, version 2.

FH when total cholesterol exceeds the cut-off for the person's age and closest relative with FH.

References:
    Williams RR et al. Am J Cardiol 1993;72:171-6 (mg/dL); table reproduced in JAHA 2019
    (PMC6951065, Table 1) and NCBI Bookshelf NBK379719.

Decisions (``reference/rules/medped_v2.yaml``):
    * medped_mg_dl: compared in whole mg/dL, as published: TC mmol/L x 38.67, rounded; strictly
      above the cut-off, at the age of the sample. The reason shows both units.
    * medped_columns: first degree if a first-degree relative has confirmed FH (or the item
      fh_first_degree is recorded); second degree if a second-degree relative has; else general.
    * medped_untreated: pre-treatment TC only; only on-treatment or no TC -> ``not_calculable``.
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, fmt_int, fmt_mmol

RULE = reference.load("medped_v2")
NAME, VERSION = RULE["name"], RULE["version"]
COLUMNS = ("first_degree", "second_degree", "general")


def tc_mg_dl(tc_mmol: pl.Expr) -> pl.Expr:
    """Total cholesterol in whole mg/dL (the unit MEDPED was published in)."""
    return (tc_mmol * RULE["mg_dl_per_mmol"]).round(0).cast(pl.Int32)


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``medped`` (met|not_met|not_calculable), ``medped_column``, ``medped_cutoff_mg_dl``, ``medped_tc_mg_dl``."""
    rows = RULE["cutoffs"]
    age = pl.col("tc_max_untreated_age")
    column = (
        pl.when(pl.col("fdr_confirmed_fh").fill_null(False) | pl.col("fhx_fh_first_degree").fill_null(False))
        .then(pl.lit("first_degree"))
        .when(pl.col("sdr_confirmed_fh").fill_null(False)).then(pl.lit("second_degree"))
        .otherwise(pl.lit("general"))
    )
    lf = lf.with_columns(column.alias("medped_column"), tc_mg_dl(pl.col("tc_max_untreated_mmol")).alias("medped_tc_mg_dl"))
    cutoff = pl.lit(None, dtype=pl.Int32)
    for col in COLUMNS:
        cutoff = pl.when(pl.col("medped_column") == col).then(reference.band_value(age, rows, col)).otherwise(cutoff)
    lf = lf.with_columns(cutoff.cast(pl.Int32).alias("medped_cutoff_mg_dl"))
    result = (
        pl.when(pl.col("tc_max_untreated_mmol").is_null()).then(pl.lit("not_calculable"))
        .when(pl.col("medped_tc_mg_dl") > pl.col("medped_cutoff_mg_dl")).then(pl.lit("met"))
        .otherwise(pl.lit("not_met"))
    )
    return lf.with_columns(result.alias("medped"))


def reasons() -> list[Reason]:
    return [Reason(pl.col("medped") == "met", "medped_met", {
        "tc": fmt_mmol("tc_max_untreated_mmol"), "tc_mg": fmt_int("medped_tc_mg_dl"),
        "age": fmt_int("tc_max_untreated_age"), "cutoff": fmt_int("medped_cutoff_mg_dl"),
        "column": pl.col("medped_column")})]


def criteria() -> list[Criterion]:
    return [Criterion(pl.col("medped") == "met", "medped.met")]
