"""Region Syddanmark laboratory flag (FIND comment rule), version 1.

The lab comment that encourages referral: LDL-C above 4 mmol/L under 40 years, above 5 from
40, when secondary causes are absent. Thresholds are configurable in
``reference/rules/lab_flag_v1.yaml``.

References:
    FIND trial, NCT05614219 (Odense University Hospital); Hedegaard et al., Atherosclerosis
    2023;373:10-16 (Danish referral criteria LDL > 5.0, > 4.0 if age < 40). docs/clinical-reference.md §7, §11.

Decisions:
    * Applied to the reported LDL-C of every sample in the history (no treatment correction),
      at the age at that sample, via the feature columns ``ldl_max_age_18_39_mmol`` and
      ``ldl_max_age_ge40_mmol``; strictly above the threshold, compared at 2 decimals.
    * adult_lab_flag_adults_only (1.1.0): only samples taken at 18 or older; children follow
      ``paediatric_v1`` (EAS 2015).
    * ``lab_flag`` requires that ``secondary_v2`` found no cause that explains the LDL-C;
      ``lab_flag_threshold_exceeded`` records the LDL-C part alone (used for routing).
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, fmt_mmol, reported

RULE = reference.load("lab_flag_v1")
NAME, VERSION = RULE["name"], RULE["version"]
if RULE["age_split"] != 40:
    raise ValueError("lab_flag_v1: the age split is fixed at 40 by the feature columns")


def evaluate(lf: pl.LazyFrame, thresholds: dict[str, float] | None = None) -> pl.LazyFrame:
    """Add ``lab_flag_threshold_exceeded`` and ``lab_flag`` (needs ``secondary_probable``)."""
    t = {**RULE["ldl_above"], **(thresholds or {})}
    under = (reported("ldl_max_age_18_39_mmol") > t["under_age_split"]).fill_null(False)
    from_ = (reported("ldl_max_age_ge40_mmol") > t["from_age_split"]).fill_null(False)
    return lf.with_columns(
        under.alias("lab_flag_under40"), from_.alias("lab_flag_from40"),
        (under | from_).alias("lab_flag_threshold_exceeded"),
    ).with_columns((pl.col("lab_flag_threshold_exceeded") & ~pl.col("secondary_probable")).alias("lab_flag"))


def reasons() -> list[Reason]:
    t = RULE["ldl_above"]
    return [
        Reason(pl.col("lab_flag_under40"), "lab_flag", {
            "ldl": fmt_mmol("ldl_max_age_18_39_mmol"), "threshold": pl.lit(f"{t['under_age_split']:.1f}"),
            "age_band": pl.lit("under 40")}),
        Reason(pl.col("lab_flag_from40") & ~pl.col("lab_flag_under40"), "lab_flag", {
            "ldl": fmt_mmol("ldl_max_age_ge40_mmol"), "threshold": pl.lit(f"{t['from_age_split']:.1f}"),
            "age_band": pl.lit("40 and over")}),
    ]


def criteria() -> list[Criterion]:
    return [
        Criterion(pl.col("lab_flag"), "lab_flag"),
        Criterion(pl.col("lab_flag_threshold_exceeded") & ~pl.col("lab_flag"), "lab_flag.secondary_cause_present"),
    ]
