"""Every benchmark in benchmarks/ still runs, on a tiny region, and prints its ratio to a
floor measured in the same run.

Not a timing test: the figures are not checked, only that each benchmark exits 0 and prints
the ratio lines its README promises, and that ``--help`` works. The benchmarks run as their
own processes, all at once, so the file costs about as long as the slowest of them (the
validation benchmark, which imports Great Expectations twice over).

Not run on a tiny region here, only with ``--help``: ``bench_run.py`` (``scripts/bench.sh``),
because it is a chain of whole ``fhscreen synth`` and ``fhscreen run`` processes that costs
about 30 CPU seconds even at 300 people, and those runs are what the integration tests
already cover end to end. Nor ``bench_partitions.py``, for the same reason: every task of the
features step in its own process, about 40 CPU seconds at 300 people;
``tests/unit/test_airflow_partitions.py`` runs the same tasks in one process. Nor
``bench_step.py``: it needs a store after a whole run, and it times the same ``prepare`` and
``execute_step`` every integration run goes through. ``measure_backlog.py`` is not a timing benchmark (it replays
selection on a real store and the generator's truth) and is not run at all.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RATIO = re.compile(r"^(.+): [0-9.]+x the floor \(", re.MULTILINE)

# benchmark -> (arguments for a tiny region, what it must print a ratio for)
BENCHMARKS = {
    "bench_features.py": (["--people", "300"], {"build_features"}),
    "bench_rules.py": (["--people", "300"], {"evaluate (scores + route)", "score (full rule_results)"}),
    "bench_worklists.py": (["--people", "400"], {"worklist PDFs"}),
    "bench_aggregation.py": (["--rows", "3000", "--work", "{tmp}"],
                             {"duckdb-sql (CPU seconds)", "polars (CPU seconds)", "duckdb-to-polars (CPU seconds)"}),
    "bench_validation.py": (["--lab-rows", "3000", "--dir", "{tmp}"],
                            {"stage step", "validate step", "load step", "lab_results suite on DuckDB SQL",
                             "lab_results suite on pandas (load + validate)"}),
}
HELP_ONLY = {"bench_run.py", "bench_partitions.py", "bench_step.py"}


def test_every_benchmark_is_listed():
    """A new benchmark joins this smoke test (or says here why not)."""
    found = {p.name for p in (ROOT / "benchmarks").glob("*.py")} - {"floor.py", "measure_backlog.py"}
    assert found == set(BENCHMARKS) | HELP_ONLY


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start every benchmark (tiny region) and every ``--help`` at once; each test waits for its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "pipelines"), "GX_ANALYTICS_ENABLED": "false",
           "TQDM_DISABLE": "1", "POLARS_MAX_THREADS": "1"}
    argvs = {("help", name): ["--help"] for name in [*BENCHMARKS, *HELP_ONLY]}
    for name, (args, _) in BENCHMARKS.items():
        tmp = tmp_path_factory.mktemp(name.removesuffix(".py"))
        argvs[("tiny", name)] = [a.format(tmp=tmp) for a in args]
    started = {key: subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / key[1]), *argv], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for key, argv in argvs.items()}
    yield started
    for proc in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_runs_on_a_tiny_region(runs, name):
    proc = runs[("tiny", name)]
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert BENCHMARKS[name][1] <= set(RATIO.findall(out)), out


@pytest.mark.parametrize("name", sorted([*BENCHMARKS, *HELP_ONLY]))
def test_benchmark_help_exits_0(runs, name):
    proc = runs[("help", name)]
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert "--" in out
