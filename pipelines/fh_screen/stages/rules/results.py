"""``rule_results`` from ``patient_features``: every rule, the route, criteria, reasons, gaps.

Pure and vectorised (polars, lazy): :func:`score` takes a frame of patient features and
returns one row per patient; no database, no per-patient Python.

Decisions:
    * routing_is_selection: ONE rule says who is flagged, and both the route here and the
      referral selection read it (``selected_by_rules``): DLCN >= the selection cut-off
      (settings, default 6 = DLCN > 5, NICE CG71), the adult lab flag (threshold exceeded and
      no secondary cause that explains the LDL-C, as the FIND comment), Simon
      Broome definite/possible, or the EAS 2015 paediatric criteria. Flagged + a secondary cause
      that explains the LDL-C -> ``check_secondary_cause_first``; flagged ->
      ``refer_lipid_clinic``; excluded or not flagged -> ``none``.
    * no_model_only_referral: ``clinical_criterion`` is true when at least one clinical
      criterion is met (DLCN >= 3, Simon Broome possible/definite, MEDPED, the paediatric
      criteria, or the lab flag on a reported, uncorrected LDL-C). The model may add a patient to
      the lists only when it is true; it orders and adds, it never refers alone.
    * Reasons lead with an exclusion (if any), then the DLCN score, the LDL-C facts, the items
      that counted, the other criteria and the secondary-cause findings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from fh_screen.stages.rules import (
    dlcn_v1,
    exclusions_v2,
    explain,
    lab_flag_v1,
    medped_v2,
    paediatric_v1,
    relatives_cutoffs_v1,
    secondary_v2,
    simon_broome_v1,
    versions,
)
from fh_screen.stages.rules.common import Criterion, Param, Reason, fmt_date, fmt_factor, fmt_int, fmt_mmol

CONTRACT_COLUMNS = (
    "patient_id", "age_years", "sex", "practice_id", "is_child", "ldl_max_mmol", "ldl_max_date", "ldl_max_age",
    "ldl_max_treated", "ldl_untreated_estimate_mmol", "ldl_source", "dlcn_points", "dlcn_category", "dlcn_status",
    "simon_broome", "medped", "lab_flag", "criteria", "reason_items", "reasons", "missing_items",
    "missing_information", "secondary_cause", "route", "excluded_reason",
)
EXTRA_COLUMNS = (
    "as_of", "postcode", "ldl_estimate_date", "ldl_estimate_age", "ldl_estimate_measured_mmol",
    "ldl_estimate_treated", "ldl_estimate_regimen", "ldl_estimate_source", "ldl_estimate_basis",
    "ldl_correction_factor",
    "ldl_correction_source", "ldl_percentile", "dlcn_family_points", "dlcn_clinical_points", "dlcn_exam_points",
    "dlcn_ldl_points", "dlcn_dna_points", "medped_column", "medped_cutoff_mg_dl", "medped_tc_mg_dl", "lab_flag_threshold_exceeded",
    "secondary_probable", "relative_cutoff_category", "rule_versions",
    "paediatric", "selected_by_rules", "clinical_criterion", "clinic_last_outcome", "clinic_last_outcome_date",
)

# Output columns that score builds rather than copies from the evaluated features.
ADDED_COLUMNS = frozenset({"criteria", "reason_items", "reasons", "missing_items", "missing_information",
                           "secondary_cause", "ldl_source", "rule_versions"})


@dataclass(frozen=True)
class Policy:
    """What the region decides (from ``Settings.selection``), not clinical constants."""

    dlcn_min_points: int = 6
    use_lab_flag: bool = True
    lab_flag_thresholds: dict[str, float] | None = None


def _ldl_reasons() -> list[Reason]:
    """Which LDL-C scored and why (decision ``ldl_provenance_shown``, ldl_estimation_v2)."""
    basis = pl.col("ldl_estimate_basis")
    has = pl.col("ldl_untreated_estimate_mmol").is_not_null()
    at_index = {"ldl": fmt_mmol("ldl_estimate_measured_mmol"), "date": fmt_date("ldl_estimate_date"),
                "age": fmt_int("ldl_estimate_age")}
    return [
        Reason(has & (basis == "measured_untreated"), "ldl_untreated", at_index),
        Reason(has & (basis == "estimated_from_treated"), "ldl_treated", at_index | {
            "regimen": pl.col("ldl_estimate_regimen"), "estimate": fmt_mmol("ldl_untreated_estimate_mmol"),
            "factor": fmt_factor("ldl_correction_factor"),
            "provenance": pl.col("ldl_correction_source")}),
        Reason(has & (basis == "measured_early_treatment"), "ldl_early_treatment", at_index | {
            "regimen": pl.col("ldl_estimate_regimen"), "days": fmt_int("ldl_estimate_days_on_treatment")}),
        Reason(has & (pl.col("ldl_max_date") != pl.col("ldl_estimate_date")), "ldl_highest_measured", {
            "ldl": fmt_mmol("ldl_max_mmol"), "date": fmt_date("ldl_max_date"), "age": fmt_int("ldl_max_age")}),
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
    return [
        *exclusions_v2.reasons(),
        *exclusions_v2.information(),
        *dlcn_v1.status_reasons(),
        *_ldl_reasons(),
        *dlcn_v1.item_reasons(),
        *simon_broome_v1.reasons(),
        *medped_v2.reasons(),
        *lab_flag_v1.reasons(),
        *paediatric_v1.reasons(),
        *relatives_cutoffs_v1.reasons(),
        *secondary_v2.reasons(),
        Reason(pl.col("route") == "check_secondary_cause_first", "route_check_secondary"),
    ]


def _criteria_list() -> list[Criterion]:
    return [
        *dlcn_v1.criteria(), *simon_broome_v1.criteria(), *medped_v2.criteria(), *lab_flag_v1.criteria(),
        *paediatric_v1.criteria(), *relatives_cutoffs_v1.criteria(), *secondary_v2.criteria(),
        *exclusions_v2.criteria(),
    ]


# Clinical criteria a referral needs (decision no_model_only_referral): DLCN "possible" or more.
DLCN_CRITERION_MIN_POINTS = 3


def _triggers(policy: Policy) -> dict[str, pl.Expr]:
    """The rule triggers that flag a patient (decision routing_is_selection)."""
    return {
        "dlcn": (pl.col("dlcn_points") >= policy.dlcn_min_points).fill_null(False),
        # The lab comment itself (FIND): threshold exceeded and no cause that explains the LDL-C.
        "lab_flag": (pl.col("lab_flag") if policy.use_lab_flag else pl.lit(False)),
        "simon_broome": pl.col("simon_broome").is_in(["definite", "possible"]),
        "paediatric": pl.col("paediatric") == "met",
    }


def selection(policy: Policy) -> list[pl.Expr]:
    """``selected_by_rules`` (the triggers that fired, "+"-joined; NULL = not flagged or
    excluded) and ``clinical_criterion``, over ``rule_results`` columns. The rules route and
    the referral selection both apply this one definition (decision routing_is_selection)."""
    triggers = _triggers(policy)
    selected = pl.concat_str([pl.when(t).then(pl.lit(name)) for name, t in triggers.items()],
                             separator="+", ignore_nulls=True)
    criterion = ((pl.col("dlcn_points") >= DLCN_CRITERION_MIN_POINTS).fill_null(False)
                 | pl.col("simon_broome").is_in(["definite", "possible"]) | (pl.col("medped") == "met")
                 | (pl.col("paediatric") == "met") | pl.col("lab_flag"))
    return [pl.when(selected != "").then(selected).alias("selected_by_rules"),
            criterion.fill_null(False).alias("clinical_criterion")]


def _route() -> pl.Expr:
    flagged = pl.col("selected_by_rules").is_not_null()
    return (
        pl.when(pl.col("excluded_reason").is_not_null()).then(pl.lit("none"))
        .when(flagged & pl.col("secondary_probable")).then(pl.lit("check_secondary_cause_first"))
        .when(flagged).then(pl.lit("refer_lipid_clinic"))
        .otherwise(pl.lit("none"))
    )


def evaluate(features: pl.DataFrame | pl.LazyFrame, policy: Policy = Policy()) -> pl.LazyFrame:
    """All rule columns added to the features (lazy), before the output is shaped."""
    lf = features.lazy()
    lf = secondary_v2.evaluate(lf)
    lf = dlcn_v1.evaluate(lf)
    lf = simon_broome_v1.evaluate(lf)
    lf = medped_v2.evaluate(lf)
    lf = lab_flag_v1.evaluate(lf, policy.lab_flag_thresholds)
    lf = paediatric_v1.evaluate(lf)
    lf = relatives_cutoffs_v1.evaluate(lf)
    lf = exclusions_v2.evaluate(lf)
    return lf.with_columns(selection(policy)).with_columns(_route().alias("route"))


def _items(scored: pl.LazyFrame, kinds: dict[str, list[Reason]]) -> pl.DataFrame:
    """One row per patient row and reason that applies: kind, order, English text, JSON item.

    Long format on purpose: each reason is filtered to the patients it applies to before its
    text is built, so the cost follows the few reasons per patient, not reasons x patients.
    """
    parts, order = [], 0
    for kind, reasons in kinds.items():
        for reason in reasons:
            order += 1
            params = reason.shown()
            parts.append(scored.filter(reason.when).select(
                "_row", pl.lit(kind).alias("kind"), pl.lit(order, dtype=pl.Int32).alias("order"),
                explain.text_expr(reason.code, params).alias("text"),
                explain.json_expr(reason.code, params).alias("json")))
    return pl.concat(parts).collect(engine="streaming")


def _per_row(items: pl.DataFrame, kind: str, *aggs: pl.Expr) -> pl.DataFrame:
    """Items of one kind as lists per patient row, in item order (sorted integer keys + list
    aggregation is polars' fast path; ``str.join`` inside ``agg`` is ~10x slower)."""
    return (items.filter(pl.col("kind") == kind).sort("_row", "order")
            .group_by("_row", maintain_order=True).agg(*aggs))


def _code_sets(scored: pl.DataFrame, items: list[Reason | Criterion], codes: str, text: str | None) -> list[pl.Series]:
    """Parameter-free items per patient, built once per distinct combination.

    The items that apply are packed into a bit mask per patient (numpy); few distinct
    combinations exist, so their code lists and texts are built per combination (hundreds)
    and gathered back to the patients, never per patient.
    """
    if len(items) > 64:
        raise ValueError("more than 64 parameter-free items do not fit one mask")
    bits = scored.select(item.when.fill_null(False).alias(f"b{i}") for i, item in enumerate(items)).to_numpy()
    packed = np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    packed = np.ascontiguousarray(np.pad(packed, ((0, 0), (0, 8 - packed.shape[1]))))
    masks, rows = np.unique(packed.view("<u8").ravel(), return_inverse=True)
    chosen = [[item.code for i, item in enumerate(items) if int(m) >> i & 1] for m in masks]
    out = [pl.Series(codes, chosen, dtype=pl.List(pl.Utf8)).gather(rows)]
    if text:
        texts = ["; ".join(explain.render(c, "en")) or None for c in chosen]
        out.append(pl.Series(text, texts, dtype=pl.Utf8).gather(rows))
    return out


def _used_columns(reasons: list[Reason], items: list[Reason | Criterion]) -> list[str]:
    """The evaluated columns the output and its items read, in output order then first use.

    Collecting only these lets polars push the projection down to the source (a lazy DuckDB
    scan then reads 82 of patient_features' 129 columns) and skip unused rule columns.
    """
    exprs = [r.when for r in reasons] + [item.when for item in items]
    exprs += [p.expr if isinstance(p, Param) else p for r in reasons for p in r.params.values()]
    names = [c for c in (*CONTRACT_COLUMNS, *EXTRA_COLUMNS) if c not in ADDED_COLUMNS] + ["ldl_max_source"]
    names += [name for e in exprs for name in e.meta.root_names()]
    return list(dict.fromkeys(names))


def score(features: pl.DataFrame | pl.LazyFrame, policy: Policy = Policy()) -> pl.DataFrame:
    """``rule_results``: one row per patient with the contract columns plus ``EXTRA_COLUMNS``."""
    # secondary_cause: only the causes that explain the LDL-C (secondary_v2 secondary_graded);
    # the information findings are among the reasons.
    kinds = {"reason": _reason_list(), "secondary": secondary_v2.reasons("explains")}
    missing, criteria = [*_ldl_missing(), *dlcn_v1.missing(), *secondary_v2.missing()], _criteria_list()
    used = _used_columns([reason for reasons in kinds.values() for reason in reasons], [*missing, *criteria])
    scored = evaluate(features, policy).select(used).collect().with_row_index("_row")
    items = _items(scored.lazy(), kinds)
    reasons = _per_row(items, "reason", pl.col("text"), pl.col("json")).select(
        "_row", pl.format("[{}]", pl.col("json").list.join(",")).alias("reason_items"),
        pl.col("text").list.join("; ").alias("reasons"))
    secondary = _per_row(items, "secondary", pl.col("text")).select(
        "_row", pl.col("text").list.join("; ").alias("secondary_cause"))
    sets = [*_code_sets(scored, missing, "missing_items", "missing_information"),
            *_code_sets(scored, criteria, "criteria", None)]
    label = " ".join(f"{name} {v['version']}" for name, v in versions().items())
    out = scored.select("_row", *[c for c in (*CONTRACT_COLUMNS, *EXTRA_COLUMNS) if c not in ADDED_COLUMNS],
                        pl.col("ldl_max_source").alias("ldl_source"), pl.lit(label).alias("rule_versions"),
                        *sets)
    for part in (reasons, secondary):
        out = out.join(part, on="_row", how="left")
    # Patients without an item have NULL text, never an empty string.
    return out.sort("_row").select(*CONTRACT_COLUMNS, *EXTRA_COLUMNS)
