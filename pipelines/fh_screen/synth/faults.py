"""Deliberately bad lab rows, so ingestion and validation have something real to catch.

Injected only when ``faults.dirty_fraction`` > 0 (default 0.0005 of lab rows in the full
delivery); every injected row is listed in ``ground_truth/injected_faults.csv``.
Kinds, one each in turn: an unparseable value, an unknown unit, a result for a patient not
in ``patients``, a sampling date after the delivery date, and a second row reusing an
existing ``result_id`` in the same file.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

KINDS = ["unparseable_value", "unknown_unit", "unknown_patient", "future_date", "duplicate_result_id"]


def inject(rng: np.random.Generator, labs: pl.DataFrame, fraction: float, as_of: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the lab rows with faults applied and the list of faults."""
    empty = pl.DataFrame(schema={"table": pl.String, "result_id": pl.String, "patient_id": pl.String,
                                 "fault": pl.String, "column": pl.String, "delivered_value": pl.String})
    if fraction <= 0 or labs.height == 0:
        return labs, empty
    k = min(labs.height, max(len(KINDS), round(fraction * labs.height)))
    rows = np.sort(rng.choice(labs.height, size=k, replace=False))
    kind = np.arange(k) % len(KINDS)
    at = lambda name: pl.Series(rows[kind == KINDS.index(name)])  # noqa: E731
    n_unknown = len(at("unknown_patient"))
    unknown_ids = [f"P9{x:06d}" for x in rng.choice(1_000_000, size=n_unknown, replace=False)]
    n_future = len(at("future_date"))
    future = [as_of + timedelta(days=int(d), hours=9) for d in rng.integers(30, 400, n_future)]
    df = labs.with_row_index("_row")
    row = pl.col("_row")

    def set_at(name: str, column: str, values) -> None:
        nonlocal df
        idx = at(name)
        patch = pl.DataFrame({"_row": idx.cast(pl.UInt32), "_new": pl.Series(values, dtype=df.schema[column])})
        df = (df.join(patch, on="_row", how="left", maintain_order="left")
                .with_columns(pl.coalesce(pl.col("_new"), pl.col(column)).alias(column)).drop("_new"))

    set_at("unparseable_value", "value", ["abc"] * len(at("unparseable_value")))
    set_at("unknown_unit", "unit", ["mmol/X"] * len(at("unknown_unit")))
    set_at("unknown_patient", "patient_id", unknown_ids)
    set_at("future_date", "sampled_at", future)
    dup = df.filter(row.is_in(at("duplicate_result_id").implode())).with_columns(value=pl.lit("7.7"), status=pl.lit("final"))
    out = pl.concat([df, dup]).sort("result_id", "_row", maintain_order=True).drop("_row")
    listed = (df.filter(row.is_in(pl.Series(rows).implode())).sort("_row")
              .with_columns(fault=pl.Series([KINDS[i] for i in kind]))
              .with_columns(
                  column=pl.col("fault").replace_strict({"unparseable_value": "value", "unknown_unit": "unit",
                                                         "unknown_patient": "patient_id", "future_date": "sampled_at",
                                                         "duplicate_result_id": "result_id"}),
                  delivered_value=pl.when(pl.col("fault") == "unparseable_value").then(pl.col("value"))
                  .when(pl.col("fault") == "unknown_unit").then(pl.col("unit"))
                  .when(pl.col("fault") == "unknown_patient").then(pl.col("patient_id"))
                  .when(pl.col("fault") == "future_date").then(pl.col("sampled_at").dt.strftime("%Y-%m-%dT%H:%M:%S"))
                  .otherwise(pl.col("result_id")),
                  table=pl.lit("lab_results"))
              .select(empty.columns))
    return out, listed
