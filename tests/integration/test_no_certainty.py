"""No output shows a model probability of 0 or 1: the stored scores, the worklists (HTML,
PDF, CSV), the referrals table and the FHIR requests of a whole nightly run on a small
synthetic region scored by the committed production model."""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest
from pypdf import PdfReader

from fh_screen.app import run
from fh_screen.config import load_settings
from fh_screen.synth import generate

AS_OF = date(2026, 11, 23)
# "100 %" or "0 %" as a whole number (so "10 %", "< 1 %" and "> 99 %" do not match)
CERTAINTY = re.compile(r"(?<![\d.,])(?:100|0)\s?%")


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("certainty")
    generate(out=tmp / "region", n_patients=4000, seed=16, as_of=AS_OF, fmt="parquet", nights=1)
    out = tmp / "out"
    run.run(tmp / "region" / "extracts" / AS_OF.isoformat(), tmp / "store.duckdb", out, AS_OF,
            settings=load_settings())
    return tmp / "store.duckdb", out


def test_stored_probabilities_are_strictly_between_zero_and_one(night):
    db, _ = night
    with duckdb.connect(str(db), read_only=True) as con:
        low, high, n = con.execute("SELECT min(probability), max(probability), count(*) FROM model_scores").fetchone()
    assert n > 1000 and 0 < low and high < 1


def visible_text(html: str) -> str:
    """What a reader sees of a page: no style sheet (its "width: 100%"), no tags."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", " ", html, flags=re.S))


def test_worklists_never_show_certainty(night):
    _, out = night
    pages = [visible_text(p.read_text(encoding="utf-8")) for p in (out / "worklists").rglob("*.html")]
    pdfs = [page.extract_text() for p in (out / "worklists").rglob("*.pdf") for page in PdfReader(p).pages]
    assert pages and pdfs, "the run wrote no worklists to check"
    shown = "\n".join(pages + pdfs)
    assert "%" in shown
    assert not CERTAINTY.findall(shown)


def test_csv_and_fhir_probabilities_are_strictly_between_zero_and_one(night):
    _, out = night
    values = []
    for path in [*out.rglob("*.csv")]:
        with path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("probability"):
                    values.append(float(row["probability"]))
    for path in out.rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        values += [float(v) for v in re.findall(r'"probability(?:Decimal)?":\s*([0-9.eE+-]+)', text)]
        json.loads(text)
    assert values, "no probability in any CSV or JSON output"
    assert all(0 < v < 1 for v in values)
