"""A region receiving register extracts: the DAG's readiness check, its first task
(``convert_night``) and the steps reading the converted delivery - without a scheduler."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from fh_screen.app import orchestration as orch
from fh_screen.app import run as run_mod
from fh_screen.errors import UserError

NIGHT = date(2026, 11, 23)


def partition(root: Path, layout: str) -> dict:
    config = root / "region.yaml"
    config.write_text(f"ingest:\n  layout: {layout}\n", encoding="utf-8")
    return orch.partitions(json.dumps([{"name": "nord", "extracts": str(root / "ex"), "db": str(root / "fh.duckdb"),
                                        "out": str(root / "out"), "config": str(config)}]))[0]


def registers(root: Path, with_lab: bool = True) -> Path:
    folder = root / "ex" / NIGHT.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bef202609.csv").write_text("PNR,KOEN,FOED_DAG\nP0000101,1,27JUN1995\n", encoding="utf-8")
    if with_lab:
        (folder / "lab_dm_forsker.csv").write_text(
            "PATIENT_CPR;SAMPLINGDATE;ANALYSISCODE;VALUE;UNIT\nP0000101;01MAR2026;NPU01568;5,4;mmol/L\n", encoding="utf-8")
    return folder


def test_the_sensor_waits_for_the_layouts_required_tables(tmp_path):
    part = partition(tmp_path, "dst")
    assert not orch.night_ready(part, NIGHT)
    registers(tmp_path, with_lab=False)
    assert not orch.night_ready(part, NIGHT)        # BEF without the lab register
    registers(tmp_path)
    assert orch.night_ready(part, NIGHT)
    assert orch.pending_deliveries(part, NIGHT) == [NIGHT.isoformat()]


def test_convert_runs_first_and_the_steps_read_the_converted_delivery(tmp_path, monkeypatch):
    part = partition(tmp_path, "dst")
    registers(tmp_path)
    report = orch.convert_night(part, NIGHT)
    assert report["converted"] and report["tables"]["lab"] == {"read": 1, "converted": 1, "set_aside": 0}
    converted = tmp_path / "ex" / "converted" / NIGHT.isoformat()
    assert (converted / "patients.csv").read_text(encoding="utf-8").splitlines()[1].startswith("P0000101,1995-06-27,M")

    seen = []
    monkeypatch.setattr(run_mod, "STEPS", [run_mod.Step("stage", lambda ctx: seen.append(ctx.extract_dir) or {"ok": True})])
    orch.run_step(part, NIGHT, "stage")
    assert seen == [converted.resolve()]


def test_a_contract_region_has_nothing_to_convert(tmp_path):
    part = partition(tmp_path, "contract")
    assert orch.convert_night(part, NIGHT) == {"layout": "contract", "converted": False}
    assert not (tmp_path / "ex" / "converted").exists()


def test_an_unusable_extract_fails_the_convert_task_with_a_user_error(tmp_path):
    part = partition(tmp_path, "sds")
    registers(tmp_path)
    with pytest.raises(UserError, match="CPR3_T_PERSON"):
        orch.convert_night(part, NIGHT)


def test_an_unknown_layout_in_the_settings_is_refused(tmp_path):
    part = partition(tmp_path, "dsx")
    with pytest.raises(Exception, match="layout"):
        orch.night_ready(part, NIGHT)
