"""Each step's report carries its own wall/CPU seconds and peak memory (run.execute_step)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-step peaks need /proc")


# Run in a fresh interpreter: in a test worker that many other tests had used, both steps once
# reported the worker's earlier peak (1,092 MiB), so the step's own allocation was not visible.
_PEAK_SCRIPT = """
import json, sys
from datetime import date
from pathlib import Path
from fh_screen.app import run
from fh_screen.context import RunContext
from fh_screen.config import load_settings

held = []

def allocate(ctx):
    held.append(b"x" * (300 * 1024 * 1024))       # every byte written: resident
    held.clear()
    return {}

steps = {"big": allocate, "small": lambda ctx: {}}
run.step_function = lambda name: steps[name]
tmp = Path(sys.argv[1])
ctx = RunContext(settings=load_settings(), db_path=tmp / "x.duckdb", out_dir=tmp / "out",
                 work_dir=tmp, as_of=date(2026, 11, 23), manifest={"steps": {}})
big, small = run.execute_step(ctx, "big"), run.execute_step(ctx, "small")
print(json.dumps({"big": big, "small": small, "same": ctx.manifest["steps"]["big"] is big}))
"""


def test_each_step_reports_its_own_peak_memory(tmp_path):
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, check=True, timeout=120)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    big, small = report["big"], report["small"]
    assert big["peak_rss_mib"] >= small["peak_rss_mib"] + 250
    assert big["cpu_seconds"] >= 0 and big["seconds"] >= 0
    assert report["same"]
