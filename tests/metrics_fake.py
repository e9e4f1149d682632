"""A small fake region in DuckDB for the metrics tests: contract tables plus the derived
tables the metrics read (rule_results, model_scores, referral_events, referral_ledger,
cascade_ledger), with the columns of the shared brief. Seeded, so every test sees the
same numbers."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from fh_screen.store import db

AS_OF = date(2026, 11, 23)


def _insert(con, table: str, frame: pl.DataFrame) -> None:
    con.register("_f", frame)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _f")
    con.unregister("_f")


def make_region_db(path: Path, prefix: str = "A", n: int = 600, seed: int = 1,
                   with_model: bool = True, with_cascade: bool = True, n_practices: int = 6) -> Path:
    """Write a fake region to ``path`` (a DuckDB file) and return the path."""
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    ages = rng.integers(5, 95, n)
    births = [AS_OF - timedelta(days=int(a * 365.25 + rng.integers(0, 365))) for a in ages]
    practices = [f"{prefix}P{k}" for k in rng.integers(0, n_practices, n)]
    practices = [None if rng.random() < 0.03 else p for p in practices]
    deceased = [AS_OF - timedelta(days=30) if rng.random() < 0.02 else None for _ in ids]
    patients = pl.DataFrame({
        "patient_id": ids, "birth_date": births, "sex": rng.choice(["F", "M", "U"], n, p=[0.5, 0.49, 0.01]),
        "practice_id": practices, "postcode": ["5000"] * n, "deceased_date": deceased,
        "moved_out_date": [None] * n, "delivery_id": ["d1"] * n,
    }, schema_overrides={"deceased_date": pl.Date, "moved_out_date": pl.Date})

    tested = rng.random(n) < 0.7
    labs, meds, outcomes = [], [], []
    ldl_base = rng.normal(3.4, 1.2, n).clip(0.8, 12)
    for i in np.flatnonzero(tested):
        for k in range(int(rng.integers(1, 3))):
            day = AS_OF - timedelta(days=int(rng.integers(200, 900)))
            labs.append((f"{prefix}R{i}-{k}", ids[i], day, "ldl", round(float(ldl_base[i]), 1),
                         "cancelled" if rng.random() < 0.05 else "final"))
    flagged = tested & ((ldl_base > 4.8) | (rng.random(n) < 0.05))
    referred = flagged & (rng.random(n) < 0.7)
    events, ledger = [], []
    for i in np.flatnonzero(flagged):
        first = AS_OF - timedelta(days=int(rng.integers(30, 330)))
        events.append((first, ids[i], "queued", practices[i], None, 0, None, None, None, "refer_lipid_clinic"))
        if not referred[i]:
            continue
        listed = first + timedelta(days=int(rng.integers(0, 40)))
        if listed > AS_OF:
            listed = AS_OF
        clinic = "LK-NORD" if rng.random() < 0.6 else "LK-SYD"
        prob = float(rng.beta(2, 5)) if with_model else None
        points = int(rng.integers(1, 12))
        events.append((listed, ids[i], "listed", practices[i], clinic, int(rng.integers(1, 50)), prob, points,
                       "probable", "refer_lipid_clinic"))
        ledger.append((ids[i], listed, listed, 1, clinic, "listed"))
        r = rng.random()
        outcome = ("fh_genetic" if r < 0.15 else "fh_clinical" if r < 0.3 else "not_fh" if r < 0.6
                   else "did_not_attend" if r < 0.7 else "declined" if r < 0.75 else "pending" if r < 0.85 else None)
        if outcome:
            visit = min(listed + timedelta(days=int(rng.integers(7, 200))), AS_OF)
            outcomes.append((ids[i], visit, outcome, "LDLR" if outcome == "fh_genetic" else None))
        if rng.random() < 0.5:
            meds.append((ids[i], "C10AA05", listed - timedelta(days=100), 20.0))
        if rng.random() < 0.6:
            meds.append((ids[i], "C10AA05", listed + timedelta(days=20), 40.0 if rng.random() < 0.5 else 20.0))
        if rng.random() < 0.6 and (listed + timedelta(days=60)) < AS_OF:
            labs.append((f"{prefix}F{i}", ids[i], listed + timedelta(days=60), "ldl",
                         round(float(ldl_base[i] - rng.uniform(0, 2)), 1), "final"))

    lab = pl.DataFrame(labs, schema=["result_id", "patient_id", "sampled_at", "analyte", "value", "status"],
                       orient="row").with_columns(
        pl.col("sampled_at").cast(pl.Datetime), pl.lit("measured").alias("method"), pl.lit("NPU01568").alias("code"),
        pl.lit("mmol/L").alias("unit"), pl.col("value").cast(pl.Utf8).alias("value_raw"),
        pl.lit("mmol/L").alias("unit_raw"), pl.lit("d1").alias("delivery_id"))

    rules = pl.DataFrame({
        "patient_id": ids, "age_years": ages.astype(int), "sex": patients["sex"], "practice_id": practices,
        "dlcn_points": [int(rng.integers(0, 10)) if t else None for t in tested],
        "simon_broome": rng.choice(["definite", "possible", "not_met"], n, p=[0.05, 0.15, 0.8]),
        "medped": rng.choice(["met", "not_met", "not_calculable"], n, p=[0.1, 0.8, 0.1]),
        "lab_flag": flagged & (rng.random(n) < 0.8),
        "paediatric": ["not_met"] * n,
        "route": ["refer_lipid_clinic" if f else "none" for f in flagged],
        "excluded_reason": [("already_diagnosed" if rng.random() < 0.01 else None) for _ in ids],
    })
    con = db.connect(path)
    try:
        _insert(con, "patients", patients)
        _insert(con, "lab_results", lab)
        if meds:
            _insert(con, "medications", pl.DataFrame(meds, schema=["patient_id", "atc_code", "dispensed_on",
                                                                   "strength_mg"], orient="row")
                    .with_columns(pl.lit("d1").alias("delivery_id")))
        if outcomes:
            _insert(con, "clinic_outcomes", pl.DataFrame(outcomes, schema=["patient_id", "outcome_date", "outcome",
                                                                           "gene"], orient="row")
                    .with_columns(pl.lit("d1").alias("delivery_id")))
        db.replace_table(con, "rule_results", rules)
        db.replace_table(con, "referral_events", pl.DataFrame(events, schema={
            "as_of": pl.Date, "patient_id": pl.Utf8, "event": pl.Utf8, "practice_id": pl.Utf8, "clinic_id": pl.Utf8,
            "rank": pl.Int32, "probability": pl.Float64, "dlcn_points": pl.Int32, "dlcn_category": pl.Utf8,
            "route": pl.Utf8}, orient="row"))
        db.replace_table(con, "referral_ledger", pl.DataFrame(ledger, schema={
            "patient_id": pl.Utf8, "first_listed_on": pl.Date, "last_listed_on": pl.Date, "times_listed": pl.Int32,
            "clinic_id": pl.Utf8, "status": pl.Utf8}, orient="row"))
        if with_model:
            db.replace_table(con, "model_scores", pl.DataFrame({
                "patient_id": ids, "probability": rng.beta(1, 20, n), "model_name": ["fh_gbm"] * n,
                "model_version": ["1"] * n, "reasons": [""] * n, "reason_items": ["[]"] * n}))
        if with_cascade:
            index = [i for i, r in enumerate(referred) if r][:40]
            rows = []
            for i in index:
                for k in range(int(rng.integers(1, 5))):
                    sent = AS_OF - timedelta(days=int(rng.integers(1, 100))) if rng.random() < 0.8 else None
                    result = (str(rng.choice(["likely", "unlikely", "uncertain", "fh_genetic", "not_fh"]))
                              if sent and rng.random() < 0.6 else None)
                    closed = sent + timedelta(days=int(rng.integers(0, 30))) if result else None
                    closed = closed if closed and closed <= AS_OF else None
                    rows.append((ids[i], f"{prefix}X{i}-{k}", "sibling", 1, "tested" if result else "untested",
                                 sent, None, closed, result, AS_OF))
                if rng.random() < 0.1:
                    rows.append((ids[i], None, None, None, "index_only", None, None, None, None, AS_OF))
            db.replace_table(con, "cascade_ledger", pl.DataFrame(rows, schema={
                "index_patient_id": pl.Utf8, "relative_id": pl.Utf8, "relationship": pl.Utf8, "degree": pl.Int32,
                "status": pl.Utf8, "letter_sent_on": pl.Date, "reminder_due": pl.Date, "closed_on": pl.Date,
                "result": pl.Utf8, "updated_on": pl.Date}, orient="row"))
    finally:
        con.close()
    return path


def make_joint_db(path: Path, regions: list[tuple[str, int, int]], **kwargs) -> Path:
    """One DuckDB holding several fake regions' rows (disjoint ids), as if run together."""
    con = db.connect(path)
    try:
        for prefix, n, seed in regions:
            part = path.with_name(f"{path.stem}-{prefix}.duckdb")
            make_region_db(part, prefix, n, seed, **kwargs)
            con.execute(f"ATTACH '{part}' AS src (READ_ONLY)")
            for table in ("patients", "lab_results", "medications", "clinic_outcomes"):
                con.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
            for table in ("rule_results", "referral_events", "referral_ledger", "model_scores", "cascade_ledger"):
                found = "SELECT count(*) FROM duckdb_tables() WHERE database_name = {} AND table_name = ?"
                if not con.execute(found.format("'src'"), [table]).fetchone()[0]:
                    continue
                if con.execute(found.format("current_database()"), [table]).fetchone()[0]:
                    con.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
                else:
                    con.execute(f"CREATE TABLE {table} AS SELECT * FROM src.{table}")
            con.execute("DETACH src")
    finally:
        con.close()
    return path
