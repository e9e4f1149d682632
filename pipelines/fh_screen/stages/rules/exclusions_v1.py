"""Who is not newly flagged, version 1: deceased, moved out, already diagnosed, under clinic care.

References:
    Data contract §1 (deceased and moved-out patients are never referred or written to);
    issue 4 policy; FH codes per docs/clinical-reference.md §10.3 (WHO E78.0, SKS DE780B, ICD-10-CM E78.01).

Decisions:
    * One reason per patient, in the order of ``priority`` in the YAML.
    * already_diagnosed: a diagnosis code in the E78.0 family, or a confirmed clinic outcome.
    * under_clinic_care: the latest outcome is ``pending``, or any outcome other than
      did_not_attend/declined within ``clinic_recent_days`` (365) of the run date.
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, fmt_date

RULE = reference.load("exclusions_v1")
NAME, VERSION = RULE["name"], RULE["version"]


def conditions() -> dict[str, pl.Expr]:
    days_since = (pl.col("as_of") - pl.col("clinic_last_outcome_date")).dt.total_days()
    last = pl.col("clinic_last_outcome")
    return {
        "deceased": pl.col("is_deceased").fill_null(False),
        "moved_out": pl.col("is_moved_out").fill_null(False),
        "already_diagnosed": pl.col("fh_diagnosis").fill_null(False) | pl.col("clinic_confirmed_fh").fill_null(False),
        "under_clinic_care": ((last == "pending")
                              | (~last.is_in(RULE["not_engaged_outcomes"]) & (days_since <= RULE["clinic_recent_days"])))
        .fill_null(False),
    }


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``excluded_reason`` (NULL when the patient may be flagged)."""
    cond = conditions()
    reason = pl.lit(None, dtype=pl.Utf8)
    for name in reversed(RULE["priority"]):
        reason = pl.when(cond[name]).then(pl.lit(name)).otherwise(reason)
    return lf.with_columns(reason.alias("excluded_reason"))


def reasons() -> list[Reason]:
    r = pl.col("excluded_reason")
    return [
        Reason(r == "deceased", "excluded_deceased"),
        Reason(r == "moved_out", "excluded_moved_out"),
        Reason((r == "already_diagnosed") & pl.col("fh_diagnosis").fill_null(False), "excluded_diagnosis_code",
               {"code": pl.col("fh_diagnosis_code"), "date": fmt_date("fh_diagnosis_date")}),
        Reason((r == "already_diagnosed") & ~pl.col("fh_diagnosis").fill_null(False), "excluded_confirmed_clinic",
               {"date": fmt_date("clinic_confirmed_date")}),
        Reason(r == "under_clinic_care", "excluded_under_clinic_care",
               {"outcome": pl.col("clinic_last_outcome"), "date": fmt_date("clinic_last_outcome_date")}),
    ]


def criteria() -> list[Criterion]:
    return [Criterion(pl.col("excluded_reason") == name, f"excluded.{name}") for name in RULE["priority"]]
