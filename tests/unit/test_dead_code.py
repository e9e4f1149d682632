"""No dead code: vulture over the package and the DAGs reports nothing beyond the reviewed
allow-list (``tests/vulture_allowlist.py``, each entry with the reason it is used)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VULTURE = Path(sys.executable).with_name("vulture")


def test_vulture_finds_no_dead_code():
    result = subprocess.run(
        [str(VULTURE), "pipelines/fh_screen", "dags", "tests/vulture_allowlist.py", "--min-confidence", "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr
