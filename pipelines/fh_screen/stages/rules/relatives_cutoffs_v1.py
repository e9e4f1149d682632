"""LDL-C cut-offs for relatives of a known FH case (cascade testing), version 1.

Relatives have a 50% prior, so lower, age- and sex-specific LDL-C cut-offs apply. Used for
patients with a first-degree relative with confirmed FH; ``features.py`` also uses
:func:`category` to judge relatives' own LDL-C.

References:
    muccg/rdrf calculated_functions.py ``catrelative`` (Australian FH registry), attributed to
    Starr et al., Clin Chem Lab Med 2008 (NICE CG71; UK DH cascade audit) - attribution from
    memory, unverified. Summarised in docs/clinical-reference.md §8.

Decisions:
    * Half-open bands: < uncertain_from unlikely; [uncertain_from, likely_from) uncertain;
      >= likely_from likely (rdrf's x.x99 upper edges are the same at 0.1 resolution).
    * One value, one rule (``relative_ldl_one_value``, 1.1.0): THE scoring LDL-C of
      ``features.build.scoring_ldl`` (measured untreated first, else the corrected estimate) at
      the age of that sample, here, in the features' family items and in the cascade; sex U ->
      ``not_calculable``; no relative with confirmed FH -> ``not_applicable``.
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.features.lipids import relative_ldl_category
from fh_screen.stages.rules.common import Criterion, Reason, fmt_mmol

RULE = reference.load("relatives_cutoffs_v1")
NAME, VERSION = RULE["name"], RULE["version"]


# The banding itself lives with the features, which judge relatives' LDL-C with it too.
category = relative_ldl_category


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``relative_cutoff_category`` (likely|uncertain|unlikely|not_calculable|not_applicable)."""
    cat = category(pl.col("ldl_untreated_estimate_mmol"), pl.col("ldl_estimate_age"), pl.col("sex"))
    return lf.with_columns(
        pl.when(~pl.col("fdr_confirmed_fh").fill_null(False)).then(pl.lit("not_applicable"))
        .otherwise(cat.fill_null("not_calculable")).alias("relative_cutoff_category")
    )


def reasons() -> list[Reason]:
    cat = pl.col("relative_cutoff_category")
    return [
        Reason(pl.col("fdr_confirmed_fh").fill_null(False), "relative_confirmed_fh"),
        Reason(cat.is_in(["likely", "uncertain"]), "relative_cutoff", {
            "ldl": fmt_mmol("ldl_untreated_estimate_mmol"), "category": cat}),
    ]


def criteria() -> list[Criterion]:
    return [
        Criterion(pl.col("fdr_confirmed_fh").fill_null(False), "relative.confirmed_fh"),
        Criterion(pl.col("relative_cutoff_category") == "likely", "relative_cutoff.likely"),
        Criterion(pl.col("relative_cutoff_category") == "uncertain", "relative_cutoff.uncertain"),
    ]
