"""Secondary causes of high LDL-C around the scoring sample, version 2: graded.

Each finding is graded (``reference/rules/secondary_v2.yaml``): a cause that could explain the
LDL-C level routes the patient to ``check_secondary_cause_first``; a weaker one is shown as
information and does not change the route. The evidence window (+/-90 days of THE scoring
LDL-C sample, ALP and GGT within 14 days before) is applied in ``features.build``.

References:
    FIND trial exclusion criteria, Region Syddanmark, NCT05614219. NICE CG71 secondary causes.
    NICE NG145 Thyroid disease (2019). WHO 2011 HbA1c for diagnosing diabetes. NCQA HEDIS HbA1c
    poor control (> 9.0%). KDIGO 2021 glomerular diseases (nephrotic range ACR > 220 mg/mmol).
    Herink & Ito, Medication induced changes in lipid and lipoprotein levels, Endotext 2018.

Decisions (ids in the YAML):
    * secondary_graded: explains -> check first; information -> shown only. TSH >= 10 explains,
      TSH > 4.0 and < 10 is information; HbA1c >= 75 explains, 48-74 information; albumin < 30
      with ACR >= 220 explains, with ACR 30-219 information; TG > 4.0 and cholestasis explain;
      eGFR < 30 is information; drugs per their grade.
    * hiv_prep_not_lipid_raising: J05AR is not listed; J05AE protease inhibitors are.
    * flag_not_exclude: the scores are still computed.
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, fmt_date, fmt_number

RULE = reference.load("secondary_v2")
NAME, VERSION = RULE["name"], RULE["version"]
T = RULE["thresholds"]
DRUGS: dict[str, dict] = RULE["drug_atc_prefixes"]


def _drug(grade: str | None = None) -> pl.Expr:
    """The dispensed drug's (name, grade) by the longest matching ATC prefix."""
    out = pl.lit(None, dtype=pl.Utf8)
    for prefix, spec in sorted(DRUGS.items(), key=lambda kv: len(kv[0])):
        value = spec["grade"] if grade == "grade" else spec["name"]
        out = pl.when(pl.col("sec_drug_atc").str.starts_with(prefix)).then(pl.lit(value)).otherwise(out)
    return out


def findings() -> dict[str, tuple[pl.Expr, str]]:
    """Finding code -> (boolean expression over ``patient_features``, grade)."""
    tsh, hba1c = pl.col("sec_tsh_max_miu_l"), pl.col("sec_hba1c_max_mmol_mol")
    low_albumin = pl.col("sec_albumin_min_g_l") < T["albumin_below_g_l"]
    uacr = pl.col("sec_uacr_max_mg_mmol")
    return {
        "tsh_high": (tsh >= T["tsh_explains_at_or_above_miu_l"], "explains"),
        "tsh_raised": ((tsh > T["tsh_above_miu_l"]) & (tsh < T["tsh_explains_at_or_above_miu_l"]), "information"),
        "hba1c_high": (hba1c >= T["hba1c_explains_at_or_above_mmol_mol"], "explains"),
        "hba1c_diabetes": ((hba1c >= T["hba1c_at_or_above_mmol_mol"]) & (hba1c < T["hba1c_explains_at_or_above_mmol_mol"]),
                           "information"),
        "tg_high": (pl.col("sec_tg_max_mmol").round(2) > T["tg_above_mmol_l"], "explains"),
        "nephrotic": (low_albumin & (uacr >= T["uacr_nephrotic_at_or_above_mg_mmol"]), "explains"),
        "albuminuria": (low_albumin & (uacr > T["uacr_above_mg_mmol"]) & (uacr < T["uacr_nephrotic_at_or_above_mg_mmol"]),
                        "information"),
        "cholestasis": ((pl.col("sec_alp_max_u_l") > T["alp_above_u_l"]) & (pl.col("sec_ggt_max_u_l") > T["ggt_above_u_l"]),
                        "explains"),
        "ckd": (pl.col("sec_egfr_min") < T["egfr_below"], "information"),
        "drug": (_drug("grade") == "explains", "explains"),
        "drug_minor": (_drug("grade") == "information", "information"),
    }


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``sec_<finding>`` booleans and ``secondary_probable`` (a cause that explains)."""
    found = findings()
    lf = lf.with_columns(expr.fill_null(False).alias(f"sec_{code}") for code, (expr, _) in found.items())
    explains = [code for code, (_, grade) in found.items() if grade == "explains"]
    return lf.with_columns(pl.any_horizontal(pl.col(f"sec_{c}") for c in explains).alias("secondary_probable"))


def _params(code: str) -> dict:
    value = lambda col, day: {"value": fmt_number(col), "date": fmt_date(day)}  # noqa: E731
    return {
        "tsh": value("sec_tsh_max_miu_l", "sec_tsh_date"),
        "hba1c": value("sec_hba1c_max_mmol_mol", "sec_hba1c_date"),
        "tg": value("sec_tg_max_mmol", "sec_tg_date"),
        "nephrotic": {"albumin": fmt_number("sec_albumin_min_g_l"), "uacr": fmt_number("sec_uacr_max_mg_mmol"),
                      "date": fmt_date("sec_albumin_date")},
        "cholestasis": {"alp": fmt_number("sec_alp_max_u_l"), "ggt": fmt_number("sec_ggt_max_u_l"),
                        "date": fmt_date("sec_alp_date")},
        "ckd": value("sec_egfr_min", "sec_egfr_date"),
        "drug": {"drug": _drug(), "atc": pl.col("sec_drug_atc"), "date": fmt_date("sec_drug_date")},
    }[code]


# finding -> (template code, information template code or None)
_TEMPLATES = {"tsh_high": "sec_tsh", "tsh_raised": "sec_tsh_info", "hba1c_high": "sec_hba1c",
              "hba1c_diabetes": "sec_hba1c_info", "tg_high": "sec_tg", "nephrotic": "sec_nephrotic",
              "albuminuria": "sec_nephrotic_info", "cholestasis": "sec_cholestasis", "ckd": "sec_ckd_info",
              "drug": "sec_drug", "drug_minor": "sec_drug_info"}
_PARAMS = {"tsh_high": "tsh", "tsh_raised": "tsh", "hba1c_high": "hba1c", "hba1c_diabetes": "hba1c", "tg_high": "tg",
           "nephrotic": "nephrotic", "albuminuria": "nephrotic", "cholestasis": "cholestasis", "ckd": "ckd",
           "drug": "drug", "drug_minor": "drug"}


def reasons(grade: str | None = None) -> list[Reason]:
    """One item per finding with its value and date ("TSH 14 mIU/L on 2025-03-02"); ``grade``
    keeps only the causes that explain (the worklist's secondary-cause line) or the information."""
    return [Reason(pl.col(f"sec_{code}"), _TEMPLATES[code], _params(_PARAMS[code]))
            for code, (_, g) in findings().items() if grade is None or g == grade]


def criteria() -> list[Criterion]:
    return [Criterion(pl.col(f"sec_{code}"), f"secondary.{code}") for code in findings()]


def missing() -> list[Reason]:
    """Tests the FIND exclusions need that were not taken near the scoring sample."""
    has_ldl = pl.col("ldl_untreated_estimate_mmol").is_not_null()
    return [
        Reason(has_ldl & pl.col("sec_tsh_max_miu_l").is_null(), "tsh_not_measured"),
        Reason(has_ldl & pl.col("sec_hba1c_max_mmol_mol").is_null(), "hba1c_not_measured"),
        Reason(has_ldl & pl.col("sec_tg_max_mmol").is_null(), "tg_not_measured"),
    ]
