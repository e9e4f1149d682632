"""Time ``features.build_features`` on synthetic curated tables, as a ratio to a floor.

    .venv/bin/python benchmarks/bench_features.py [--people 100000] [--seed 11]

About 6 lipid results, 1 other lab result and 0.7 dispensings per patient, one relation per
patient, sparse diagnoses. ``make_inputs`` reduces the lab results to day rows in DuckDB
(``store.labs``), as the features step reads them from the store; that is part of building the
inputs, not of ``build_features``. Floor: polars alone finds the highest LDL-C per patient in
the same lab results, the least any feature build must do. Prints figures only.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl

from fh_screen.stages.features.build import build_features, make_inputs

from floor import AS_OF, ratio_line, synthetic_input, timed


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
    return labs, make_inputs(patients=patients, lab_results=labs, medications=meds, relations=relations,
                             diagnoses=diagnoses)


def floor(labs: pl.DataFrame) -> int:
    """The floor: the highest LDL-C per patient, nothing else."""
    return labs.lazy().filter(pl.col("analyte") == "ldl").group_by("patient_id").agg(pl.col("value").max()).collect().height


def main() -> None:
    n, (labs, inputs), build_s = synthetic_input(__doc__, synthetic_inputs, 100_000,
                                                 "patients in the synthetic tables (default 100,000)", 11)
    with_ldl, floor_s, _ = timed(lambda: floor(labs))
    feats, wall, cpu = timed(lambda: build_features(inputs, AS_OF))
    print(f"patients: {n:,}; lab results: {labs.height:,} ({inputs.lab_days.height:,} days); dispensings: {inputs.medications.height:,}; "
          f"inputs built in {build_s:.1f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"floor (polars: highest LDL-C per patient, {with_ldl:,} patients): {floor_s:.3f} s")
    print(f"build_features: wall {wall:.2f} s, CPU {cpu:.2f} s; {feats.width} columns; "
          f"with LDL-C {feats['ldl_untreated_estimate_mmol'].is_not_null().sum():,}; "
          f"treated at estimate {feats['ldl_estimate_treated'].sum():,}")
    print(ratio_line("build_features", wall, floor_s))


if __name__ == "__main__":
    main()
