"""LDL-C equations and the approximate LDL-C percentile, as polars expressions (mmol/L).

References:
    Friedewald WT, Levy RI, Fredrickson DS. Clin Chem 1972;18:499-502 (mmol/L: TC - HDL - TG/2.2).
    Sampson M et al. A new equation for calculation of low-density lipoprotein cholesterol in
    patients with normolipidemia and/or hypertriglyceridemia. JAMA Cardiol 2020;5:540-8
    (NIH equation 2, in mg/dL). Unit factors: cholesterol 38.67, triglycerides 88.57 mg/dL per
    mmol/L (docs/clinical-reference.md §10.2).
"""

from __future__ import annotations

import polars as pl
from scipy.special import ndtr

from fh_screen import reference

# Lipid values are compared at 2 decimals (labs report 1-2 decimals in mmol/L; mg/dL integers
# convert to ~0.026 mmol/L steps). This removes unit-conversion float noise so that, e.g.,
# 4.9 mmol/L delivered as 189.48 mg/dL is still "not above 4.9".
PRECISION = 2

CHOL_MG_DL_PER_MMOL = 38.67
TG_MG_DL_PER_MMOL = 88.57


def friedewald(tc: pl.Expr, hdl: pl.Expr, tg: pl.Expr) -> pl.Expr:
    """Friedewald LDL-C in mmol/L (no validity check: callers apply the TG limit)."""
    return tc - hdl - tg / 2.2


def sampson(tc: pl.Expr, hdl: pl.Expr, tg: pl.Expr) -> pl.Expr:
    """Sampson/NIH equation 2 LDL-C in mmol/L, computed in mg/dL as published."""
    tc_mg = tc * CHOL_MG_DL_PER_MMOL
    hdl_mg = hdl * CHOL_MG_DL_PER_MMOL
    tg_mg = tg * TG_MG_DL_PER_MMOL
    non_hdl = tc_mg - hdl_mg
    ldl_mg = (
        tc_mg / 0.948
        - hdl_mg / 0.971
        - (tg_mg / 8.56 + tg_mg * non_hdl / 2140 - tg_mg**2 / 16100)
        - 9.44
    )
    return ldl_mg / CHOL_MG_DL_PER_MMOL


def derived_ldl(tc: pl.Expr, hdl: pl.Expr, tg: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(LDL-C, equation name) from one sample's TC/HDL/TG, honouring each equation's TG limit.

    See ``reference/rules/ldl_estimation_v2.yaml`` for the precedence. Results <= 0 (possible
    at extreme inputs) are treated as not derivable.
    """
    cfg = reference.load("ldl_estimation_v2")["derivation"]
    s_ok = tg <= cfg["sampson_max_tg_mmol"]
    f_ok = tg <= cfg["friedewald_max_tg_mmol"]
    s_val, f_val = sampson(tc, hdl, tg), friedewald(tc, hdl, tg)
    if cfg["preferred_equation"] == "sampson":
        value = pl.when(s_ok).then(s_val)
        name = pl.when(s_ok).then(pl.lit("sampson"))
    else:
        value = pl.when(f_ok).then(f_val).when(s_ok).then(s_val)
        name = pl.when(f_ok).then(pl.lit("friedewald")).when(s_ok).then(pl.lit("sampson"))
    valid = value > 0
    return pl.when(valid).then(value), pl.when(valid).then(name)


def _normal_cdf(z: pl.Series) -> pl.Series:
    values = ndtr(z.cast(pl.Float64).to_numpy())
    return pl.Series(values, dtype=pl.Float64).fill_nan(None)


def ldl_percentile(ldl: pl.Expr, age: pl.Expr, sex: pl.Expr) -> pl.Expr:
    """Approximate LDL-C percentile (0-100) for age and sex; null for sex U or missing input.

    Approximate: a normal model per age/sex band (``reference/ldl_percentiles.csv``) derived from
    NORIP reference intervals and CGPS centiles (docs/clinical-reference.md §9, §13). No Danish percentile
    table was found, so values near the 95th percentile carry roughly +/-0.3 mmol/L uncertainty.
    """
    rows = reference.csv("ldl_percentiles").to_dicts()
    table = {s: [r for r in rows if r["sex"] == s] for s in ("M", "F")}
    mean = reference.by_sex(age, sex, table, "mean_mmol")
    sd = reference.by_sex(age, sex, table, "sd_mmol")
    z = (ldl - mean) / sd
    return z.map_batches(_normal_cdf, return_dtype=pl.Float64) * 100


def reported(col: str | pl.Expr) -> pl.Expr:
    """A lab value at the precision the rules compare at."""
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.round(PRECISION)


def relative_ldl_category(ldl: pl.Expr, age: pl.Expr, sex: pl.Expr) -> pl.Expr:
    """unlikely | uncertain | likely for a relative of a known FH case, or null when sex, age
    or LDL-C is unknown: the age- and sex-specific cut-offs of ``relatives_cutoffs_v1.yaml``
    (docs/clinical-reference.md §8), half-open bands. The rule ``relatives_cutoffs_v1``, the
    family items of the features and the cascade all judge with this one function."""
    table = reference.load("relatives_cutoffs_v1")["table"]
    uncertain = reference.by_sex(age, sex, table, "uncertain_from")
    likely = reference.by_sex(age, sex, table, "likely_from")
    value = reported(ldl)
    return (
        pl.when(value.is_null() | likely.is_null()).then(None)
        .when(value >= likely).then(pl.lit("likely"))
        .when(value >= uncertain).then(pl.lit("uncertain"))
        .otherwise(pl.lit("unlikely"))
    )
