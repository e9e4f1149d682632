"""Shared pieces of the rule modules: value precision, reason items, formatting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import polars as pl

# Lipid values are compared at ``PRECISION`` decimals (``reported``); the features stage owns
# that definition because it judges relatives' LDL-C with the same comparison.
from fh_screen.stages.features.lipids import PRECISION, reported  # noqa: F401  (used by the rule modules)


@dataclass(frozen=True)
class Param:
    """A reason parameter: a raw value and how to show it.

    Formatting is deferred so that ``results.score`` formats only the rows where the reason
    applies (a few per patient), not a million values per parameter.
    """

    expr: pl.Expr
    fmt: Callable[[pl.Expr], pl.Expr]


@dataclass(frozen=True)
class Reason:
    """A reason (or missing-information) item: shown where ``when`` is true.

    ``params`` are :class:`Param` (numbers, dates) or string expressions; they become display
    strings and ``fh_screen.stages.rules.explain`` renders the item in English and Danish.
    """

    when: pl.Expr
    code: str
    params: dict[str, "Param | pl.Expr"] = field(default_factory=dict)

    def shown(self) -> dict[str, pl.Expr]:
        """The params as display strings (evaluate on rows where ``when`` holds)."""
        return {k: p.fmt(p.expr) if isinstance(p, Param) else p for k, p in self.params.items()}


@dataclass(frozen=True)
class Criterion:
    """A machine code listed in ``rule_results.criteria`` where ``when`` is true."""

    when: pl.Expr
    code: str


def _col(col: str | pl.Expr) -> pl.Expr:
    return pl.col(col) if isinstance(col, str) else col


def fmt_mmol(col: str | pl.Expr) -> Param:
    """A concentration as the rules compare it: rounded to ``PRECISION`` (2) decimals, printed
    with at least one (7.9, 4.97, 8.0). Printing fewer decimals than are compared made
    "4.97 is in the 4.0-4.9 band" read as "5.0 is in the 4.0-4.9 band"."""
    return Param(_col(col), lambda e: e.round(PRECISION).cast(pl.Utf8))


def fmt_factor(col: str | pl.Expr) -> Param:
    """A correction factor with up to three decimals (1.938, 1.43)."""
    return Param(_col(col), lambda e: e.round(3).cast(pl.Utf8))


def fmt_number(col: str | pl.Expr) -> Param:
    """A number at the 2 decimals thresholds are compared at, without a trailing .0 (TSH 14,
    TSH 4.6, triglycerides 4.01: never "4" for a value that is above 4.0)."""
    return Param(_col(col), lambda e: e.round(PRECISION).cast(pl.Utf8).str.replace(r"\.0$", ""))


def fmt_date(col: str | pl.Expr) -> Param:
    return Param(_col(col), lambda e: e.cast(pl.Date).cast(pl.Utf8))


def fmt_int(col: str | pl.Expr) -> Param:
    return Param(_col(col), lambda e: e.cast(pl.Int64).cast(pl.Utf8))


def premature_age(sex: pl.Expr, ages: dict[str, int]) -> pl.Expr:
    """Age below which coronary or vascular disease counts as premature, by sex."""
    return pl.when(sex == "M").then(ages["M"]).when(sex == "F").then(ages["F"]).otherwise(ages["U"])
