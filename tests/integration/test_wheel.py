"""The package installs: a wheel built from this tree, installed (not editable) into a fresh
virtual environment with the versions of ``requirements.lock``, runs ``fhscreen demo`` end
to end from a folder outside the repository - the default model scores and the delivery is
validated with the shipped expectation suites."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")


def _run(args: list, cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(a) for a in args], cwd=cwd, env={**env, **kw.pop("env", {})},
                            capture_output=True, text=True, timeout=900, **kw)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.mark.slow
def test_a_wheel_installs_and_runs_the_demo(tmp_path):
    dist = tmp_path / "dist"
    _run([UV, "build", "--wheel", "--out-dir", dist, "-q"], cwd=ROOT)
    [wheel] = dist.glob("fh_screen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("fh_screen/bundled/models/fh_baseline/model.skops", "fh_screen/bundled/expectations/lab_results.json",
                    "fh_screen/store/sql/validate/setup.sql", "fh_screen/stages/score/feature_spec.yaml"):
        assert shipped in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([UV, "pip", "install", "-q", "--python", python, wheel, "-c", ROOT / "requirements.lock"], cwd=tmp_path)
    where = _run([python, "-c", "import fh_screen; print(fh_screen.__file__)"], cwd=tmp_path).stdout
    assert str(venv) in where and str(ROOT) not in where, "installed, not the source tree"

    work = tmp_path / "elsewhere"
    work.mkdir()
    _run([venv / "bin" / "fhscreen", "demo", "--out", work / "demo", "--patients", "1500", "--months", "0.2", "--quiet"], cwd=work,
         env={"GX_ANALYTICS_ENABLED": "false"})
    night = sorted((work / "demo" / "runs").iterdir())[-1]
    manifest = json.loads((night / "run_manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"]["name"] == "fh_baseline"        # the production scorer (models/fh_gbm/MODEL_CARD.md)
    assert manifest["steps"]["score"]["scored"] > 0
    assert (night / "quality" / "validation_summary.json").is_file()
    assert manifest["steps"]["validate"]["tables"]
