"""Dutch Lipid Clinic Network (DLCN) score, version 1.

The points table is ``TABLE`` (loaded from ``reference/rules/dlcn_v1.yaml``), shaped like the
published table: five groups, each a list of items with points. ``EVIDENCE`` says which
``patient_features`` columns make each item apply. One vectorised implementation:
:func:`evaluate` adds the score columns to a frame of patient features.

References:
    Nordestgaard BG et al. Eur Heart J 2013;34:3478-90, Table 1 (EAS consensus),
    doi:10.1093/eurheartj/eht273. Only the highest item per group counts (table footnote;
    EAS example: family history with CHD + xanthoma + dyslipidaemia scores 2, not 1+2).
    muccg/rdrf calculated_functions.py (half-open LDL bands; adults only; issue #867).
    Summarised in docs/clinical-reference.md §1.

Decisions:
    * Highest item per group only; group caps therefore follow from the table (2, 2, 6, 8, 8).
    * LDL bands are half-open [4.0,5.0) [5.0,6.5) [6.5,8.5) >=8.5 on the highest estimated
      untreated LDL-C (``ldl_untreated_estimate_mmol``), compared at 2 decimals.
    * "> 95th percentile" uses the approximate Nordic percentile model (``lipids.ldl_percentile``)
      or a recorded family-history item.
    * Age < 18 -> ``out_of_scope`` (DLCN is not valid in children); no LDL-C ->
      ``not_calculable``. In both cases ``dlcn_points`` is null and never 0.
    * Sex U: "premature" uses the men's age (the stricter cut-off).
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, fmt_mmol, fmt_int, premature_age, reported

RULE = reference.load("dlcn_v1")
NAME, VERSION = RULE["name"], RULE["version"]
TABLE: dict[str, list[dict]] = {g["group"]: g["items"] for g in RULE["groups"]}
GROUP_COLUMN = {
    "family_history": "dlcn_family_points",
    "clinical_history": "dlcn_clinical_points",
    "physical_examination": "dlcn_exam_points",
    "ldl": "dlcn_ldl_points",
    "dna": "dlcn_dna_points",
}


def _flag(col: str) -> pl.Expr:
    return pl.col(col).fill_null(False)


def _premature(age_col: str) -> pl.Expr:
    return (pl.col(age_col) < premature_age(pl.col("sex"), RULE["premature_age"])).fill_null(False)


def _ldl_band(item: dict) -> pl.Expr:
    ldl = reported("ldl_untreated_estimate_mmol")
    cond = ldl >= item["lower"]
    if item["upper"] is not None:
        cond = cond & (ldl < item["upper"])
    return cond.fill_null(False)


def evidence() -> dict[str, pl.Expr]:
    """Item code -> boolean expression over ``patient_features`` (where the item applies)."""
    p95 = RULE["percentile_cutoff"]
    ev = {
        "fdr_premature_chd": _flag("fdr_premature_chd") | _flag("fhx_premature_chd_first_degree"),
        "fdr_ldl_above_p95": (pl.col("fdr_ldl_pct_max") > p95).fill_null(False)
        | _flag("fhx_high_ldl_first_degree_adult"),
        "fdr_xanthoma_or_arcus": _flag("fdr_xanthoma_or_arcus"),
        "child_ldl_above_p95": (pl.col("child_ldl_pct_max") > p95).fill_null(False)
        | _flag("fhx_high_ldl_child_relative"),
        "premature_chd": _premature("chd_first_age") | _flag("fhx_premature_chd_self"),
        "premature_cerebral_or_peripheral": _premature("other_cvd_first_age") | _flag("fhx_premature_pvd_self"),
        "tendon_xanthoma": _flag("fhx_tendon_xanthoma"),
        "arcus_before_45": _flag("fhx_arcus_before_45"),
        "causative_variant": _flag("clinic_dna_variant"),  # fh_genetic outcome only (dna_causative_only)
    }
    ev.update({item["code"]: _ldl_band(item) for item in TABLE["ldl"]})
    return ev


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add dlcn_points, dlcn_category, dlcn_status, per-group points and ``dlcn_item_<code>``."""
    ev = evidence()
    item_cols = [ev[item["code"]].alias(f"dlcn_item_{item['code']}") for items in TABLE.values() for item in items]
    lf = lf.with_columns(item_cols)
    group_cols = []
    for group, items in TABLE.items():
        pts = [pl.when(pl.col(f"dlcn_item_{i['code']}")).then(pl.lit(i["points"])).otherwise(0) for i in items]
        group_cols.append(pl.max_horizontal(pts).cast(pl.Int32).alias(GROUP_COLUMN[group]))
    lf = lf.with_columns(group_cols)
    status = (
        pl.when(pl.col("age_years") < RULE["adult_age"]).then(pl.lit("out_of_scope"))
        .when(pl.col("ldl_untreated_estimate_mmol").is_null()).then(pl.lit("not_calculable"))
        .otherwise(pl.lit("scored"))
    )
    total = pl.sum_horizontal(pl.col(c) for c in GROUP_COLUMN.values())
    scored = pl.col("dlcn_status") == "scored"
    lf = lf.with_columns(status.alias("dlcn_status")).with_columns(
        pl.when(scored).then(total).cast(pl.Int32).alias("dlcn_points"),
        *[pl.when(scored).then(pl.col(c)).alias(c) for c in GROUP_COLUMN.values()],
    )
    category = pl.lit("not_calculable")
    for cat in sorted(RULE["categories"], key=lambda c: c["min_points"]):
        category = pl.when(pl.col("dlcn_points") >= cat["min_points"]).then(pl.lit(cat["category"])).otherwise(category)
    return lf.with_columns(category.alias("dlcn_category"))


