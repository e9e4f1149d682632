"""LDL-C interpretation for relatives of a known FH index case (age- and sex-specific).

A relative starts from a 50% prior, so lower cut-offs apply than for the general
population. The table lives in ``reference/relatives_ldl_cutoffs.csv`` with its version,
source and the attribution caveat (Australian FH registry code; attributed from memory,
unverified, to Starr et al. 2008; shared/clinical §8).

Decisions:
    * Half-open intervals, as the registry code does: unlikely ``LDL < uncertain_from``;
      uncertain ``uncertain_from <= LDL < likely_from``; likely ``LDL >= likely_from``.
    * Age is whole years at the date of the sample, since LDL-C rises with age.
    * Sex ``U`` (unknown): both tables are applied; when they agree that result stands,
      otherwise the result is ``uncertain``.
    * A censored value (``<x`` / ``>x``) is interpreted at its bound.
    * The result describes a lipid level, not a diagnosis: a DNA test for the family's
      variant is the definitive test (NICE CG71).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import polars as pl

CUTOFFS = Path(__file__).with_name("reference") / "relatives_ldl_cutoffs.csv"
RESULTS = ("unlikely", "uncertain", "likely")


@lru_cache(maxsize=1)
def cutoffs() -> pl.DataFrame:
    """The cut-off table; ``age_max`` null means no upper bound."""
    return pl.read_csv(
        CUTOFFS,
        comment_prefix="#",
        schema={
            "sex": pl.Utf8,
            "age_min": pl.Int32,
            "age_max": pl.Int32,
            "uncertain_from": pl.Float64,
            "likely_from": pl.Float64,
        },
    )


def table_version() -> str:
    for line in CUTOFFS.read_text(encoding="utf-8").splitlines():
        if line.startswith("# version:"):
            return line.split(":", 1)[1].strip()
    raise ValueError("relatives_ldl_cutoffs.csv has no version line")


def _classify_one_sex(frame: pl.DataFrame, sex: str) -> pl.Series:
    table = cutoffs().filter(pl.col("sex") == sex)
    joined = frame.with_row_index("_row").join_where(
        table,
        pl.col("age_years") >= pl.col("age_min"),
        pl.col("age_years") < pl.col("age_max").fill_null(10_000),
    )
    joined = joined.with_columns(
        pl.when(pl.col("ldl_mmol") >= pl.col("likely_from"))
        .then(pl.lit("likely"))
        .when(pl.col("ldl_mmol") >= pl.col("uncertain_from"))
        .then(pl.lit("uncertain"))
        .otherwise(pl.lit("unlikely"))
        .alias("_result")
    )
    back = frame.with_row_index("_row").join(joined.select("_row", "_result"), on="_row", how="left")
    return back.sort("_row")["_result"]


def classify(frame: pl.DataFrame) -> pl.Series:
    """Result per row of ``frame`` (columns sex, age_years, ldl_mmol): likely/uncertain/unlikely.

    Rows with a missing value or a negative age get null (the caller reports them as not
    classifiable rather than guessing).
    """
    frame = frame.select(
        pl.col("sex").cast(pl.Utf8), pl.col("age_years").cast(pl.Int32), pl.col("ldl_mmol").cast(pl.Float64)
    )
    male = _classify_one_sex(frame, "M")
    female = _classify_one_sex(frame, "F")
    return (
        pl.DataFrame({"sex": frame["sex"], "m": male, "f": female})
        .select(
            pl.when(pl.col("m").is_null() | pl.col("f").is_null())
            .then(None)
            .when(pl.col("sex") == "M")
            .then(pl.col("m"))
            .when(pl.col("sex") == "F")
            .then(pl.col("f"))
            .otherwise(pl.when(pl.col("m") == pl.col("f")).then(pl.col("m")).otherwise(pl.lit("uncertain")))
            .alias("result")
        )
        .get_column("result")
    )


def cutoff_for(sex: str, age_years: int) -> tuple[float, float] | None:
    """(uncertain_from, likely_from) for one sex and age, for plain-language details."""
    row = cutoffs().filter(
        (pl.col("sex") == sex) & (pl.col("age_min") <= age_years) & (pl.col("age_max").fill_null(10_000) > age_years)
    )
    if row.height == 0:
        return None
    return float(row["uncertain_from"][0]), float(row["likely_from"][0])
