"""Age in completed years, the one definition every stage and output uses (a person is
39 until the day before their 40th birthday)."""

from __future__ import annotations

import polars as pl


def age_at(birth: pl.Expr, at: pl.Expr) -> pl.Expr:
    """Completed years between two dates."""
    years = at.dt.year() - birth.dt.year()
    before_birthday = (at.dt.month().cast(pl.Int32) * 100 + at.dt.day()) < (
        birth.dt.month().cast(pl.Int32) * 100 + birth.dt.day()
    )
    return (years - before_birthday.cast(pl.Int32)).cast(pl.Int32)