def _counted(group: str) -> list[tuple[dict, pl.Expr]]:
    """(item, counted) per item: counted = the item fired and is the first with the group's points."""
    out, earlier = [], pl.lit(False)
    for item in sorted(TABLE[group], key=lambda i: -i["points"]):
        fired = pl.col(f"dlcn_item_{item['code']}")
        out.append((item, fired & ~earlier))
        earlier = earlier | fired
    return out


def criteria() -> list[Criterion]:
    """Every DLCN item that applies, counted or not (machine codes ``dlcn.<item>``)."""
    scored = pl.col("dlcn_status") == "scored"
    return [Criterion(scored & pl.col(f"dlcn_item_{i['code']}"), f"dlcn.{i['code']}")
            for items in TABLE.values() for i in items]


def status_reasons() -> list[Reason]:
    """The score and category, or why there is none."""
    return [
        Reason(pl.col("dlcn_status") == "scored", "dlcn_score",
               {"points": fmt_int("dlcn_points"), "category": pl.col("dlcn_category")}),
        Reason(pl.col("dlcn_status") == "out_of_scope", "dlcn_out_of_scope", {"age": fmt_int("age_years")}),
        Reason(pl.col("dlcn_status") == "not_calculable", "dlcn_not_calculable"),
    ]


def item_reasons() -> list[Reason]:
    """The counted item of each group, in table order."""
    scored = pl.col("dlcn_status") == "scored"
    out = []
    for group in TABLE:
        for item, counted in _counted(group):
            params = {"points": pl.lit(str(item["points"]))}
            code = f"dlcn_{item['code']}"
            if group == "ldl":
                # The band as compared: half-open, so the words can never contradict the value.
                code = "dlcn_ldl_band" if item["upper"] is not None else "dlcn_ldl_band_top"
                params |= {"estimate": fmt_mmol("ldl_untreated_estimate_mmol"), "basis": pl.col("ldl_estimate_basis"),
                           "lower": pl.lit(f"{item['lower']:.1f}")}
                if item["upper"] is not None:
                    params |= {"upper": pl.lit(f"{item['upper']:.1f}")}
            elif group == "dna":
                params |= {"gene": pl.col("clinic_gene").fill_null("gene not stated")}
            out.append(Reason(scored & counted, code, params))
    return out


def missing() -> list[Reason]:
    """Inputs that could raise the score if they were recorded (adults with LDL-C)."""
    scored = pl.col("dlcn_status") == "scored"
    return [
        Reason(scored & ~_flag("fhx_any_recorded") & (pl.col("n_fdr").fill_null(0) == 0),
               "family_history_not_recorded"),
        Reason(scored & ~(_flag("fhx_tendon_xanthoma") | _flag("fhx_arcus_before_45")),
               "physical_exam_not_recorded"),
        Reason(scored & pl.col("clinic_gene").is_null() & ~_flag("clinic_dna_variant"), "dna_test_not_recorded"),
    ]
