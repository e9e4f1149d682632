"""Time single steps of one night on a copy of a real store, as ratios to a floor.

    .venv/bin/python benchmarks/bench_step.py --db STORE --extract NIGHT --as-of DATE \\
        --steps referrals,cascade,metrics [--work DIR]

Why: a whole nightly chain at 1M people costs half an hour of a shared machine, and a change
to one step is judged by that step alone, on a store the size of a region. The store is
copied into ``--work`` (the original is never written). The night (``--extract``, dated
``--as-of``) runs through ``fh_screen.app.run`` in one process, the same ``prepare`` and
``execute_step`` the CLI uses: every step up to the last one asked for runs in order, and
each step asked for is reported from its own step report, which gives CPU seconds, wall seconds and
peak memory (each step resets the high-water mark). Floor: DuckDB alone reads the copied
store's lab results and finds the highest LDL-C per patient, in its own process, in the same
run. Prints figures only.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from fh_screen.app.run import STEPS, execute_step, prepare

from floor import ratio_line

FLOOR = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SET enable_progress_bar = false")   # stdout is the figure
cpu = time.process_time()
con.execute("SELECT count(*) FROM (SELECT patient_id, max(value) FROM lab_results "
            "WHERE analyte = 'ldl' GROUP BY patient_id)").fetchone()
print(time.process_time() - cpu)
"""


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a store after at least one run (not written)")
    parser.add_argument("--extract", type=Path, required=True, help="the night's delivery folder")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True, help="the night's date (YYYY-MM-DD)")
    parser.add_argument("--steps", required=True,
                        help="steps to time, comma-separated, in run order: " + ",".join(s.name for s in STEPS))
    parser.add_argument("--work", type=Path, default=Path("bench-step"), help="working folder (default ./bench-step)")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    names = [s.name for s in STEPS]
    timed = args.steps.split(",")
    unknown = [n for n in timed if n not in names]
    if unknown or timed != sorted(timed, key=names.index):
        sys.exit(f"bench_step: --steps must be step names in run order ({', '.join(names)})")
    args.work.mkdir(parents=True, exist_ok=True)
    store = args.work / "store.duckdb"
    shutil.copyfile(args.db, store)
    floor_cpu = float(subprocess.run([sys.executable, "-c", FLOOR, str(store)], check=True,
                                     capture_output=True, text=True).stdout)
    ctx = prepare(args.extract, store, args.work / "out", args.as_of, fresh=True)
    print(f"floor: DuckDB max LDL-C per patient on the store: {floor_cpu:.2f} CPU s")
    for name in names[: names.index(timed[-1]) + 1]:   # a step between two timed ones runs untimed
        report = execute_step(ctx, name)
        if name in timed:
            print(f"{name}: {report['cpu_seconds']:.2f} CPU s, {report['seconds']:.2f} s, "
                  f"peak {report['peak_rss_mib']} MiB")
            print(ratio_line(f"{name} (CPU seconds)", report["cpu_seconds"], floor_cpu))


if __name__ == "__main__":
    main()
