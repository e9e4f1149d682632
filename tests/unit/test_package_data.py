"""The model and the expectation suites a wheel ships are the repository's own folders (one
copy): ``fh_screen/bundled`` links them, and the code finds them there."""

from __future__ import annotations

from pathlib import Path

from fh_screen.stages.score import artefact
from fh_screen.stages.validate import gx_runner

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "pipelines" / "fh_screen" / "bundled"


def test_bundled_folders_are_links_to_the_repository_folders_not_copies():
    for name in ("models", "expectations"):
        assert (BUNDLED / name).is_symlink()
        assert (BUNDLED / name).resolve() == (ROOT / name).resolve()


def test_the_default_model_and_the_suites_are_found_through_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)          # not the repository: nothing relative to the working folder
    assert artefact.resolve("models/fh_gbm") == artefact.BUNDLED / "models" / "fh_gbm"
    assert (artefact.resolve("models/fh_gbm") / "model.skops").is_file()
    assert gx_runner.SUITE_DIR.resolve() == (ROOT / "expectations").resolve()

