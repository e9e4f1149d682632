"""The evaluator notebooks run top to bottom on a small generated region, so they never rot.

The kernel is this interpreter (a kernelspec written to a temporary JUPYTER_PATH), so the
notebooks import the same fh_screen as the tests, whatever ``python`` is on PATH.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from metrics_fake import AS_OF, make_region_db  # noqa: E402

from fh_screen.stages.metrics import metrics_step# noqa: E402
from fh_screen.app.run import prepare# noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "fh-screen-test-python"


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nb")
    path = make_region_db(folder / "region.duckdb", "N", 800, 21)
    ctx = prepare(None, path, folder / "out", AS_OF)
    metrics_step(ctx)
    spec = folder / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fh-screen tests", "language": "python"}))
    return path, ctx.work_dir / "metrics", folder


def test_notebooks_are_committed_without_outputs():
    assert len(NOTEBOOKS) >= 2
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, region, monkeypatch):
    db_path, metrics_dir, folder = region
    monkeypatch.setenv("JUPYTER_PATH", str(folder / "jupyter"))
    monkeypatch.setenv("FH_SCREEN_DB", str(db_path))
    monkeypatch.setenv("FH_SCREEN_AS_OF", AS_OF.isoformat())
    monkeypatch.setenv("FH_SCREEN_METRICS_DIR", str(metrics_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "pipelines"), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name=KERNEL, timeout=120, resources={"metadata": {"path": str(folder)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "population" in text
