"""THE usable lab result is defined once (``store/sql/usable_lab_results.sql``) and every
clinical reader of ``lab_results`` goes through it: features, LDL-C trend, worklist details,
cascade, prospective evidence and the pilot metrics."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from fh_screen.store import db

PACKAGE = Path(__file__).resolve().parents[2] / "pipelines" / "fh_screen"
AS_OF = date(2026, 11, 24)

ROWS = [  # result_id, sampled_at, analyte, value, censored, status -> usable?
    ("on_run_date", "2026-11-24 23:59:00", "ldl", 5.1, None, "final"),
    ("corrected", "2026-03-01 08:00:00", "tc", 7.9, None, "corrected"),
    ("withdrawn", "2026-03-02 08:00:00", "ldl", 9.9, None, "cancelled"),
    ("no_value", "2026-03-03 08:00:00", "ldl", None, None, "final"),
    ("next_day", "2026-11-25 00:00:00", "ldl", 6.0, None, "final"),
    ("censored", "2026-03-04 08:00:00", "tg", 20.0, ">", "final"),
    ("thyroid", "2026-03-05 08:00:00", "tsh", 5.2, None, "final"),
]
USABLE = {"on_run_date", "corrected", "censored", "thyroid"}
LIPIDS = USABLE - {"thyroid"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("usable") / "store.duckdb"
    con = db.connect(path)
    for rid, sampled, analyte, value, censored, status in ROWS:
        con.execute("INSERT INTO lab_results VALUES (?, 'P1', ?, ?, 'measured', 'x', ?, 'u', ?, '', '', ?, NULL, 'd')",
                    [rid, sampled, analyte, value, censored, status])
    con.close()
    return path


def _ids(con, macro: str) -> set[str]:
    return {r[0] for r in con.execute(f"SELECT result_id FROM {macro}($as_of)", {"as_of": AS_OF}).fetchall()}


def test_usable_means_not_withdrawn_with_a_value_sampled_by_the_run_date(store):
    con = db.connect(store, read_only=True)  # a read-only reader (explain, training) sees the definition
    try:
        assert _ids(con, "usable_lab_results") == USABLE
        assert _ids(con, "usable_lipid_results") == LIPIDS
        day = con.execute("SELECT sample_date FROM usable_lab_results($as_of) WHERE result_id = 'on_run_date'",
                          {"as_of": AS_OF}).fetchone()[0]
        assert day == AS_OF
    finally:
        con.close()


def test_features_read_exactly_the_usable_results(store):
    con = db.connect(store, read_only=True)
    try:
        got = {r[0] for r in con.execute(f"SELECT result_id FROM ({db.sql('feat_lab_results')})",
                                         {"as_of": AS_OF}).fetchall()}
    finally:
        con.close()
    assert got == USABLE


# Readers of the raw table that are not a clinical use, each with its reason.
RAW_READERS = {
    "store/sql/usable_lab_results.sql": "the definition itself",
    "store/sql/validate/unit_shift.sql": "drift: every stored row's unit, withdrawn ones included",
    "store/sql/validate/new_codes.sql": "drift: every code ever stored, withdrawn ones included",
}
# The input side (parsing a delivery, converting or generating extracts) decides what
# 'cancelled' means; the scan covers everything that reads the curated store.
INPUT_SIDE = ("stages/ingest/", "convert/", "synth/")
READ_RAW = re.compile(r"\b(FROM|JOIN)\s+lab_results\b", re.IGNORECASE)
WITHDRAWN_TEST = re.compile(r"(<>|!=|==|=)\s*['\"]cancelled['\"]|['\"]cancelled['\"]\s*(<>|!=|==|=)")


def _code(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return re.sub(r"--[^\n]*", "", text) if path.suffix == ".sql" else text


def test_no_other_copy_of_the_usable_filter():
    """A step that filters lab_results itself (status, value, date) would drift from the
    definition; it must read usable_lab_results / usable_lipid_results instead."""
    copies = []
    for path in sorted([*PACKAGE.rglob("*.sql"), *PACKAGE.rglob("*.py")]):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(INPUT_SIDE):
            continue
        code = _code(path)
        if READ_RAW.search(code) and rel not in RAW_READERS:
            copies.append(f"{rel}: reads lab_results directly")
        if WITHDRAWN_TEST.search(code) and rel not in ("store/sql/usable_lab_results.sql",
                                                       "store/sql/validate/lab_results.sql"):
            copies.append(f"{rel}: tests status 'cancelled' itself")
    assert not copies, "\n".join(copies)
