"""Deliberately bad lab rows, so ingestion and validation have something real to catch.

Injected only when ``faults.dirty_fraction`` > 0 (default 0.0005 of lab rows in the full
delivery); every injected row is listed in ``ground_truth/injected_faults.csv``.
Kinds, one each in turn: an unparseable value, an unknown unit, a result for a patient not
in ``patients``, a sampling date after the delivery date, and a second row reusing an
existing ``result_id`` in the same file (placed right after the original). Deliveries of
1,000 rows or more get at least one fault of each kind; tiny ones get ``round(fraction * rows)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

KINDS = ["unparseable_value", "unknown_unit", "unknown_patient", "future_date", "duplicate_result_id"]
COLUMN = {"unparseable_value": "value", "unknown_unit": "unit", "unknown_patient": "patient_id",
          "future_date": "sampled_at", "duplicate_result_id": "result_id"}
MIN_ROWS_FOR_EVERY_KIND = 1000  # from this size on, each kind occurs at least once
SCHEMA = {"table": pl.String, "result_id": pl.String, "patient_id": pl.String, "fault": pl.String,
          "column": pl.String, "delivered_value": pl.String}


def inject(rng: np.random.Generator, labs: pl.DataFrame, fraction: float, as_of: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the lab rows with faults applied and the list of faults."""
    if fraction <= 0 or labs.height == 0:
        return labs, pl.DataFrame(schema=SCHEMA)
    k = round(fraction * labs.height)
    if labs.height >= MIN_ROWS_FOR_EVERY_KIND:
        k = max(k, len(KINDS))
    if k == 0:
        return labs, pl.DataFrame(schema=SCHEMA)
    rows = np.sort(rng.choice(labs.height, size=k, replace=False))
    kind = np.arange(k) % len(KINDS)
    at = {name: rows[kind == i] for i, name in enumerate(KINDS)}
    unknown_ids = [f"P9{x:06d}" for x in rng.choice(1_000_000, size=len(at["unknown_patient"]), replace=False)]
    future = [as_of + timedelta(days=int(d), hours=9) for d in rng.integers(30, 400, len(at["future_date"]))]
    patches = {
        "value": (at["unparseable_value"], ["abc"] * len(at["unparseable_value"])),
        "unit": (at["unknown_unit"], ["mmol/X"] * len(at["unknown_unit"])),
        "patient_id": (at["unknown_patient"], unknown_ids),
        "sampled_at": (at["future_date"], future),
    }
    columns = []
    for name in labs.columns:
        series = labs[name]
        if name in patches and len(patches[name][0]):
            where, values = patches[name]
            series = series.clone().scatter(where, pl.Series(values, dtype=series.dtype))
        columns.append(series)
    df = pl.DataFrame(columns)
    dup = df[at["duplicate_result_id"]].with_columns(value=pl.lit("7.7"), status=pl.lit("final"))
    position = np.concatenate([np.arange(df.height, dtype=float), at["duplicate_result_id"] + 0.5])
    out = pl.concat([df, dup]).gather(np.argsort(position, kind="stable"))
    faulty = df[rows].with_columns(fault=pl.Series([KINDS[i] for i in kind]))
    delivered = [
        (row["sampled_at"].strftime("%Y-%m-%dT%H:%M:%S") if COLUMN[f] == "sampled_at" else row[COLUMN[f]])
        for row, f in zip(faulty.iter_rows(named=True), faulty["fault"])
    ]
    listed = faulty.with_columns(table=pl.lit("lab_results"), column=pl.col("fault").replace_strict(COLUMN),
                                 delivered_value=pl.Series(delivered, dtype=pl.String)).select(list(SCHEMA))
    return out, listed
