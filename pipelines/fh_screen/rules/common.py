"""Shared pieces of the rule modules: value precision, reason items, formatting."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

# Lipid values are compared at 2 decimals (labs report 1-2 decimals in mmol/L; mg/dL integers
# convert to ~0.026 mmol/L steps). This removes unit-conversion float noise so that, e.g.,
# 4.9 mmol/L delivered as 189.48 mg/dL is still "not above 4.9".
PRECISION = 2


def reported(col: str | pl.Expr) -> pl.Expr:
    """A lab value at the precision the rules compare at."""
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.round(PRECISION)


@dataclass(frozen=True)
class Reason:
    """A reason (or missing-information) item: shown where ``when`` is true.

    ``params`` are display strings (see ``fmt_*``); ``fh_screen.rules.explain`` renders the
    same item in English and Danish from its template.
    """

    when: pl.Expr
    code: str
    params: dict[str, pl.Expr] = field(default_factory=dict)


@dataclass(frozen=True)
class Criterion:
    """A machine code listed in ``rule_results.criteria`` where ``when`` is true."""

    when: pl.Expr
    code: str


def fmt_fixed(col: str | pl.Expr, decimals: int = 1) -> pl.Expr:
    """A number with a fixed number of decimals as text (7.9, 15.3, 1.938)."""
    expr = pl.col(col) if isinstance(col, str) else col
    if decimals == 0:
        return expr.round(0).cast(pl.Int64).cast(pl.Utf8)
    text = expr.round(decimals).cast(pl.Utf8)
    # polars prints 7.0 as "7.0" and 1.9 at 3 decimals as "1.9": pad to the fixed width.
    frac = text.str.extract(r"\.(\d+)$").fill_null("")
    return text + pl.lit("0").repeat_by(pl.lit(decimals) - frac.str.len_chars()).list.join("")


def fmt_number(col: str | pl.Expr) -> pl.Expr:
    """A number with up to one decimal, without a trailing .0 (TSH 14, TSH 4.6)."""
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.round(1).cast(pl.Utf8).str.replace(r"\.0$", "")


def fmt_date(col: str | pl.Expr) -> pl.Expr:
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.cast(pl.Date).cast(pl.Utf8)


def fmt_int(col: str | pl.Expr) -> pl.Expr:
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.cast(pl.Int64).cast(pl.Utf8)


def premature_age(sex: pl.Expr, ages: dict[str, int]) -> pl.Expr:
    """Age below which coronary or vascular disease counts as premature, by sex."""
    return pl.when(sex == "M").then(ages["M"]).when(sex == "F").then(ages["F"]).otherwise(ages["U"])
