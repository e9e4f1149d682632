"""Attacks that aim at the outputs: a night where nobody can be scored, markup in the
delivery's name, long and clashing ids as file names."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from adversarial_helpers import run_args
from fh_screen.stages.score import artefact

HOSTILE_NAME = '2026-11-23<img src=x onerror=alert(1)>'


def _model_config(region) -> None:
    """The packaged model when the checkout has one (the crash was in the scorer)."""
    if (artefact.resolve("models/fh_gbm") / "model.skops").is_file():
        region["config"].write_text("model:\n  enabled: true\n", encoding="utf-8")


@pytest.mark.parametrize("night", ["as-of-before-the-data", "no-lipid-panels"])
def test_a_night_where_nobody_can_be_scored_is_a_normal_night(region, fhscreen, night):
    _model_config(region)
    as_of = "2026-11-23"
    if night == "as-of-before-the-data":
        as_of = "2001-01-01"
    else:
        labs = region["extract"] / "lab_results.csv"
        lines = labs.read_text(encoding="utf-8").splitlines()
        keep = [lines[0]] + [l for l in lines[1:] if not any(c in l for c in (
            "NPU01568", "NPU01566", "NPU01567", "NPU04094", "13457-7", "2093-3", "2571-8", "2085-9",
            "18262-6", "DNK35308"))]
        labs.write_text("\n".join(keep) + "\n", encoding="utf-8")
    code, err = fhscreen(*run_args(region, as_of=as_of))
    assert code == 0, err
    manifest = json.loads((region["out"] / "run_manifest.json").read_text(encoding="utf-8"))
    assert manifest["population"]["eligible_for_scoring"] == 0
    assert "LDL-C" in manifest["population"]["empty_because"]
    rows = list(csv.reader(io.StringIO((region["out"] / "referrals.csv").read_text(encoding="utf-8"))))
    assert len(rows) == 1                                       # the header only
    assert fhscreen(*run_args(region, as_of=as_of))[0] == 0     # and a rerun is as normal


def test_markup_in_the_delivery_name_never_reaches_data_docs_raw(region, fhscreen):
    hostile = region["root"] / HOSTILE_NAME
    shutil.move(region["extract"], hostile)
    code, err = fhscreen(*run_args(region, extract=hostile))
    assert code == 0, err
    pages = list((region["out"] / "quality").rglob("*"))
    assert pages
    for page in pages:
        if page.is_file():
            assert b"<img src=x" not in page.read_bytes(), page.name
            assert b"onerror=alert" not in page.read_bytes() or b"&lt;img" in page.read_bytes(), page.name


def test_letter_paths_of_long_ids_name_files_that_exist(region, fhscreen):
    """Ids over about 60 characters: cascade.csv and cascade_letters named letters that were
    never written."""
    long_id = {"000101": "A" * 70 + "101", "000103": "B" * 70 + "103", "000112": "C" * 90 + "112"}
    for path in region["extract"].glob("*.csv"):
        text = path.read_text(encoding="utf-8")
        for old, new in long_id.items():
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    region["config"].write_text("model:\n  enabled: false\ncascade:\n  direct_contact: true\n", encoding="utf-8")
    code, err = fhscreen(*run_args(region))
    assert code == 0, err
    named = set()
    for row in csv.DictReader(io.StringIO((region["out"] / "cascade.csv").read_text(encoding="utf-8"))):
        named |= {row[c] for c in row if c.endswith("letter") and row[c]}
    import duckdb
    con = duckdb.connect(str(region["db"]), read_only=True)
    named |= {r[0] for r in con.execute("SELECT file FROM cascade_letters").fetchall()}
    con.close()
    assert named, "the attack needs letters"
    for name in named:
        assert (region["out"] / name).is_file(), name
        assert (region["out"] / name).with_suffix(".html").is_file(), name


def test_reserved_and_case_clashing_practice_ids_get_distinct_files(region, fhscreen):
    patients = region["extract"] / "patients.csv"
    text = patients.read_text(encoding="utf-8")
    text = text.replace(",P0101,", ",CON,").replace(",P0102,", ",abc,").replace(",P0103,", ",ABC,")
    patients.write_text(text, encoding="utf-8")
    code, err = fhscreen(*run_args(region))
    assert code == 0, err
    names = [p.name for p in (region["out"] / "worklists").iterdir()]
    folded = [n.casefold() for n in names]
    assert len(set(folded)) == len(folded), names
    stems = {n.split(".")[0].upper() for n in names}
    assert not stems & {"CON", "PRN", "AUX", "NUL"}, names
