"""Simon Broome (SB) diagnostic criteria, version 1: definite / possible FH.

References:
    Simon Broome Register Group criteria as reproduced in NICE CG71 Appendix F (NBK53810);
    All-Wales FH service; BMC Cardiovasc Disord 2017 (s12872-017-0694-z, Table 1);
    Am J Prev Cardiol (PMC9061634). Summarised in docs/clinical-reference.md §2.

Decisions:
    * Criterion A: TC > 7.5 or LDL-C > 4.9 mmol/L (adult, >= 16 y); TC > 6.7 or LDL-C > 4.0
      (child, < 16 y), at the age of the sample tested, compared at 2 decimals.
    * Pre-treatment values; if the patient has none, the highest on-treatment value (SB wording).
    * Definite: A + tendon xanthoma (patient, first- or second-degree relative), or DNA alone.
    * Possible: A + MI < 60 in a first-degree / < 50 in a second-degree relative (coded CHD onset,
      or the recorded item premature_chd_first_degree), or raised cholesterol in a relative
      (TC from relatives' records, a relative with confirmed FH, or a recorded item).
    * No TC, no LDL-C and no DNA result: ``not_calculable``.
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, reported

RULE = reference.load("simon_broome_v1")
NAME, VERSION = RULE["name"], RULE["version"]


def _threshold_met(value: str, age: str, value_t: str, age_t: str, kind: str) -> pl.Expr:
    """Is the pre-treatment value (else the treated one) above the threshold for its age?"""
    use_untreated = pl.col(value_t).is_not_null()
    v = pl.when(use_untreated).then(pl.col(value_t)).otherwise(pl.col(value))
    a = pl.when(use_untreated).then(pl.col(age_t)).otherwise(pl.col(age))
    limit = pl.when(a < RULE["child_age"]).then(RULE["cholesterol"]["child"][kind]) \
        .otherwise(RULE["cholesterol"]["adult"][kind])
    return (reported(v) > limit).fill_null(False)


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``simon_broome`` (definite|possible|not_met|not_calculable) and its parts."""
    f = lambda c: pl.col(c).fill_null(False)  # noqa: E731 - local shorthand
    a_ldl = _threshold_met("ldl_max_mmol", "ldl_max_age", "ldl_max_untreated_mmol", "ldl_max_untreated_age", "ldl_above")
    a_tc = _threshold_met("tc_max_mmol", "tc_max_age", "tc_max_untreated_mmol", "tc_max_untreated_age", "tc_above")
    xanthoma = f("fhx_tendon_xanthoma") | f("fdr_tendon_xanthoma") | f("sdr_tendon_xanthoma")
    family_mi = f("fdr_chd_before_60") | f("sdr_chd_before_50") | f("fhx_premature_chd_first_degree")
    family_chol = (f("fdr_tc_raised") | f("sdr_tc_raised") | f("fdr_confirmed_fh") | f("fhx_fh_first_degree")
                   | f("fhx_high_ldl_first_degree_adult") | f("fhx_high_ldl_child_relative"))
    lf = lf.with_columns(
        (a_ldl | a_tc).alias("sb_cholesterol"), xanthoma.alias("sb_xanthoma"),
        family_mi.alias("sb_family_mi"), family_chol.alias("sb_family_cholesterol"),
    )
    dna = f("clinic_dna_variant")
    no_input = pl.col("ldl_max_mmol").is_null() & pl.col("tc_max_mmol").is_null()
    result = (
        pl.when(dna | (pl.col("sb_cholesterol") & pl.col("sb_xanthoma"))).then(pl.lit("definite"))
        .when(no_input).then(pl.lit("not_calculable"))
        .when(pl.col("sb_cholesterol") & (pl.col("sb_family_mi") | pl.col("sb_family_cholesterol")))
        .then(pl.lit("possible"))
        .otherwise(pl.lit("not_met"))
    )
    return lf.with_columns(result.alias("simon_broome"))


def reasons() -> list[Reason]:
    return [
        Reason(pl.col("simon_broome") == "definite", "simon_broome_definite"),
        Reason(pl.col("simon_broome") == "possible", "simon_broome_possible"),
    ]


def criteria() -> list[Criterion]:
    return [
        Criterion(pl.col("simon_broome") == "definite", "simon_broome.definite"),
        Criterion(pl.col("simon_broome") == "possible", "simon_broome.possible"),
    ]
