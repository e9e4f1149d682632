"""Patient-supplied text in outputs: escaped in HTML, shown as text in PDF, never run as a
spreadsheet formula, and ids that become file names never leave the output folder.

The delivery is the mini fixture with hostile values put in: a patient id and names that
are markup, a contact name that is a formula, and a practice id that is a path.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from markupsafe import escape
from pypdf import PdfReader

from fh_screen.app import run
from reliability_helpers import FIXTURES, NIGHT1, settings

EVIL_ID = "<img src=x onerror=alert(1)>"          # replaces patient 000111 (listed on a worklist)
EVIL_PRACTICE = "../../etc/passwd"                 # replaces practice P0102 (gets worklist files)
NAMES = {
    EVIL_ID: "<script>alert(1)</script>",
    "000104": "\"'& <b>bold</b> Ærø",
    "000103": '=HYPERLINK("http://example.invalid/x","click")',
}
MARKUP = [EVIL_ID, NAMES[EVIL_ID], NAMES["000104"]]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    extract = tmp / "deliveries" / "hostile"
    extract.mkdir(parents=True)
    for path in (FIXTURES / "mini").iterdir():
        text = path.read_text(encoding="utf-8").replace("000111", EVIL_ID).replace("P0102", EVIL_PRACTICE)
        if path.name == "clinic_outcomes.csv":
            # The hostile patient must be listed: its "not FH" outcome, with no new evidence
            # since, would keep it off the worklists (exclusions_v2 not_fh_needs_new_evidence).
            text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith(EVIL_ID))
        (extract / path.name).write_text(text, encoding="utf-8")
    with (extract / "contacts.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for pid in NAMES.keys() - {r["patient_id"] for r in rows}:
        rows.append({**rows[0], "patient_id": pid})
    for row in rows:
        row["full_name"] = NAMES.get(row["patient_id"], row["full_name"])
    with (extract / "contacts.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    run.run(extract, tmp / "run" / "store.duckdb", tmp / "run" / "out", NIGHT1, settings=settings(tmp))
    return tmp


def _all(out: Path, suffix: str) -> list[Path]:
    return sorted(p for p in out.rglob(f"*{suffix}") if p.is_file())


def test_markup_from_a_delivery_is_escaped_in_html(published):
    pages = {p: p.read_text(encoding="utf-8") for p in _all(published / "run" / "out", ".html")}
    assert pages, "no HTML output to check"
    everything = "\n".join(pages.values())
    for text in MARKUP:
        assert text not in everything, f"raw markup in HTML: {text!r}"
        assert str(escape(text)) in everything, f"{text!r} was not rendered (escaped) at all"
    ours = "\n".join(t for p, t in pages.items() if "quality" not in p.parts)   # Data Docs carry their own scripts
    assert "<script>" not in ours and "onerror=" not in ours.replace("onerror=alert(1)&gt;", "")


def test_markup_from_a_delivery_is_plain_text_in_pdf(published):
    pdfs = _all(published / "run" / "out", ".pdf")
    assert pdfs, "no PDF output to check"
    text = "\n".join(page.extract_text() for p in pdfs for page in PdfReader(p).pages)
    flat = " ".join(text.split())
    for hostile in MARKUP:
        assert " ".join(hostile.split()) in flat, f"{hostile!r} not shown as text in any PDF"


def test_formulas_from_a_delivery_are_not_run_by_spreadsheets(published):
    cells = [c for p in _all(published / "run" / "out", ".csv")
             for row in csv.reader(p.open(encoding="utf-8")) for c in row]
    assert "'" + NAMES["000103"] in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@")]


def test_ids_in_file_names_never_leave_the_output_folder(published):
    tmp = published
    out = (tmp / "run" / "out").resolve()
    written = [p for p in tmp.rglob("*") if p.is_file()]
    outside = [p for p in written if not str(p.resolve()).startswith(str(out) + "/")
               and p.parent.resolve() != (tmp / "run").resolve() and "deliveries" not in p.parts
               and p.name != "settings.yaml"]
    assert outside == []
    assert not (tmp / "etc").exists() and not (tmp / "run" / "etc").exists()
    names = [p.name for p in out.rglob("*")]
    assert any(n.startswith("etc_passwd.") for n in names), names
    assert not [n for n in names if ".." in n or n.startswith("/")]
    for path in _all(out, ".json"):
        json.loads(path.read_text(encoding="utf-8"))     # FHIR bundles stay valid JSON
