"""Erasure that lasts: an erased person delivered again in a later full extract is set
aside at ingest (counted in the manifest, never loaded, never quarantined), so the store
and every output equal those of a region that never held them."""

from __future__ import annotations

import csv
import io
import json
import shutil

from adversarial_helpers import run_args
from reliability_helpers import db_snapshot, out_snapshot

PERSON = "000101"   # an index case's parent with relatives, contacts, labs and a referral


def _without(src, dst, person: str) -> None:
    dst.mkdir(parents=True)
    for path in src.iterdir():
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
        fields = path.read_text(encoding="utf-8").splitlines()[0].split(",")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(r for r in rows if person not in (r.get("patient_id"), r.get("relative_id")))
        (dst / path.name).write_text(buffer.getvalue(), encoding="utf-8")


def test_an_erased_person_stays_erased_when_the_old_delivery_is_run_again(region, fhscreen, tmp_path):
    assert fhscreen(*run_args(region))[0] == 0
    held = [p.name for p in region["out"].rglob("*") if p.is_file() and PERSON.encode() in p.read_bytes()]
    assert {"cascade.csv", "quarantine.csv"} & set(held) or len(held) > 2, held
    code, err = fhscreen("erase", "--db", region["db"], "--patient-id", PERSON)
    assert code == 0, err

    assert fhscreen(*run_args(region))[0] == 0                 # the old full extract, again
    manifest = json.loads((region["out"] / "run_manifest.json").read_text(encoding="utf-8"))
    aside = {t: c.get("set_aside_for_erasure", 0) for t, c in manifest["tables"].items()}
    assert aside["patients"] == 1 and aside["lab_results"] == 4 and aside["relations"] == 3
    assert "set aside (erased)" in fhscreen.out

    never = {**region, "extract": tmp_path / "never" / region["extract"].name,
             "db": tmp_path / "never" / "fh.duckdb", "out": tmp_path / "never" / "out"}
    _without(region["extract"], never["extract"], PERSON)
    assert fhscreen(*run_args(never))[0] == 0

    # File hashes and received counts (which include the set-aside rows) differ by design;
    # the register is the point.
    skip = {"deliveries", "delivery_stats", "erasure_register"}
    erased, clean = ({t: rows for t, rows in db_snapshot(db).items() if t not in skip}
                     for db in (region["db"], never["db"]))
    assert erased == clean
    # Received counts (they include the set-aside rows) and input hashes differ, by design.
    records = {"run_manifest.json", "audit.json", "quality/validation_summary.json"}
    erased_out, clean_out = ({k: v for k, v in out_snapshot(o).items() if k not in records}
                             for o in (region["out"], never["out"]))
    assert erased_out == clean_out
    for path in region["out"].rglob("*"):
        if path.suffix in (".csv", ".html", ".json"):   # PDFs' offsets may spell any digits
            assert PERSON not in path.read_text(encoding="utf-8"), path


def test_a_register_made_with_another_key_is_refused_not_ignored(region, fhscreen, monkeypatch):
    assert fhscreen(*run_args(region))[0] == 0
    monkeypatch.setenv("FH_SCREEN_ERASURE_KEY", "the region's key")
    assert fhscreen("erase", "--db", region["db"], "--patient-id", PERSON)[0] == 0
    monkeypatch.delenv("FH_SCREEN_ERASURE_KEY")
    code, err = fhscreen(*run_args(region))
    assert code == 2 and len(err) == 1 and "FH_SCREEN_ERASURE_KEY" in err[0], err
