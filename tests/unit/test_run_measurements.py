"""Each step's report carries its own wall/CPU seconds and peak memory (run.execute_step)."""

import sys
from datetime import date

import pytest

from fh_screen.app import run
from fh_screen.context import RunContext
from fh_screen.config import load_settings

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-step peaks need /proc")


def test_each_step_reports_its_own_peak_memory(tmp_path, monkeypatch):
    held = []

    def allocate(ctx):
        held.append(b"x" * (300 * 1024 * 1024))       # every byte written: resident
        held.clear()
        return {}

    def idle(ctx):
        return {}

    steps = {"big": allocate, "small": idle}
    monkeypatch.setattr(run, "step_function", lambda name: steps[name])
    ctx = RunContext(settings=load_settings(), db_path=tmp_path / "x.duckdb", out_dir=tmp_path / "out",
                     work_dir=tmp_path, as_of=date(2026, 11, 23), manifest={"steps": {}})
    big, small = run.execute_step(ctx, "big"), run.execute_step(ctx, "small")
    assert big["peak_rss_mib"] >= small["peak_rss_mib"] + 250
    assert big["cpu_seconds"] >= 0 and big["seconds"] >= 0
    assert ctx.manifest["steps"]["big"] is big
