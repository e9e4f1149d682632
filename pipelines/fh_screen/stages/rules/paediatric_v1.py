"""FH criteria for children and adolescents (EAS 2015), version 1.

References:
    Wiegman A et al., EAS Consensus Panel. Eur Heart J 2015;36:2425-37,
    doi:10.1093/eurheartj/ehv157.

Decisions (``reference/rules/paediatric_v1.yaml``):
    * children_eas2015: under 18 at the run date; untreated LDL-C sampled before 18, compared at
      2 decimals: second-highest >= 5.0 (two occasions); highest >= 4.0 with premature CHD in a
      first-degree relative or high cholesterol in a parent; highest >= 3.5 with a parent with a
      genetic diagnosis. ``paediatric``: met | not_met | not_calculable (no sample before 18) |
      not_applicable (adult).
    * adult_lab_flag_adults_only / no_model_for_children: applied in lab_flag_v1 and referrals.
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, fmt_date, fmt_mmol, reported

RULE = reference.load("paediatric_v1")
NAME, VERSION = RULE["name"], RULE["version"]


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``paediatric`` and the part that was met (``paediatric_basis``)."""
    top, second = reported("child_ldl_max_mmol"), reported("child_ldl_second_mmol")
    f = lambda c: pl.col(c).fill_null(False)  # noqa: E731
    twice = (second >= RULE["ldl_twice_at_or_above"]).fill_null(False)
    family = (top >= RULE["ldl_with_family_history_at_or_above"]).fill_null(False) & (
        f("fdr_premature_chd") | f("parent_high_cholesterol") | f("fhx_premature_chd_first_degree"))
    genetic = (top >= RULE["ldl_with_parent_genetic_at_or_above"]).fill_null(False) & f("parent_genetic_fh")
    child = pl.col("age_years") < RULE["child_age"]
    basis = (pl.when(twice).then(pl.lit("twice")).when(family).then(pl.lit("family"))
             .when(genetic).then(pl.lit("parent_genetic")))
    result = (pl.when(~child).then(pl.lit("not_applicable"))
              .when(pl.col("child_ldl_max_mmol").is_null()).then(pl.lit("not_calculable"))
              .when(basis.is_not_null()).then(pl.lit("met"))
              .otherwise(pl.lit("not_met")))
    return lf.with_columns(result.alias("paediatric"), pl.when(child).then(basis).alias("paediatric_basis"))


def reasons() -> list[Reason]:
    met = pl.col("paediatric") == "met"
    b = pl.col("paediatric_basis")
    ldl = {"ldl": fmt_mmol("child_ldl_max_mmol"), "date": fmt_date("child_ldl_max_date")}
    return [
        Reason(met & (b == "twice"), "paediatric_twice", {**ldl, "second": fmt_mmol("child_ldl_second_mmol")}),
        Reason(met & (b == "family"), "paediatric_family", ldl),
        Reason(met & (b == "parent_genetic"), "paediatric_parent_genetic", ldl),
        Reason(pl.col("paediatric") == "not_met", "paediatric_not_met", ldl),
    ]


def criteria() -> list[Criterion]:
    return [Criterion(pl.col("paediatric") == "met", "paediatric.met")]
