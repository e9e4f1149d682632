"""``rule_results`` from ``patient_features``: every rule, the route, criteria, reasons, gaps.

Pure and vectorised (polars, lazy): :func:`score` takes a frame of patient features and
returns one row per patient; no database, no per-patient Python.

Decisions:
    * Route: a patient is "flagged" by DLCN >= the selection cut-off (settings, default 6 =
      DLCN > 5, NICE CG71), by the lab-flag LDL-C threshold, or by Simon Broome
      definite/possible. Flagged + probable secondary cause -> ``check_secondary_cause_first``;
      flagged -> ``refer_lipid_clinic``; excluded or not flagged -> ``none``.
    * Reasons lead with an exclusion (if any), then the DLCN score, the LDL-C facts, the items
      that counted, the other criteria and the secondary-cause findings.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from fh_screen.rules import (
    dlcn_v1,
    exclusions_v1,
    explain,
    lab_flag_v1,
    medped_v1,
    relatives_cutoffs_v1,
    secondary_v1,
    simon_broome_v1,
    versions,
)
from fh_screen.rules.common import Criterion, Reason, fmt_date, fmt_fixed, fmt_int

CONTRACT_COLUMNS = (
    "patient_id", "age_years", "sex", "practice_id", "is_child", "ldl_max_mmol", "ldl_max_date", "ldl_max_age",
    "ldl_max_treated", "ldl_untreated_estimate_mmol", "ldl_source", "dlcn_points", "dlcn_category", "dlcn_status",
    "simon_broome", "medped", "lab_flag", "criteria", "reason_items", "reasons", "missing_items",
    "missing_information", "secondary_cause", "route", "excluded_reason",
)
EXTRA_COLUMNS = (
    "as_of", "postcode", "ldl_estimate_date", "ldl_estimate_age", "ldl_estimate_measured_mmol",
    "ldl_estimate_treated", "ldl_estimate_regimen", "ldl_estimate_source", "ldl_correction_factor",
    "ldl_correction_source", "ldl_percentile", "dlcn_family_points", "dlcn_clinical_points", "dlcn_exam_points",
    "dlcn_ldl_points", "dlcn_dna_points", "medped_column", "medped_cutoff_mmol", "lab_flag_threshold_exceeded",
    "secondary_probable", "relative_cutoff_category", "rule_versions",
)


@dataclass(frozen=True)
class Policy:
    """What the region decides (from ``Settings.selection``), not clinical constants."""

    dlcn_min_points: int = 6
    use_lab_flag: bool = True
    lab_flag_thresholds: dict[str, float] | None = None


def _ldl_reasons() -> list[Reason]:
    treated = pl.col("ldl_estimate_treated").fill_null(False)
    has = pl.col("ldl_untreated_estimate_mmol").is_not_null()
    at_index = {"ldl": fmt_fixed("ldl_estimate_measured_mmol", 1), "date": fmt_date("ldl_estimate_date"),
                "age": fmt_int("ldl_estimate_age")}
    return [
        Reason(has & ~treated, "ldl_untreated", at_index),
        Reason(has & treated, "ldl_treated", at_index | {
            "regimen": pl.col("ldl_estimate_regimen"), "estimate": fmt_fixed("ldl_untreated_estimate_mmol", 1),
            "factor": pl.col("ldl_correction_factor").round(3).cast(pl.Utf8),
            "provenance": pl.col("ldl_correction_source")}),
        Reason(has & (pl.col("ldl_max_date") != pl.col("ldl_estimate_date")), "ldl_highest_measured", {
            "ldl": fmt_fixed("ldl_max_mmol", 1), "date": fmt_date("ldl_max_date"), "age": fmt_int("ldl_max_age")}),
        Reason(pl.col("ldl_estimate_source").is_in(["sampson", "friedewald"]), "ldl_equation",
               {"equation": pl.col("ldl_estimate_source")}),
    ]


def _ldl_missing() -> list[Reason]:
    return [
        Reason(pl.col("ldl_untreated_estimate_mmol").is_null(), "no_ldl"),
        Reason(pl.col("n_ldl_results") == 1, "single_ldl_measurement"),
        Reason(pl.col("ldl_estimate_treated").fill_null(False)
               & pl.col("ldl_correction_source").str.contains("fallback").fill_null(False), "treatment_dose_unknown"),
    ]


def _reason_list() -> list[Reason]:
    dlcn = dlcn_v1.reasons()
    return [
        *exclusions_v1.reasons(),
        *dlcn[:3],
        *_ldl_reasons(),
        *dlcn[3:],
        *simon_broome_v1.reasons(),
        *medped_v1.reasons(),
        *lab_flag_v1.reasons(),
        *relatives_cutoffs_v1.reasons(),
        *secondary_v1.reasons(),
        Reason(pl.col("route") == "check_secondary_cause_first", "route_check_secondary"),
    ]


def _criteria_list() -> list[Criterion]:
    return [
        *dlcn_v1.criteria(), *simon_broome_v1.criteria(), *medped_v1.criteria(), *lab_flag_v1.criteria(),
        *relatives_cutoffs_v1.criteria(), *secondary_v1.criteria(), *exclusions_v1.criteria(),
    ]


def _collect(exprs: list[pl.Expr]) -> pl.Expr:
    """Non-null entries of ``exprs`` as a list, in order."""
    return pl.concat_list(exprs).list.drop_nulls()


def _route(policy: Policy) -> pl.Expr:
    flagged = (
        (pl.col("dlcn_points") >= policy.dlcn_min_points).fill_null(False)
        | pl.col("simon_broome").is_in(["definite", "possible"])
        | (pl.col("lab_flag_threshold_exceeded") if policy.use_lab_flag else pl.lit(False))
    )
    return (
        pl.when(pl.col("excluded_reason").is_not_null()).then(pl.lit("none"))
        .when(flagged & pl.col("secondary_probable")).then(pl.lit("check_secondary_cause_first"))
        .when(flagged).then(pl.lit("refer_lipid_clinic"))
        .otherwise(pl.lit("none"))
    )


def evaluate(features: pl.DataFrame | pl.LazyFrame, policy: Policy = Policy()) -> pl.LazyFrame:
    """All rule columns added to the features (lazy), before the output is shaped."""
    lf = features.lazy()
    lf = secondary_v1.evaluate(lf)
    lf = dlcn_v1.evaluate(lf)
    lf = simon_broome_v1.evaluate(lf)
    lf = medped_v1.evaluate(lf)
    lf = lab_flag_v1.evaluate(lf, policy.lab_flag_thresholds)
    lf = relatives_cutoffs_v1.evaluate(lf)
    lf = exclusions_v1.evaluate(lf)
    return lf.with_columns(_route(policy).alias("route"))


def score(features: pl.DataFrame | pl.LazyFrame, policy: Policy = Policy()) -> pl.DataFrame:
    """``rule_results``: one row per patient with the contract columns plus ``EXTRA_COLUMNS``."""
    reasons = _reason_list()
    missing = [*_ldl_missing(), *dlcn_v1.missing(), *secondary_v1.missing()]
    secondary = secondary_v1.reasons()
    text = lambda r: pl.when(r.when).then(explain.text_expr(r.code, r.params))  # noqa: E731
    label = " ".join(f"{name} {v['version']}" for name, v in versions().items())
    lf = evaluate(features, policy).with_columns(
        _collect([pl.when(c.when).then(pl.lit(c.code)) for c in _criteria_list()]).alias("criteria"),
        pl.concat_str([pl.lit("["), _collect([pl.when(r.when).then(explain.json_expr(r.code, r.params))
                                              for r in reasons]).list.join(","), pl.lit("]")]).alias("reason_items"),
        _collect([text(r) for r in reasons]).list.join("; ").alias("reasons"),
        _collect([pl.when(m.when).then(pl.lit(m.code)) for m in missing]).alias("missing_items"),
        _collect([text(m) for m in missing]).list.join("; ").alias("missing_information"),
        _collect([text(r) for r in secondary]).list.join("; ").alias("secondary_cause"),
        pl.col("ldl_max_source").alias("ldl_source"),
        pl.lit(label).alias("rule_versions"),
    ).with_columns(  # "nothing found" is NULL, never an empty string
        pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in ("secondary_cause", "missing_information")
    )
    return lf.select(*CONTRACT_COLUMNS, *EXTRA_COLUMNS).collect()
