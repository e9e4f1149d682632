"""The product cites primary sources or its own documents, never a folder outside the
repository; every section of ``docs/clinical-reference.md`` that is cited exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEARCHED = ["pipelines", "dags", "docs", "expectations", "tests", "benchmarks", "scripts", "notebooks", "models",
            "README.md", "SECURITY.md", "pyproject.toml"]
OUTSIDE = "shared" + "/"          # spelled in two parts so this file does not find itself
CITATION = re.compile(r"clinical-reference\.md §(\d+(?:\.\d+)?)((?:[/-]§\d+(?:\.\d+)?)*)")


def _text_files():
    for name in SEARCHED:
        top = ROOT / name
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else []
        for path in paths:
            if "__pycache__" in path.parts or ".egg-info" in str(path) or ".ipynb_checkpoints" in path.parts:
                continue
            try:
                yield path, path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue


def test_nothing_cites_a_folder_outside_the_repository():
    hits = [f"{path.relative_to(ROOT)}:{n}" for path, text in _text_files()
            for n, line in enumerate(text.splitlines(), 1) if OUTSIDE in line]
    assert hits == []


def test_every_cited_section_of_the_clinical_reference_exists():
    doc = (ROOT / "docs" / "clinical-reference.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", doc, flags=re.M))
    cited = {}
    for path, text in _text_files():
        for match in CITATION.finditer(text):
            for number in [match.group(1), *re.findall(r"§(\d+(?:\.\d+)?)", match.group(2))]:
                cited.setdefault(number, str(path.relative_to(ROOT)))
    assert len(cited) >= 10, "the code cites the clinical reference"
    assert {n: where for n, where in cited.items() if n not in sections} == {}
