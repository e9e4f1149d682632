"""Shared pieces of the adversarial suite: each test replays one attack or fault against
the product, through the ``fhscreen`` command where the attack used it, on the small
``tests/fixtures/mini`` delivery (12 people), so the whole suite stays fast."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from fh_screen.app.cli import main

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests" / "fixtures" / "mini"
NIGHT = "2026-11-23"
AS_OF = date(2026, 11, 23)


@pytest.fixture
def region(tmp_path) -> dict[str, Path]:
    """A copy of the mini delivery, a store path and an output path in one folder, plus
    settings with the scorer off (no model artefact needed)."""
    extract = tmp_path / "delivery"
    shutil.copytree(MINI, extract)
    config = tmp_path / "settings.yaml"
    config.write_text("model:\n  enabled: false\n", encoding="utf-8")
    return {"root": tmp_path, "extract": extract, "db": tmp_path / "fh.duckdb",
            "out": tmp_path / "out", "config": config}


@pytest.fixture
def fhscreen(capsys):
    """Run ``fhscreen`` in this process; returns (exit status, stderr lines); ``.out`` is stdout."""

    def call(*args: object) -> tuple[int, list[str]]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        call.out = captured.out          # what the command printed, for tests that read it
        return code, captured.err.strip().splitlines()

    return call
