"""A small demo region end to end: every listed patient's shown values, points, band words
and trend agree; the clinician's review page (``fhscreen explain``) says what the worklist
says; Danish worklists contain no English; CSVs carry at most the stated decimals."""

import csv
import html
import re
from pathlib import Path

import pytest

from fh_screen.app.cli import main
from fh_screen.app.demo import demo
from fh_screen.config import load_settings
from fh_screen.app.review import patient_page
from fh_screen.store import db

# Words that never occur in Danish worklist text but do in English sentences.
ENGLISH = re.compile(r"\b(the|and|with|on|is|in|of|above|below|estimated|untreated|measured|points|"
                     r"history|dispensed|before|after|not|from)\b")
DECIMALS = {"ldl_max_mmol": 2, "ldl_untreated_estimate_mmol": 2, "probability": 2}


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "region"
    demo(out, n_patients=6000, seed=2026, months=0.2)   # the history and one week
    nights = sorted(p for p in (out / "runs").iterdir() if p.is_dir() and not p.name.startswith("."))
    return out, nights


def listed(night: Path) -> list[dict]:
    with open(night / "referrals.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_the_demo_lists_somebody(region):
    _, nights = region
    assert sum(len(listed(n)) for n in nights) > 0


def test_review_page_and_worklist_agree_for_every_listed_patient(region, capsys):
    out, nights = region
    settings = load_settings()
    db_path = out / "fh_screen.duckdb"
    night = nights[-1]
    con = db.connect(db_path, read_only=True)
    try:
        pages = {}
        for n in nights:
            for row in listed(n):
                pages[row["patient_id"]] = patient_page(con, row["patient_id"], settings, "da")
    finally:
        con.close()
    assert pages
    for sheet in (night / "worklists").glob("*.csv"):
        with open(sheet, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                page = pages[row["patient_id"]]
                for line in filter(None, row["reasons"].split(" | ")):
                    assert f"    - {line}" in page, (row["patient_id"], line)
                for line in filter(None, row["what_to_check"].split(" | ")):
                    assert f"    - {line}" in page
                assert f"  Action: {row['action']}" in page
    # The command prints the same page.
    pid = next(iter(pages))
    assert main(["explain", "--patient-id", pid, "--db", str(db_path), "--lang", "da"]) == 0
    assert capsys.readouterr().out == pages[pid]


def test_every_listed_patients_numbers_agree_with_their_words(region):
    out, nights = region
    settings = load_settings()
    con = db.connect(out / "fh_screen.duckdb", read_only=True)
    try:
        for n in nights:
            for row in listed(n):
                page = patient_page(con, row["patient_id"], settings, "en")
                highest = re.search(r"Highest LDL cholesterol: (\d+\.\d+) mmol/L", page)
                trend = re.search(r"highest (\d+\.\d+) mmol/L\. Dashed", page)
                if highest and trend:
                    assert highest[1] == trend[1], row["patient_id"]
                for m in re.finditer(r"LDL-C (\d+\.\d+) mmol/L is in the band (\d+\.\d) to under (\d+\.\d)", page):
                    assert float(m[2]) <= float(m[1]) < float(m[3]), (row["patient_id"], m[0])
                for m in re.finditer(r"LDL-C (\d+\.\d+) mmol/L is (\d+\.\d) mmol/L or above", page):
                    assert float(m[1]) >= float(m[2])
                for m in re.finditer(r"LDL-C (\d+\.\d+) mmol/L is above the Danish laboratory threshold of (\d\.\d)", page):
                    assert float(m[1]) > float(m[2])
                points = re.search(r"  DLCN: (\d+) points? \(", page)
                if points:
                    assert f"score {points[1]}:" in page
    finally:
        con.close()


def test_danish_worklists_contain_no_english(region):
    _, nights = region
    for n in nights:
        for page in (n / "worklists").glob("*.html"):
            source = re.sub(r"<style.*?</style>", " ", page.read_text(encoding="utf-8"), flags=re.S)
            text = html.unescape(re.sub(r"<[^>]+>", " ", source))
            text = re.sub(r"\s+", " ", text)
            found = ENGLISH.findall(text)
            assert not found, (page.name, found[:5])
            assert not re.search(r"\d\.\d", re.sub(r"\d{4}-\d{2}-\d{2}|fh-screen \S+|\b\d+\.\d+\.\d+\b", "", text)), page.name


def test_csvs_carry_at_most_the_stated_decimals(region):
    _, nights = region
    for n in nights:
        sheets = [n / "referrals.csv", *(n / "worklists").glob("*.csv")]
        for sheet in sheets:
            with open(sheet, encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    for col, places in DECIMALS.items():
                        value = row.get(col) or ""
                        if "." in value:
                            assert len(value.split(".")[1]) <= places, (sheet.name, col, value)
