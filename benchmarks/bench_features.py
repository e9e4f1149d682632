"""Time ``features.build_features`` on synthetic curated tables.

Usage: PYTHONPATH=pipelines python benchmarks/bench_features.py [n_patients] [seed]

About 6 lipid results, 1 other lab result and 0.7 dispensings per patient, one relation per
patient, sparse diagnoses, family history and clinic outcomes. Prints figures only.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from fh_screen.stages.features.build import build_features, make_inputs

AS_OF = date(2026, 11, 23)


def synthetic_inputs(n: int, seed: int = 11):
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:07d}" for i in range(n)])
    patients = pl.DataFrame({
        "patient_id": ids,
        "birth_date": pl.Series(np.datetime64("1930-01-01") + rng.integers(0, 34000, n).astype("timedelta64[D]")),
        "sex": rng.choice(["M", "F"], n),
    }).with_columns(pl.col("birth_date").cast(pl.Date))
    n_panels = n * 2
    who = rng.integers(0, n, n_panels)
    day = np.datetime64("2012-01-01") + rng.integers(0, 5000, n_panels).astype("timedelta64[D]")
    ldl = np.clip(rng.normal(3.3, 1.0, n_panels), 0.5, 15)
    hdl = np.clip(rng.normal(1.5, 0.4, n_panels), 0.4, 4)
    tg = np.clip(rng.lognormal(0.2, 0.5, n_panels), 0.2, 20)
    frames = []
    for analyte, value in (("ldl", ldl), ("hdl", hdl), ("tg", tg), ("tc", ldl + hdl + tg / 2.2)):
        keep = rng.random(n_panels) < (0.5 if analyte == "ldl" else 1.0)
        frames.append(pl.DataFrame({"patient_id": ids[who[keep]], "sampled_at": day[keep].astype("datetime64[us]"),
                                    "analyte": analyte, "method": "measured", "value": value[keep]}))
    other_who = rng.integers(0, n, n)
    frames.append(pl.DataFrame({
        "patient_id": ids[other_who], "sampled_at": (np.datetime64("2012-01-01") + rng.integers(0, 5000, n)
                                                     .astype("timedelta64[D]")).astype("datetime64[us]"),
        "analyte": rng.choice(["tsh", "hba1c", "alp", "ggt", "egfr", "albumin"], n), "method": "measured",
        "value": rng.lognormal(2, 1, n)}))
    labs = pl.concat(frames).with_row_index("result_id").with_columns(pl.col("result_id").cast(pl.Utf8))
    m = int(n * 0.7)
    meds = pl.DataFrame({
        "patient_id": ids[rng.integers(0, n, m)],
        "atc_code": rng.choice(["C10AA01", "C10AA05", "C10AA07", "C10AX09", "H02AB06"], m),
        "dispensed_on": (np.datetime64("2012-01-01") + rng.integers(0, 5000, m).astype("timedelta64[D]")),
        "strength_mg": rng.choice([10.0, 20.0, 40.0, 80.0], m),
    }).with_columns(pl.col("dispensed_on").cast(pl.Date))
    relations = pl.DataFrame({"patient_id": ids, "relative_id": ids[rng.integers(0, n, n)],
                              "relationship": rng.choice(["parent", "child", "sibling"], n)})
    k = n // 20
    diagnoses = pl.DataFrame({"patient_id": ids[rng.integers(0, n, k)], "icd10_code": rng.choice(["I219", "I639", "E780B"], k),
                              "diagnosed_on": np.datetime64("2015-01-01") + rng.integers(0, 3000, k).astype("timedelta64[D]")}
                             ).with_columns(pl.col("diagnosed_on").cast(pl.Date))
    return make_inputs(patients=patients, lab_results=labs, medications=meds, relations=relations,
                       diagnoses=diagnoses)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    t0 = time.perf_counter()
    inputs = synthetic_inputs(n, int(sys.argv[2]) if len(sys.argv) > 2 else 11)
    t1, c1 = time.perf_counter(), time.process_time()
    feats = build_features(inputs, AS_OF)
    t2, c2 = time.perf_counter(), time.process_time()
    print(f"patients: {n:,}; lab results: {inputs.lab_results.height:,}; dispensings: {inputs.medications.height:,}; "
          f"inputs built in {t1 - t0:.1f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"build_features: wall {t2 - t1:.2f} s, CPU {c2 - c1:.2f} s; {feats.width} columns; "
          f"with LDL-C {feats['ldl_untreated_estimate_mmol'].is_not_null().sum():,}; "
          f"treated at estimate {feats['ldl_estimate_treated'].sum():,}")


if __name__ == "__main__":
    main()
