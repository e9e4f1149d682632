"""Per-patient aggregation: DuckDB SQL against polars on the same data (time, CPU, peak memory).

    .venv/bin/python benchmarks/bench_aggregation.py --labs /tmp/fh-bench/1000000/synthetic/extracts/2026-11-23/lab_results.csv
    .venv/bin/python benchmarks/bench_aggregation.py --rows 3000 --work /tmp/agg     # random rows (smoke test)

The features step's heaviest pattern is "per patient, summarise that patient's LDL-C results":
count, highest, lowest, mean, median, the latest value, first and last sample date and the
trend (least-squares slope per year). This script computes exactly that three ways, each in
its own process timed as ``bench_run`` times its runs (``bench_run.timed``: wall and CPU
seconds, peak resident memory), on one typed Parquet copy of the delivered lab file (made
once, not timed):

* ``duckdb-sql``: one SQL statement, DuckDB reads the Parquet and aggregates;
* ``polars``: ``scan_parquet`` + ``group_by`` (lazy, streaming where polars can);
* ``duckdb-to-polars``: DuckDB reads the rows and hands them to polars, which aggregates: what
  the features step does today (``load_inputs`` then polars).

Each variant writes its result to Parquet; the script checks that the three results agree
(same patients; values within 1e-9, the slope within 1e-6: the engines
sum in different orders) and prints the table, then each variant's CPU seconds as a ratio to
the floor, DuckDB SQL (``floor.ratio_line``). It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench_run import timed
from floor import ratio_line

LDL_CODES = ("NPU01568", "DNK35308", "13457-7", "18262-6")
MG_DL_PER_MMOL = 38.67

PREPARE = f"""
import duckdb, sys
src, dst = (a.replace("'", "''") for a in sys.argv[1:3])
duckdb.connect().execute(f'''
  COPY (SELECT result_id, patient_id, CAST(sampled_at AS TIMESTAMP) AS sampled_at, analyte,
               CASE WHEN lower(unit) = 'mg/dl' THEN TRY_CAST(replace(value, ',', '.') AS DOUBLE) / {MG_DL_PER_MMOL}
                    ELSE TRY_CAST(replace(value, ',', '.') AS DOUBLE) END AS value_mmol, status
        FROM read_csv('{{src}}', all_varchar = true))
  TO '{{dst}}' (FORMAT parquet)''')
"""

DUCKDB_SQL = f"""
import duckdb, sys
src, dst = (a.replace("'", "''") for a in sys.argv[1:3])
duckdb.connect().execute(f'''
  COPY (
    SELECT patient_id, count(*) AS n, max(value_mmol) AS ldl_max, min(value_mmol) AS ldl_min,
           avg(value_mmol) AS ldl_mean, median(value_mmol) AS ldl_median,
           arg_max(value_mmol, (sampled_at, result_id)) AS ldl_last,
           min(sampled_at) AS first_at, max(sampled_at) AS last_at,
           CASE WHEN var_pop(epoch(sampled_at) / (365.25 * 86400)) > 0
                THEN regr_slope(value_mmol, epoch(sampled_at) / (365.25 * 86400)) END AS slope_per_year
    FROM read_parquet('{{src}}')
    WHERE analyte IN {LDL_CODES!r} AND status <> 'cancelled' AND value_mmol IS NOT NULL
    GROUP BY patient_id)
  TO '{{dst}}' (FORMAT parquet)''')
