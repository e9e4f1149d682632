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
