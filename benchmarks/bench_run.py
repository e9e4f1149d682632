"""National-scale benchmark: a full run, an incremental night, and two reference points.

    .venv/bin/python benchmarks/bench_run.py --patients 1000000

1. generate a synthetic region of N people (about 10 lab results each) in Parquet and CSV;
2. floor: DuckDB alone reads the same lab file and computes the highest LDL-C per patient;
3. peer: a straightforward pandas ingest (read CSV, map codes, convert units) plus the lab flag;
4. the full nightly run (every step timed; peak RSS after each step);
5. an incremental nightly delivery (about 20k new results) on top of the full database.
Rendering of PDF/HTML is reported separately (the referrals and cascade steps' own timings).
Prints one table; writes benchmarks/results/<date>-<N>.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_subprocess(code: str) -> tuple[float, float, str]:
    """Run python code in a fresh process: (seconds, peak RSS MiB, stdout)."""
    started = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-c", code],
        capture_output=True, text=True, check=True,
    )
    seconds = time.perf_counter() - started
    rss_kib = float(proc.stderr.strip().splitlines()[-1])
    return seconds, rss_kib / 1024, proc.stdout.strip()


FLOOR = """
import duckdb, sys
con = duckdb.connect()
n = con.execute('''
  SELECT count(*) FROM (
    SELECT patient_id, max(CASE WHEN lower(unit) = 'mg/dl' THEN TRY_CAST(replace(value, ',', '.') AS DOUBLE) / 38.67
                                ELSE TRY_CAST(replace(value, ',', '.') AS DOUBLE) END) AS ldl_max
    FROM read_csv(?, all_varchar = true)
    WHERE analyte IN ('NPU01568', 'DNK35308', '13457-7', '18262-6')
    GROUP BY patient_id)''', [sys.argv[1] if len(sys.argv) > 1 else {labs!r}]).fetchone()[0]
print(n)
"""

PANDAS_PEER = """
import pandas as pd
labs = pd.read_csv({labs!r}, dtype=str)
patients = pd.read_csv({patients!r}, dtype=str)
ldl = labs[labs['analyte'].isin(['NPU01568', 'DNK35308', '13457-7', '18262-6'])].copy()
ldl['v'] = pd.to_numeric(ldl['value'].str.replace(',', '.', regex=False).str.lstrip('<>'), errors='coerce')
ldl.loc[ldl['unit'].str.lower() == 'mg/dl', 'v'] /= 38.67
ldl['sampled_at'] = pd.to_datetime(ldl['sampled_at'].str[:10])
ldl = ldl.merge(patients[['patient_id', 'birth_date']], on='patient_id')
ldl['age'] = (ldl['sampled_at'] - pd.to_datetime(ldl['birth_date'])).dt.days / 365.25
ldl['flag'] = ((ldl['age'] < 40) & (ldl['v'] > 4)) | ((ldl['age'] >= 40) & (ldl['v'] > 5))
print(int(ldl.groupby('patient_id')['flag'].any().sum()))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fh-bench"))
    args = parser.parse_args()

    from fh_screen.config import load_settings
    from fh_screen.run import run
    from fh_screen.synth import generate

    as_of = date(2026, 11, 23)
    work = args.work / str(args.patients)
    results: dict = {"patients": args.patients, "machine": f"{os.cpu_count()} cores", "steps": {}}

    started = time.perf_counter()
    synth = generate(out=work / "synthetic", n_patients=args.patients, seed=args.seed, as_of=as_of,
                     fmt="csv", dialect="plain", nights=2, params_file=None)
    results["synth_seconds"] = round(time.perf_counter() - started, 1)
    full, nightly = (Path(p) for p in synth["extract_dirs"][:2])
    labs_file = full / "lab_results.csv"

    sec, rss, out = timed_subprocess(FLOOR.format(labs=str(labs_file)))
    results["floor"] = {"seconds": round(sec, 2), "peak_rss_mib": round(rss), "patients_with_ldl": int(out)}
    sec, rss, out = timed_subprocess(PANDAS_PEER.format(labs=str(labs_file), patients=str(full / "patients.csv")))
    results["pandas_peer"] = {"seconds": round(sec, 2), "peak_rss_mib": round(rss), "flagged": int(out)}

    db_path = work / "bench.duckdb"
    for suffix in ("", ".wal", ".lock", ".audit.jsonl"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    settings = load_settings()
    rss_after: dict[str, float] = {}

    def note(step: str) -> None:
        rss_after[step] = peak_rss_mib()

    started = time.perf_counter()
    manifest = run(full, db_path, work / "out-full", as_of, settings, on_step=note)
    results["full_run_seconds"] = round(time.perf_counter() - started, 2)
    results["full_run_peak_rss_mib"] = round(peak_rss_mib())
    lab_rows = manifest["tables"]["lab_results"]["received"]
    results["lab_rows"] = lab_rows
    for name, report in manifest["steps"].items():
        results["steps"][name] = {"seconds": report["seconds"]}

    started = time.perf_counter()
    inc = run(nightly, db_path, work / "out-nightly", as_of + timedelta(days=1), settings)
    results["incremental_seconds"] = round(time.perf_counter() - started, 2)
    results["incremental_lab_rows"] = inc["tables"]["lab_results"]["received"]
    results["incremental_steps"] = {k: v["seconds"] for k, v in inc["steps"].items()}

    results["ratio_to_floor"] = round(results["full_run_seconds"] / results["floor"]["seconds"], 1)
    results["ratio_to_pandas_peer"] = round(results["full_run_seconds"] / results["pandas_peer"]["seconds"], 2)
    print_table(results)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"{date.today()}-{args.patients}.json").write_text(json.dumps(results, indent=2))


def print_table(r: dict) -> None:
    rows = r["lab_rows"]
    print(f"\nfh-screen benchmark: {r['patients']:,} people, {rows:,} lab rows, {r['machine']}")
    print(f"{'what':34s} {'seconds':>9s} {'rows/s':>12s}")
    print(f"{'synthetic region (not part of a run)':34s} {r['synth_seconds']:9.1f}")
    print(f"{'floor: DuckDB max LDL per patient':34s} {r['floor']['seconds']:9.2f} {rows / r['floor']['seconds']:12,.0f}"
          f"   peak {r['floor']['peak_rss_mib']:,} MiB")
    print(f"{'peer: pandas ingest + lab flag':34s} {r['pandas_peer']['seconds']:9.2f} "
          f"{rows / r['pandas_peer']['seconds']:12,.0f}   peak {r['pandas_peer']['peak_rss_mib']:,} MiB")
    for name, s in r["steps"].items():
        print(f"  step {name:28s} {s['seconds']:9.2f}")
    print(f"{'full run':34s} {r['full_run_seconds']:9.2f} {rows / r['full_run_seconds']:12,.0f}"
          f"   peak {r['full_run_peak_rss_mib']:,} MiB")
    print(f"{'incremental night':34s} {r['incremental_seconds']:9.2f}   ({r['incremental_lab_rows']:,} new lab rows)")
    print(f"ratio to floor: {r['ratio_to_floor']}x   ratio to pandas peer: {r['ratio_to_pandas_peer']}x")


if __name__ == "__main__":
    main()
