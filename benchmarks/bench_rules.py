"""Time the rules on a synthetic patient_features frame, as ratios to a floor.

    .venv/bin/python benchmarks/bench_rules.py [--people 1000000] [--seed 7]

Builds the frame with numpy (realistic ranges, ~10% without LDL-C, sparse family and clinical
evidence), then times ``fh_screen.stages.rules.results.evaluate`` (scores, statuses, route) and
``score`` (everything incl. criteria, JSON reason items and English texts). Floor: polars
alone applies one LDL-C cut-off by age to the same frame, the least any rule must do.
Prints figures only.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl

from fh_screen.stages.features.build import feature_frame
from fh_screen.stages.rules.results import evaluate, score

from floor import AS_OF, ratio_line, synthetic_input, timed


def synthetic_features(n: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    template = feature_frame([{}], AS_OF)
    base = template.select(pl.all().repeat_by(n).explode())  # n copies of a patient with no records
    age = rng.integers(0, 95, n)
    has_ldl = rng.random(n) > 0.1
    ldl = np.where(has_ldl, np.clip(rng.normal(3.3, 1.0, n), 0.5, 16), np.nan)
    treated = has_ldl & (rng.random(n) < 0.15)
    factor = np.where(treated, rng.choice([1.377, 1.637, 1.938, 2.07, 1.43], n), 1.0)
    est_age = np.maximum(age - rng.integers(0, 10, n), 0)
    day = np.datetime64("2016-01-01") + rng.integers(0, 3600, n).astype("timedelta64[D]")
    sparse = lambda p: rng.random(n) < p  # noqa: E731
    maybe = lambda p, values: np.where(sparse(p), values, np.nan)  # noqa: E731
    cols = {
        "patient_id": [f"P{i:07d}" for i in range(n)],
        "age_years": age.astype(np.int32),
        "sex": rng.choice(["M", "F", "U"], n, p=[0.495, 0.495, 0.01]),
        "n_ldl_results": np.where(has_ldl, rng.integers(1, 8, n), 0).astype(np.int32),
        "ldl_max_mmol": ldl, "ldl_max_age": est_age.astype(np.int32), "ldl_max_date": day,
        "ldl_max_treated": treated,
        "ldl_max_untreated_mmol": np.where(treated, np.nan, ldl), "ldl_max_untreated_age": est_age.astype(np.int32),
        "ldl_untreated_estimate_mmol": ldl * factor, "ldl_estimate_measured_mmol": ldl,
        "ldl_estimate_age": est_age.astype(np.int32), "ldl_estimate_date": day, "ldl_estimate_treated": treated,
        "ldl_correction_factor": factor,
        "ldl_max_age_lt40_mmol": np.where(est_age < 40, ldl, np.nan),
        "ldl_max_age_ge40_mmol": np.where(est_age >= 40, ldl, np.nan),
        "tc_max_mmol": ldl + 2.0, "tc_max_untreated_mmol": np.where(treated, np.nan, ldl + 2.0),
        "tc_max_age": est_age.astype(np.int32), "tc_max_untreated_age": est_age.astype(np.int32),
        "sec_tsh_max_miu_l": maybe(0.3, rng.lognormal(0.7, 0.6, n)), "sec_tsh_date": day,
        "sec_hba1c_max_mmol_mol": maybe(0.3, rng.normal(40, 8, n)), "sec_hba1c_date": day,
        "sec_tg_max_mmol": maybe(0.6, rng.lognormal(0.2, 0.5, n)), "sec_tg_date": day,
        "chd_first_age": maybe(0.05, rng.integers(35, 90, n)),
        "fhx_any_recorded": sparse(0.1), "fhx_premature_chd_first_degree": sparse(0.03),
        "fhx_tendon_xanthoma": sparse(0.001), "n_fdr": rng.integers(0, 5, n).astype(np.int32),
        "fdr_ldl_pct_max": maybe(0.3, rng.random(n) * 100), "fdr_confirmed_fh": sparse(0.003),
        "fh_diagnosis": sparse(0.002), "is_deceased": sparse(0.01),
    }
    frame = pl.DataFrame(cols, nan_to_null=True, strict=False)
    treated_, measured = pl.col("ldl_estimate_treated"), pl.col("ldl_max_mmol").is_not_null()
    frame = frame.with_columns(
        pl.when(measured).then(pl.lit("measured")).alias("ldl_max_source"),
        pl.when(measured).then(pl.lit("measured")).alias("ldl_estimate_source"),
        pl.when(treated_).then(pl.lit("atorvastatin 40 mg")).alias("ldl_estimate_regimen"),
        pl.when(treated_).then(pl.lit("rdrf")).alias("ldl_correction_source"),
    )
    frame = frame.with_columns(pl.col(c).cast(base.schema[c]) for c in frame.columns)
    return base.with_columns(frame.get_columns())


def floor(features: pl.DataFrame) -> int:
    """The floor: one LDL-C cut-off by age (4.0 mmol/L under 40, 5.0 from 40), counted."""
    high = pl.when(pl.col("age_years") < 40).then(pl.col("ldl_max_mmol") > 4.0).otherwise(pl.col("ldl_max_mmol") > 5.0)
    return int(features.lazy().select(high.sum()).collect().item() or 0)


def main() -> None:
    n, features, build_s = synthetic_input(__doc__, synthetic_features, 1_000_000,
                                           "rows of patient_features (default 1,000,000)", 7)
    high, floor_s, _ = timed(lambda: floor(features))
    scored, eval_s, eval_cpu = timed(lambda: evaluate(features).select(
        "dlcn_points", "dlcn_category", "simon_broome", "medped", "lab_flag", "route", "excluded_reason").collect())
    out, score_s, score_cpu = timed(lambda: score(features))
    print(f"patients: {n:,} ({features.width} feature columns), frame built in {build_s:.1f} s; "
          f"{pl.thread_pool_size()} polars threads; load average {os.getloadavg()[0]:.1f}")
    print(f"floor (polars: one LDL-C cut-off by age, {high:,} above it): {floor_s:.3f} s")
    print(f"scores + route only (evaluate): wall {eval_s:.2f} s, CPU {eval_cpu:.2f} s")
    print(f"full rule_results incl. criteria, JSON reason items, English reasons: wall {score_s:.2f} s, "
          f"CPU {score_cpu:.2f} s")
    print("dlcn_category:", dict(out["dlcn_category"].value_counts().iter_rows()))
    print("route:", dict(out["route"].value_counts().iter_rows()))
    print(f"lab_flag: {int(scored['lab_flag'].sum()):,}")
    print(ratio_line("evaluate (scores + route)", eval_s, floor_s))
    print(ratio_line("score (full rule_results)", score_s, floor_s))


if __name__ == "__main__":
    main()
