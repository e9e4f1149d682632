"""Peak memory of one family-partition task against the whole region in one pass.

Usage (from the repository root; long, so niced)::

    nice -n 10 .venv/bin/python benchmarks/bench_partitions.py --people 100000 --partition-people 10000

It generates a region (``fhscreen synth``), loads it once (stage, validate, load), then runs
the features step twice on copies of that store, each part in its own process as the nightly
DAG's tasks run (``orchestration.plan_partitions``, ``build_partition``, ``run_step``'s
gather), under ``/usr/bin/time -v``:

* **one pass**: ``incremental.partition_people`` at least the region: one partition;
* **partitioned**: ``--partition-people``: about people / partition-people partitions.

Printed per task: wall seconds, CPU seconds, peak resident MiB; and the floor measured in the
same run: a process that only imports the steps (``fh_screen.app.run``) and opens the store
(what every task costs before it does any work). Ratios are of the peaks above that floor. Figures only; not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from floor import AS_OF

TASK = """
import json, sys
from datetime import date
from fh_screen.app import orchestration as orch
kind, region, arg = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
night = date.fromisoformat({as_of!r})
if kind == "floor":
    import duckdb
    import fh_screen.app.run  # noqa: F401 (what every task of the DAG imports: the steps)
    duckdb.connect(region["db"], read_only=True).execute("SELECT count(*) FROM patients").fetchall()
elif kind == "plan":
    print(json.dumps(orch.plan_partitions(region, night, "features")))
elif kind == "work":
    print(json.dumps(orch.partition_work([region], night, "features")))
elif kind == "build":
    print(json.dumps(orch.build_partition(json.loads(arg))))
elif kind == "gather":
    print(json.dumps(orch.run_step(region, night, "features")))
else:
    orch.run_step(region, night, arg)
""".format(as_of=AS_OF.isoformat())


def task(kind: str, region: dict, arg: str = "") -> dict:
    """One task in its own process: its wall and CPU seconds, peak MiB and printed result."""
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", TASK, kind, json.dumps(region), arg],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")

    def field(name: str) -> str:
        return next(line.split(": ", 1)[1] for line in done.stderr.splitlines() if line.strip().startswith(name))

    minutes, seconds = field("Elapsed (wall clock)").rsplit(":", 1)
    return {"seconds": round(float(minutes.split(":")[-1]) * 60 + float(seconds), 1),
            "cpu_seconds": round(float(field("User time")) + float(field("System time")), 1),
            "peak_mib": int(field("Maximum resident set size")) // 1024,
            "result": json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None}


def region_at(root: Path, name: str, delivery: Path, base_db: Path | None, partition_people: int) -> dict:
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    if base_db is None:
        shutil.copytree(delivery, folder / "extracts" / AS_OF.isoformat())
    else:
        (folder / "extracts" / AS_OF.isoformat()).mkdir(parents=True)   # loaded already
    config = folder / "region.yaml"
    config.write_text(f"incremental:\n  partition_people: {partition_people}\n", encoding="utf-8")
    if base_db is not None:
        shutil.copy(base_db, folder / "fh.duckdb")
    return {"name": name, "extracts": str(folder / "extracts"), "db": str(folder / "fh.duckdb"),
            "out": str(folder / "runs"), "config": str(config)}


def features_in_tasks(region: dict) -> dict:
    """Plan, every partition, gather: each its own process."""
    plan = task("plan", region)
    items = task("work", region)["result"]
    builds = [task("build", region, json.dumps(item)) for item in items]
    gather = task("gather", region)
    return {"partitions": plan["result"], "plan": plan, "builds": builds, "gather": gather}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--partition-people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fh-bench-partitions")
    parser.add_argument("--reuse", action="store_true", help="reuse the synthetic region of an earlier run")
    args = parser.parse_args()
    work = args.work / str(args.people)
    synth = work / "synthetic"
    if not (args.reuse and (synth / "extracts" / AS_OF.isoformat()).is_dir()):
        shutil.rmtree(synth, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "fh_screen", "synth", "--out", str(synth), "--patients",
                        str(args.people), "--seed", str(args.seed), "--as-of", AS_OF.isoformat()], check=True)
    delivery = synth / "extracts" / AS_OF.isoformat()

    loaded = region_at(work, "loaded", delivery, None, args.people)
    for step in ("stage", "validate", "load"):
        task("step", loaded, step)
    base_db = Path(loaded["db"])
    floor = task("floor", loaded)
    one = features_in_tasks(region_at(work, "one_pass", delivery, base_db, 10 * args.people))
    split = features_in_tasks(region_at(work, "partitioned", delivery, base_db, args.partition_people))

    peak_one = max(b["peak_mib"] for b in one["builds"])
    peak_part = max(b["peak_mib"] for b in split["builds"])
    people = [b["result"]["people"] for b in split["builds"]]
    print(f"\nfeatures of {args.people:,} people; partitions of about {args.partition_people:,} "
          f"({split['partitions']} partitions, {min(people):,}-{max(people):,} people each)")
    print(f"{'task':<34}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}")
    rows = [("floor (import, open store)", floor), ("one pass: plan", one["plan"]),
            ("one pass: the one partition", one["builds"][0]), ("one pass: gather", one["gather"]),
            ("partitioned: plan", split["plan"]),
            ("partitioned: largest partition", max(split["builds"], key=lambda b: b["peak_mib"])),
            ("partitioned: gather", split["gather"])]
    for name, r in rows:
        print(f"{name:<34}{r['seconds']:>8.1f}{r['cpu_seconds']:>8.1f}{r['peak_mib']:>10,}")
    cpu_split = sum(b["cpu_seconds"] for b in split["builds"])
    print(f"all {split['partitions']} partitions: {cpu_split:.1f} CPU s (one pass {one['builds'][0]['cpu_seconds']:.1f})")
    for what, peak in (("one-pass features task peak", peak_one), ("largest partition task peak", peak_part)):
        print(f"{what}: {peak / floor['peak_mib']:.2f}x the floor ({peak} MiB against {floor['peak_mib']} MiB)")
    above = (peak_part - floor["peak_mib"]) / max(1, peak_one - floor["peak_mib"])
    print(f"partition peak / one-pass peak: {peak_part / peak_one:.2f} (above the floor: {above:.2f})")
    (work / "results.json").write_text(json.dumps({"floor": floor, "one_pass": one, "partitioned": split},
                                                  indent=2, default=str))


if __name__ == "__main__":
    main()
