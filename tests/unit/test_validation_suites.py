"""The reviewed expectation suites against the schema, the check relations and GX itself.

These fail when the curated schema, the suites and the SQL check relations drift apart.
"""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from fh_screen.store import db
from fh_screen.stages.validate.gx_runner import SUITE_DIR, load_suite
from fh_screen.stages.validate.step import REFERENCE

SEVERITIES = {"structural", "row", "drift"}


def _schema_columns() -> dict[str, list[str]]:
    con = duckdb.connect()
    con.execute(db.sql("schema"))
    out = {t: [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()] for t in db.CONTRACT_TABLES}
    con.close()
    return out


def test_one_suite_per_contract_table():
    assert sorted(p.stem for p in SUITE_DIR.glob("*.json")) == sorted(db.CONTRACT_TABLES)


@pytest.mark.parametrize("table", db.CONTRACT_TABLES)
def test_suite_is_reviewed_and_loads_in_gx(table):
    import great_expectations as gx

    suite = load_suite(table)
    assert suite["name"] == table and suite["meta"]["table"] == table
    for e in suite["expectations"]:
        meta = e["meta"]
        assert meta["severity"] in SEVERITIES, e
        assert len(meta["why"]) > 20, e
        if meta["severity"] == "row":
            assert meta["reason"] and "{" not in meta["reason"], e
            assert "column" in e["kwargs"], "row-level expectations are per column"
    gx.ExpectationSuite(**json.loads((SUITE_DIR / f"{table}.json").read_text(encoding="utf-8")))


@pytest.mark.parametrize("table", db.CONTRACT_TABLES)
def test_required_columns_match_the_curated_schema(table):
    suite = load_suite(table)
    (columns,) = [e for e in suite["expectations"] if e["type"] == "expect_table_columns_to_match_set"]
    staged = [c for c in _schema_columns()[table] if c != "delivery_id"] + ["_row"]
    assert columns["kwargs"]["column_set"] == staged


def test_every_column_a_suite_names_exists_in_its_check_relation(tmp_path):
    """Build the gx_* relations over empty stg_* tables and look up each column."""
    from validation_helpers import empty_relations

    relations = empty_relations(tmp_path)
    for table in db.CONTRACT_TABLES:
        for e in load_suite(table)["expectations"]:
            column = e["kwargs"].get("column")
            if column:
                assert column in relations[table], (table, column)


def test_plausible_ranges_cover_every_analyte_in_its_canonical_unit():
    ranges = pl.read_csv(REFERENCE / "analyte_ranges.csv")
    codes = pl.read_csv(REFERENCE / "analyte_codes.csv").select("analyte", "canonical_unit").unique()
    joined = codes.join(ranges, on="analyte", how="left")
    assert joined.filter(pl.col("unit").is_null()).height == 0, "an analyte has no plausible range"
    assert (joined["unit"] == joined["canonical_unit"]).all()
    assert (ranges["low"] < ranges["high"]).all() and (ranges["low"] >= 0).all()
    assert ranges["source"].str.len_chars().min() > 10
    ldl = ranges.filter(pl.col("analyte") == "ldl").row(0, named=True)
    assert (ldl["low"], ldl["high"]) == (0.05, 30)