"""

_POLARS_AGG = """
years = pl.col("sampled_at").dt.epoch("s") / (365.25 * 86400)
v = pl.col("value_mmol")
out = (rows.group_by("patient_id").agg(
    pl.len().alias("n"), v.max().alias("ldl_max"), v.min().alias("ldl_min"), v.mean().alias("ldl_mean"),
    v.median().alias("ldl_median"),
    v.sort_by(["sampled_at", "result_id"]).last().alias("ldl_last"),
    pl.col("sampled_at").min().alias("first_at"), pl.col("sampled_at").max().alias("last_at"),
    pl.when(((years - years.mean()) ** 2).sum() > 0)
    .then(((years - years.mean()) * (v - v.mean())).sum() / ((years - years.mean()) ** 2).sum())
    .alias("slope_per_year"),
))
"""

POLARS = f"""
import sys
import polars as pl
rows = pl.scan_parquet(sys.argv[1]).filter(
    pl.col("analyte").is_in({list(LDL_CODES)!r}) & (pl.col("status") != "cancelled") & pl.col("value_mmol").is_not_null())
{_POLARS_AGG}
out.collect().write_parquet(sys.argv[2])
"""

DUCKDB_TO_POLARS = f"""
import sys
import duckdb
import polars as pl
rows = duckdb.connect().execute('''
  SELECT result_id, patient_id, sampled_at, value_mmol FROM read_parquet(?)
  WHERE analyte IN {LDL_CODES!r} AND status <> 'cancelled' AND value_mmol IS NOT NULL''', [sys.argv[1]]).pl()
{_POLARS_AGG}
out.write_parquet(sys.argv[2])
"""

RANDOM_ROWS = f"""
import sys
import numpy as np
import polars as pl
n = int(sys.argv[1])
rng = np.random.default_rng(7)
codes = np.array({list(LDL_CODES) + ['NPU01566']!r})
pl.DataFrame({{
    "result_id": [f"R{{i:09d}}" for i in range(n)],
    "patient_id": [f"P{{i:07d}}" for i in rng.integers(0, max(1, n // 25), n)],
    "sampled_at": pl.Series(rng.integers(1_300_000_000, 1_750_000_000, n) * 1_000_000).cast(pl.Datetime("us")),
    "analyte": codes[rng.integers(0, len(codes), n)],
    "value_mmol": rng.normal(3.2, 1.0, n).round(2),
    "status": np.where(rng.random(n) < 0.02, "cancelled", "final"),
}}).write_parquet(sys.argv[2])
"""

VARIANTS = {"duckdb-sql": DUCKDB_SQL, "polars": POLARS, "duckdb-to-polars": DUCKDB_TO_POLARS}


def agree(paths: dict[str, Path]) -> str:
    """'' when every variant found the same patients and values (floats within 1e-9, the
    slope, a quotient of differences of sums, within 1e-6)."""
    import polars as pl
    from polars.testing import assert_frame_equal

    frames = {k: pl.read_parquet(p).sort("patient_id") for k, p in paths.items()}
    first_name, first = next(iter(frames.items()))
    for name, frame in frames.items():
        try:
            assert_frame_equal(first.drop("slope_per_year"), frame.select(first.columns).drop("slope_per_year"),
                               check_dtypes=False, abs_tol=1e-9, rel_tol=1e-9)
            assert_frame_equal(first.select("slope_per_year"), frame.select("slope_per_year"),
                               check_dtypes=False, abs_tol=1e-6, rel_tol=1e-6)
        except AssertionError as exc:
            return f"{name} differs from {first_name}: {str(exc)[:300]}"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--labs", type=Path, help="a delivered lab_results.csv")
    source.add_argument("--rows", type=int, help="instead: this many random lab rows (a smoke test)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the Parquet files (default: beside --labs)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant; the fastest counts (default 1)")
    args = parser.parse_args()
    work = args.work or (args.labs.parent.parent.parent / "aggregation" if args.labs else Path("aggregation"))
    work.mkdir(parents=True, exist_ok=True)
    typed = work / "lab_results.parquet"
    if args.rows is not None:
        timed([sys.executable, "-c", RANDOM_ROWS, str(args.rows), str(typed)])
    elif not typed.exists():
        timed([sys.executable, "-c", PREPARE, str(args.labs), str(typed)])
    results, outputs = {}, {}
    for name, code in VARIANTS.items():
        outputs[name] = work / f"{name}.parquet"
        runs = [timed([sys.executable, "-c", code, str(typed), str(outputs[name])]) for _ in range(args.repeat)]
        results[name] = {k: v for k, v in min(runs, key=lambda r: r["cpu_seconds"]).items() if k != "stdout"}
    import polars as pl

    patients = pl.scan_parquet(outputs["duckdb-sql"]).select(pl.len()).collect().item()
    rows = pl.scan_parquet(typed).select(pl.len()).collect().item()
    disagreement = agree(outputs)
    floor = results["duckdb-sql"]
    print(f"per-patient LDL-C aggregates: {rows:,} lab rows, {patients:,} patients")
    print(f"{'':20s} {'wall s':>8s} {'CPU s':>8s} {'peak MiB':>9s} {'CPU vs SQL':>11s}")
    for name, r in results.items():
        print(f"{name:20s} {r['seconds']:8.2f} {r['cpu_seconds']:8.2f} {r['peak_rss_mib']:9,} "
              f"{r['cpu_seconds'] / floor['cpu_seconds']:10.2f}x")
    print("results agree" if not disagreement else f"RESULTS DIFFER: {disagreement}")
    for name, r in results.items():
        print(ratio_line(f"{name} (CPU seconds)", r["cpu_seconds"], floor["cpu_seconds"]))
    (work / "aggregation.json").write_text(json.dumps(
        {"lab_rows": rows, "patients": patients, "variants": results, "agree": not disagreement}, indent=2))


if __name__ == "__main__":
    main()
