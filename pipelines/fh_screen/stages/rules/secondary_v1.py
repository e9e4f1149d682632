"""Secondary causes of high LDL-C near the high sample, version 1.

Flags findings that make a secondary (not familial) cause probable, so the GP checks them
before referring (route ``check_secondary_cause_first``). The evidence window (+/-90 days, ALP
and GGT within 14 days before) is applied in ``features.py``; thresholds are here.

References:
    FIND trial exclusion criteria, Region Syddanmark, NCT05614219 (docs/clinical-reference.md §6, §7).
    NICE CG71 secondary-cause list via the Devon formulary (docs/clinical-reference.md §6).
    KDIGO 2012 albuminuria and GFR categories (A3 > 30 mg/mmol; G4 < 30) (from memory).

Decisions:
    * TSH "above the lab reference": a configurable upper limit (default 4.0 mIU/L).
    * HbA1c >= 48 mmol/mol; TG > 4.0 mmol/L; albumin < 30 g/L AND urine ACR > 30 mg/mmol;
      ALP > 105 U/L AND GGT > 55 U/L; eGFR < 30; a listed drug dispensed in the 100 days before.
    * Flag, do not exclude: the scores are still computed (docs/clinical-reference.md §6 recommendation).
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, fmt_date, fmt_number

RULE = reference.load("secondary_v1")
NAME, VERSION = RULE["name"], RULE["version"]
T = RULE["thresholds"]


def findings() -> dict[str, pl.Expr]:
    """Finding code -> boolean expression over ``patient_features``."""
    return {
        "tsh_high": pl.col("sec_tsh_max_miu_l") > T["tsh_above_miu_l"],
        "hba1c_high": pl.col("sec_hba1c_max_mmol_mol") >= T["hba1c_at_or_above_mmol_mol"],
        "tg_high": pl.col("sec_tg_max_mmol").round(2) > T["tg_above_mmol_l"],
        "nephrotic": (pl.col("sec_albumin_min_g_l") < T["albumin_below_g_l"])
        & (pl.col("sec_uacr_max_mg_mmol") > T["uacr_above_mg_mmol"]),
        "cholestasis": (pl.col("sec_alp_max_u_l") > T["alp_above_u_l"]) & (pl.col("sec_ggt_max_u_l") > T["ggt_above_u_l"]),
        "ckd": pl.col("sec_egfr_min") < T["egfr_below"],
        "drug": pl.col("sec_drug_atc").is_not_null(),
    }


def _drug_name() -> pl.Expr:
    expr = pl.lit("lipid-raising drug")
    for prefix, name in sorted(RULE["drug_atc_prefixes"].items(), key=lambda kv: len(kv[0])):
        expr = pl.when(pl.col("sec_drug_atc").str.starts_with(prefix)).then(pl.lit(name)).otherwise(expr)
    return expr


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``sec_<finding>`` booleans and ``secondary_probable``."""
    cols = [expr.fill_null(False).alias(f"sec_{code}") for code, expr in findings().items()]
    lf = lf.with_columns(cols)
    return lf.with_columns(pl.any_horizontal(pl.col(f"sec_{c}") for c in findings()).alias("secondary_probable"))


def reasons() -> list[Reason]:
    """One item per finding, with its value and date (e.g. "TSH 14 mIU/L on 2025-03-02")."""
    return [
        Reason(pl.col("sec_tsh_high"), "sec_tsh", {"value": fmt_number("sec_tsh_max_miu_l"), "date": fmt_date("sec_tsh_date")}),
        Reason(pl.col("sec_hba1c_high"), "sec_hba1c",
               {"value": fmt_number("sec_hba1c_max_mmol_mol"), "date": fmt_date("sec_hba1c_date")}),
        Reason(pl.col("sec_tg_high"), "sec_tg", {"value": fmt_number("sec_tg_max_mmol"), "date": fmt_date("sec_tg_date")}),
        Reason(pl.col("sec_nephrotic"), "sec_nephrotic", {
            "albumin": fmt_number("sec_albumin_min_g_l"), "uacr": fmt_number("sec_uacr_max_mg_mmol"),
            "date": fmt_date("sec_albumin_date")}),
        Reason(pl.col("sec_cholestasis"), "sec_cholestasis", {
            "alp": fmt_number("sec_alp_max_u_l"), "ggt": fmt_number("sec_ggt_max_u_l"), "date": fmt_date("sec_alp_date")}),
        Reason(pl.col("sec_ckd"), "sec_ckd", {"value": fmt_number("sec_egfr_min"), "date": fmt_date("sec_egfr_date")}),
        Reason(pl.col("sec_drug"), "sec_drug", {
            "drug": _drug_name(), "atc": pl.col("sec_drug_atc"), "date": fmt_date("sec_drug_date")}),
    ]


def criteria() -> list[Criterion]:
    return [Criterion(pl.col(f"sec_{code}"), f"secondary.{code}") for code in findings()]


def missing() -> list[Reason]:
    """Tests the FIND exclusions need that were not taken near the high sample."""
    has_ldl = pl.col("ldl_untreated_estimate_mmol").is_not_null()
    return [
        Reason(has_ldl & pl.col("sec_tsh_max_miu_l").is_null(), "tsh_not_measured"),
        Reason(has_ldl & pl.col("sec_hba1c_max_mmol_mol").is_null(), "hba1c_not_measured"),
        Reason(has_ldl & pl.col("sec_tg_max_mmol").is_null(), "tg_not_measured"),
    ]
