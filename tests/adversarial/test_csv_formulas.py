"""Spreadsheet formulas planted in every text column of every input table must not reach any
CSV the product writes as a live formula (referrals.csv, cascade.csv, quarantine.csv and
the worklists all go through one writer, ``files.write_csv`` / ``files.csv_text``)."""

from __future__ import annotations

import csv
import io
import re

import polars as pl

from adversarial_helpers import run_args
from fh_screen.schemas import ID, TABLES

FORMULA = re.compile(r"^(\s*[=+\-@]|[\t\r])")
# Identifiers are rewritten consistently in every table, so the people still link up and
# reach referrals, cascade and the worklists with a formula as their id.
ID_PREFIX = {"patient_id": "=", "relative_id": "=", "index_patient_id": "=", "practice_id": "-",
             "ordering_practice_id": "-", "result_id": "@"}
PLANTED = ["=2+5", "-1+1", "+3+4", "@SUM(1+1)", "=HYPERLINK(\"http://example.invalid\")", "\t=1", " =1+1"]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _hostile_delivery(folder) -> dict[str, int]:
    """Rewrite the delivery in place; returns the planted rows per table."""
    planted = {}
    for table, spec in TABLES.items():
        path = folder / f"{table}.csv"
        frame = pl.read_csv(path, infer_schema=False)
        frame = frame.with_columns(
            (pl.lit(ID_PREFIX[c]) + pl.col(c)).alias(c) for c in frame.columns if c in ID_PREFIX
        )
        extra = []
        for n, column in enumerate(frame.columns):
            if column in ID_PREFIX and spec.column(column).kind == ID and column in spec.key:
                continue
            row = frame.head(1).with_columns(pl.lit(PLANTED[n % len(PLANTED)]).alias(column))
            for key in spec.key:   # a new key, itself a formula, so the row is not a duplicate
                if key != column and frame.schema[key] == pl.String:
                    row = row.with_columns((pl.lit(f"=X{n}+") + pl.col(key)).alias(key))
            extra.append(row)
        planted[table] = len(extra)
        pl.concat([frame, *extra]).write_csv(path)
    return planted


def test_formulas_in_every_text_column_never_reach_a_csv_as_formulas(region, fhscreen):
    planted = _hostile_delivery(region["extract"])
    assert sum(planted.values()) >= 25
    code, err = fhscreen(*run_args(region))
    assert code == 0, err

    outputs = sorted(region["out"].rglob("*.csv"))
    names = {p.name for p in outputs}
    assert {"referrals.csv", "cascade.csv", "quarantine.csv"} <= names
    assert any(p.parent.name == "worklists" for p in outputs)
    cells = 0
    for path in outputs:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        # queue.csv has rows only when a clinic's week is full (not in this small region).
        assert len(rows) > 1 or path.name == "queue.csv", f"{path.name} is empty: the attack did not reach it"
        for row in rows:
            for cell in row:
                cells += 1
                assert not (FORMULA.match(cell) and not _is_number(cell)), (path.name, cell)
    # The planted ids are there, shown as text.
    referrals = (region["out"] / "referrals.csv").read_text(encoding="utf-8")
    cascade = (region["out"] / "cascade.csv").read_text(encoding="utf-8")
    quarantine = (region["out"] / "quarantine.csv").read_text(encoding="utf-8")
    assert "'=0001" in referrals and "'-P01" in referrals
    assert "'=0001" in cascade
    assert "'@R00" in quarantine or "'=X" in quarantine
    assert cells > 200
