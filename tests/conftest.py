"""Test-wide set-up. Airflow reads its configuration at import time, so the environment
is set here, before any test module can import it, and never touches ~/airflow."""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="fh-airflow-home-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# One OpenMP thread per test process: gradient boosting's thread pool spins badly when
# the cores are shared, and the tests' data sets are small.
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(DAGS))

# The longest test files, longest first (measured with ``--durations=0``). xdist hands whole
# files to its two workers in collection order; starting the long ones first keeps one
# worker from running a several-minute file alone at the end of the run. Every other file
# keeps its place after these.
LONGEST_FIRST = (
    "integration/test_airflow_celery.py",
    "integration/test_reliability.py",
    "property/test_incremental_nights.py",
    "integration/test_reliability_privacy.py",
    "integration/test_convert_round_trip.py",
    "integration/test_demo_clinical_consistency.py",
    "unit/test_metrics_rounding.py",
    "adversarial/test_publishing.py",
    "unit/test_metrics_outputs.py",
    "integration/test_wheel.py",
    "integration/test_simulated_pilot.py",
    "integration/test_multiworld.py",
    "integration/test_benchmarks_smoke.py",
    "adversarial/test_output_attacks.py",
)


def pytest_collection_modifyitems(items):
    """Run the longest files first (stable sort; see ``LONGEST_FIRST``)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def place(item) -> int:
        relative = Path(str(item.path)).resolve().relative_to(ROOT / "tests").as_posix()
        return rank.get(relative, len(rank))

    items.sort(key=place)
