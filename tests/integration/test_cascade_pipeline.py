"""The cascade step after real ingestion of the contract's mini delivery (tests/fixtures/mini)."""

from datetime import date
from pathlib import Path

import polars as pl
import pypdf

from fh_screen.app import run
from fh_screen.config import load_settings

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "mini"
CONTRACT_COLUMNS = ["index_patient_id", "relative_id", "relationship", "degree", "status", "letter"]


def test_mini_delivery_through_ingest_and_cascade(tmp_path):
    base = load_settings()
    settings = base.model_copy(update={"cascade": base.cascade.model_copy(update={"direct_contact": True})})
    ctx = run.prepare(MINI, tmp_path / "fh.duckdb", tmp_path / "out", date(2026, 11, 23), settings)
    for step in ("stage", "load", "cascade"):
        run.execute_step(ctx, step)
    report = ctx.manifest["steps"]["cascade"]
    out = pl.read_csv(ctx.work_dir / "cascade.csv", infer_schema=False)
    assert out.columns[: len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS
    rows = {r["relative_id"]: r for r in out.iter_rows(named=True)}
    # index 000101 (fh_genetic): daughter 000103 recorded in both directions, sister 000112
    assert set(rows) == {"000103", "000112"}
    assert rows["000103"]["relationship"] == "child" and rows["000103"]["degree"] == "1"
    assert rows["000112"]["relationship"] == "sibling"
    # the daughter is 14: her mother is the index case, whose own letter covers her
    assert rows["000103"]["letter"] == "letters/index_000101.pdf"
    assert rows["000112"]["letter"] == "letters/relative_000101_000112.pdf"
    assert report["index_cases"] == 1 and report["letters_new"] == {"index": 1, "relative": 1}
    # language from contacts: Karen (da), Anne Smith (en)
    index_text = pypdf.PdfReader(ctx.work_dir / "letters" / "index_000101.pdf").pages[0].extract_text()
    assert "Kære Karen Sørensen" in index_text
    sister_text = pypdf.PdfReader(ctx.work_dir / "letters" / "relative_000101_000112.pdf").pages[0].extract_text()
    assert "Dear Anne Smith" in sister_text and "Karen" not in sister_text
    assert "run_manifest.json" in {p.name for p in ctx.work_dir.iterdir()}
