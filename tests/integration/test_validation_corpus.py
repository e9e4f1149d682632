"""A corpus of bad deliveries, one per failure class, each run through the ``fhscreen run``
command in-process with its asserted outcome.

Structural problems must stop the run with exit status 2 and exactly one line on stderr
naming the file (and column), before anything is published. Row-level problems must
quarantine exactly the bad rows with the rule that caught them, and the run goes on.
In every run no traceback reaches the user and received = loaded + quarantined.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from fh_screen.app import run as run_module
from fh_screen.app.cli import main

AS_OF = "2026-11-23"
PATIENTS = [
    {"patient_id": "000101", "birth_date": "1970-03-01", "sex": "F", "practice_id": "P1",
     "postcode": "5000", "deceased_date": "", "moved_out_date": ""},
    {"patient_id": "000102", "birth_date": "1985-07-15", "sex": "M", "practice_id": "P1",
     "postcode": "7100", "deceased_date": "2024-06-30", "moved_out_date": ""},
    {"patient_id": "000103", "birth_date": "2001-01-20", "sex": "U", "practice_id": "",
     "postcode": "8000", "deceased_date": "", "moved_out_date": ""},
]
LABS = [
    {"result_id": "R1", "patient_id": "000101", "sampled_at": "2025-02-03", "analyte": "NPU01568",
     "value": "5.4", "unit": "mmol/L", "status": "final", "ordering_practice_id": "P1"},
    {"result_id": "R2", "patient_id": "000101", "sampled_at": "2025-02-03", "analyte": "NPU01566",
     "value": "7.9", "unit": "mmol/L", "status": "final", "ordering_practice_id": "P1"},
    {"result_id": "R3", "patient_id": "000102", "sampled_at": "2024-01-10T08:30:00", "analyte": "NPU01568",
     "value": "<0.1", "unit": "mmol/L", "status": "final", "ordering_practice_id": "P1"},
    {"result_id": "R4", "patient_id": "000103", "sampled_at": "2025-09-09", "analyte": "NPU03577",
     "value": "2.1", "unit": "mIU/L", "status": "corrected", "ordering_practice_id": ""},
]


@pytest.fixture(autouse=True)
def _data_steps_only(monkeypatch):
    """The corpus is about what a delivery does to the data: run stage, validate and load
    (the later steps need a trained model and are tested with their own fixtures)."""
    steps = [s for s in run_module.STEPS if s.name in ("stage", "validate", "load")]
    assert [s.name for s in steps] == ["stage", "validate", "load"]
    monkeypatch.setattr(run_module, "STEPS", steps)


def _csv(rows: list[dict], columns: list[str] | None = None, delimiter: str = ",", newline: str = "\n") -> str:
    columns = columns or list(rows[0])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter, lineterminator=newline,
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _with(rows: list[dict], index: int, **changes) -> list[dict]:
    return [({**row, **changes} if i == index else row) for i, row in enumerate(rows)]


def _delivery(tmp_path: Path, **files: str | bytes | None) -> Path:
    """A delivery folder: good patients and lab_results unless a file is given (None = absent)."""
    folder = tmp_path / "extracts" / AS_OF
    folder.mkdir(parents=True)
    contents = {"patients.csv": _csv(PATIENTS), "lab_results.csv": _csv(LABS)}
    contents.update({name.replace("__", "."): data for name, data in files.items()})
    for name, data in contents.items():
        if data is None:
            continue
        path = folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return folder


def _run(tmp_path: Path, folder: Path, capsys) -> tuple[int, str, dict | None]:
    out = tmp_path / "out"
    rc = main(["run", "--extract", str(folder), "--db", str(tmp_path / "fh.duckdb"), "--out", str(out),
               "--as-of", AS_OF, "--quiet"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    manifest = None
    if rc == 0:
        manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
        for table, counts in manifest["tables"].items():
            assert counts["received"] == counts["loaded"] + counts["quarantined"], table
    else:
        assert len(err.strip().splitlines()) == 1, err
        assert not out.exists(), "a stopped run must not publish outputs"
    return rc, err.strip(), manifest


def _quarantine(tmp_path: Path) -> pl.DataFrame:
    return pl.read_csv(tmp_path / "out" / "quarantine.csv", infer_schema=False)


def _rules(tmp_path: Path) -> dict[str, int]:
    frame = _quarantine(tmp_path)
    return dict(zip(*frame.group_by("rule").len().sort("rule").to_dict(as_series=False).values()))


def _loaded(tmp_path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(tmp_path / "fh.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --- structural: exit 2, one line naming file (and column), nothing published -------------

STRUCTURAL = {
    "missing_required_file": (dict(lab_results__csv=None), "lab_results.csv: required file missing"),
    "missing_required_column": (
        dict(patients__csv=_csv(PATIENTS, [c for c in PATIENTS[0] if c != "birth_date"])),
        "patients.csv: required column birth_date is missing",
    ),
    "unreadable_file": (
        dict(lab_results__csv=None, lab_results__parquet=b"PAR1 this is not parquet"),
        "lab_results.parquet: not a readable Parquet file",
    ),
    "wrong_type_whole_column": (
        dict(lab_results__csv=_csv([{**r, "value": "high"} for r in LABS])),
        "lab_results.csv: column value: no value could be read as a number",
    ),
    "empty_required_table": (
        dict(patients__csv=_csv(PATIENTS)[: _csv(PATIENTS).index("\n") + 1]),
        "patients.csv: required table has no data rows",
    ),
    "wrong_encoding_utf16": (
        dict(patients__csv=_csv(PATIENTS).encode("utf-16")),
        "patients.csv: file is UTF-16 or binary",
    ),
    "huge_header_line": (
        dict(patients__csv="patient_id," + "x" * (1 << 21) + "\n000101\n"),
        "patients.csv: header line is longer than",
    ),
}


@pytest.mark.parametrize("case", sorted(STRUCTURAL))
def test_structural_problem_stops_the_run_with_one_line(case, tmp_path, capsys):
    files, message = STRUCTURAL[case]
    rc, err, _ = _run(tmp_path, _delivery(tmp_path, **files), capsys)
    assert rc == 2
    assert err.startswith("fhscreen: ") and message in err
    assert "000101" not in err   # no patient id in the message


def test_parquet_with_wrong_types_stops_the_run(tmp_path, capsys):
    folder = _delivery(tmp_path, lab_results__csv=None)
    frame = pl.DataFrame(LABS).with_columns(pl.lit(True).alias("value"))   # boolean cannot hold a number
    frame.write_parquet(folder / "lab_results.parquet")
    rc, err, _ = _run(tmp_path, folder, capsys)
    assert rc == 2
    assert "lab_results.parquet: column value has Parquet type Boolean" in err


# --- row level: exactly the bad rows quarantined, with the rule; the run goes on -----------

ROW_LEVEL = {
    # case: (files, {rule: count})
    "duplicates": (dict(lab_results__csv=_csv(LABS + [LABS[0]])), {"ingest.duplicate_key": 1}),
    "orphan_lab_row": (
        dict(lab_results__csv=_csv(_with(LABS, 1, patient_id="999999"))),
        {"gx.expect_column_values_to_be_in_set.patient_known": 1},
    ),
    "out_of_range_value": (
        dict(lab_results__csv=_csv(_with(LABS, 0, value="54"))),   # LDL-C 54 mmol/L
        {"gx.expect_column_values_to_be_in_set.value_plausible": 1},
    ),
    "future_date": (
        dict(lab_results__csv=_csv(_with(LABS, 3, sampled_at="2026-11-24"))),
        {"gx.expect_column_values_to_be_in_set.sampled_not_future": 1},
    ),
    "result_before_birth": (
        dict(lab_results__csv=_csv(_with(LABS, 3, sampled_at="2000-12-31"))),
        {"gx.expect_column_values_to_be_in_set.sampled_after_birth": 1},
    ),
    "result_after_death": (
        dict(lab_results__csv=_csv(_with(LABS, 2, sampled_at="2024-07-01"))),
        {"gx.expect_column_values_to_be_in_set.sampled_before_death": 1},
    ),
    "unit_not_fitting_analyte": (
        dict(lab_results__csv=_csv(_with(LABS, 0, unit="mIU/L"))),
        {"ingest.unit_mismatch": 1},
    ),
    "invalid_sex_and_status": (
        dict(patients__csv=_csv(_with(PATIENTS, 2, sex="X")),
             lab_results__csv=_csv(_with(LABS, 1, status="pending"))),
        # 000103's own row is rejected, so its lab row becomes an orphan too
        {"gx.expect_column_values_to_be_in_set.sex": 1,
         "gx.expect_column_values_to_be_in_set.status": 1,
         "gx.expect_column_values_to_be_in_set.patient_known": 1},
    ),
    "decimal_comma_in_comma_file": (
        dict(lab_results__csv=_csv(_with(LABS, 0, value="5,4"))),
        {"ingest.ambiguous_decimal": 1},
    ),
    "huge_line": (
        # a 2 MB value is over the field-length bound: stage quarantines it before parsing
        dict(lab_results__csv=_csv(_with(LABS, 1, value="7" * (1 << 21)))),
        {"ingest.field_too_long": 1},
    ),
}


@pytest.mark.parametrize("case", sorted(ROW_LEVEL))
def test_row_level_problem_quarantines_exactly_the_bad_rows(case, tmp_path, capsys):
    files, expected = ROW_LEVEL[case]
    rc, err, manifest = _run(tmp_path, _delivery(tmp_path, **files), capsys)
    assert rc == 0, err
    assert _rules(tmp_path) == expected
    quarantined = sum(expected.values())
    total = {t: c["quarantined"] for t, c in manifest["tables"].items()}
    assert sum(total.values()) == quarantined
    frame = _quarantine(tmp_path)
    assert frame["raw"].str.len_chars().max() <= 20_000, "raw values are cut, not copied whole"
    assert frame["reason"].str.contains("0001").sum() == 0, "reasons never name a patient"


def test_decimal_comma_is_never_loaded_as_a_larger_number(tmp_path, capsys):
    _run(tmp_path, _delivery(tmp_path, lab_results__csv=_csv(_with(LABS, 0, value="5,4"))), capsys)
    assert _loaded(tmp_path, "SELECT count(*) FROM lab_results WHERE value >= 54") == [(0,)]


# --- readable variants: loaded correctly, nothing quarantined ------------------------------

def _clean_run(tmp_path, folder, capsys) -> dict:
    rc, err, manifest = _run(tmp_path, folder, capsys)
    assert rc == 0, err
    assert {t: c["quarantined"] for t, c in manifest["tables"].items()} == {"lab_results": 0, "patients": 0}
    return manifest


def test_bom_is_accepted(tmp_path, capsys):
    _clean_run(tmp_path, _delivery(tmp_path, patients__csv=b"\xef\xbb\xbf" + _csv(PATIENTS).encode()), capsys)
    assert _loaded(tmp_path, "SELECT count(*) FROM patients") == [(3,)]


def test_crlf_line_endings_are_accepted(tmp_path, capsys):
    folder = _delivery(tmp_path, lab_results__csv=_csv(LABS, newline="\r\n"), patients__csv=_csv(PATIENTS, newline="\r\n"))
    _clean_run(tmp_path, folder, capsys)
    assert _loaded(tmp_path, "SELECT DISTINCT status FROM lab_results ORDER BY 1") == [("corrected",), ("final",)]


def test_cp1252_file_is_read_as_cp1252(tmp_path, capsys):
    rows = _with(PATIENTS, 0, postcode="Århus")
    _clean_run(tmp_path, _delivery(tmp_path, patients__csv=_csv(rows).encode("cp1252")), capsys)
    assert _loaded(tmp_path, "SELECT postcode FROM patients WHERE patient_id = '000101'") == [("Århus",)]


def test_empty_optional_table_is_a_warning_not_an_error(tmp_path, capsys):
    header = "patient_id,item,recorded_on\n"
    folder = _delivery(tmp_path, family_history__csv=header)
    out = tmp_path / "out"
    rc = main(["run", "--extract", str(folder), "--db", str(tmp_path / "fh.duckdb"), "--out", str(out),
               "--as-of", AS_OF, "--quiet"])
    printed = capsys.readouterr()
    assert rc == 0 and "Traceback" not in printed.err
    warning = "family_history: the delivered table has no rows (gx.expect_table_row_count_to_be_between)"
    assert f"warning: {warning}" in printed.out
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    assert warning in manifest["steps"]["validate"]["warnings"]
    assert manifest["tables"]["family_history"] == {**manifest["tables"]["family_history"], "received": 0, "loaded": 0}
