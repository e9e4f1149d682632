"""Hostile and broken deliveries: readers, parsers and unit conversion never crash, hang
or lose rows silently; identifiers from input never become SQL or leave a folder.

Every delivered file either stages (each row loaded or quarantined with a rule and a
reason: received = staged + quarantined) or is refused with one DeliveryError line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from fh_screen.store import db, files
from fh_screen.stages.ingest import normalise as nz
from fh_screen.config import load_settings
from fh_screen.schemas import TABLES
from fh_screen.errors import DeliveryError
from fh_screen.stages.ingest.step import staging_table
from fh_screen.stages.ingest.readers import read_table
from fh_screen.stages.ingest.staging import stage_table

ROOT = Path(__file__).resolve().parents[2]
INGEST = load_settings().ingest
CANARY = "CANARY0042"       # a patient id that must never appear in an error message
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNITS = pl.read_csv(nz.REFERENCE / "unit_conversions.csv", infer_schema=False)
CODES = pl.read_csv(nz.REFERENCE / "analyte_codes.csv", infer_schema=False)


@dataclass
class StagedRows:
    good: pl.DataFrame
    bad: pl.DataFrame


def stage_bytes(table: str, data: bytes, suffix: str = ".csv"):
    """Read and stage ``data`` as the delivered file of ``table``: (received, staged rows) or
    the error. Staging must leave no Parquet part behind when it refuses a file."""
    with tempfile.TemporaryDirectory() as tmp:
        path, scratch = Path(tmp) / f"{table}{suffix}", Path(tmp) / "scratch"
        path.write_bytes(data)
        scratch.mkdir()
        try:
            delivered = read_table(table, path, INGEST)
            staged = stage_table(delivered, INGEST.extra_codes, scratch)
            return staged.received, StagedRows(staged.good(), staged.bad)
        except DeliveryError as exc:
            assert not list(scratch.iterdir())
            return None, exc


def check_outcome(received, staged, written_rows: int | None = None) -> None:
    if received is None:
        message = str(staged)
        assert isinstance(staged, DeliveryError)
        assert message and "\n" not in message and CANARY not in message
        return
    assert staged.good.height + staged.bad.height == received, "a row was lost without a quarantine entry"
    if written_rows is not None:
        assert received == written_rows, "the reader merged or dropped rows"
    assert staged.bad["rule"].null_count() == 0 and staged.bad["reason"].null_count() == 0
    assert all(rule.startswith("ingest.") for rule in staged.bad["rule"])
    assert all(reason and CANARY not in reason for reason in staged.bad["reason"])
    assert all(len(raw) <= 20_000 for raw in staged.bad["raw"])


def csv_bytes(header: list[str], rows: list[list[str]], delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


# --- arbitrary bytes and cells -------------------------------------------------------

@FAST
@given(data=st.binary(max_size=2000), table=st.sampled_from(["patients", "lab_results"]))
@example(data=b"\xff\xfe\x00p\x00a", table="patients")
@example(data=b"patient_id,birth_date\n\"unterminated,1990-01-01\n", table="patients")
@example(data=b"\n\n\n", table="lab_results")
@example(data=b"\r\x01", table="patients")
def test_arbitrary_bytes_are_staged_or_refused_in_one_line(data, table):
    check_outcome(*stage_bytes(table, data))


@FAST
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_as_parquet_are_refused_in_one_line(data):
    received, outcome = stage_bytes("patients", data, ".parquet")
    check_outcome(received, outcome)


cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "5,4", "1e400", "٣", "５.４", "<0,1", ">=20", "NaN", "-0", "1.234,5",
                     "2026-02-30", "2026-13-01", "9999-12-31T25:61", "\x00", '"', "'); DROP TABLE patients; --",
                     "=cmd|' /C calc'!A0", "<script>alert(1)</script>", "\r", "\u2028", "x" * 2000]),
)


@FAST
@given(rows=st.lists(st.lists(cell, min_size=8, max_size=9), min_size=1, max_size=25),
       delimiter=st.sampled_from([",", ";", "\t", "|"]))
def test_arbitrary_lab_cells_are_loaded_or_quarantined(rows, delimiter):
    header = TABLES["lab_results"].column_names
    rows = [[CANARY if i == 1 else c for i, c in enumerate(row)] for row in rows]
    check_outcome(*stage_bytes("lab_results", csv_bytes(header, rows, delimiter)), written_rows=len(rows))


@FAST
@given(rows=st.lists(st.lists(cell, min_size=7, max_size=7), min_size=1, max_size=25))
def test_arbitrary_patient_cells_are_loaded_or_quarantined(rows):
    header = TABLES["patients"].column_names
    rows = [[CANARY, *row[1:]] for row in rows]
    check_outcome(*stage_bytes("patients", csv_bytes(header, rows)), written_rows=len(rows))


# --- parsers and unit conversion -----------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), cell, st.from_regex(r"[<>]?[+-]?[0-9.,]{1,12}([eE][+-]?[0-9]{1,4})?")),
                      min_size=1, max_size=40),
       decimal=st.sampled_from([".", ","]))
@example(texts=["1e400", "٣", "５.４", "-1e999"], decimal=".")
def test_parse_number_gives_a_finite_value_or_a_problem(texts, decimal):
    """No silent NULL and no infinity: a delivered value parses, or gets a rule code."""
    frame = nz.clean(pl.DataFrame({"t": texts}, schema={"t": pl.String}), ["t"])
    value, _, problem = nz.parse_number(frame["t"], decimal)
    for text, v, p in zip(frame["t"], value, problem):
        if text is None:
            assert v is None and p is None
        elif v is None:
            assert p in (nz.UNPARSEABLE, nz.AMBIGUOUS_DECIMAL), text
        else:
            assert math.isfinite(v) and p is None, text


@settings(max_examples=100, deadline=None)
@given(value=st.floats(min_value=0, max_value=1e6, allow_nan=False),
       pair=st.sampled_from(list(UNITS.select("analyte", "unit").iter_rows())),
       unit_noise=st.sampled_from(["", " ", "x"]),
       case=st.sampled_from([str, str.upper, str.lower]))
def test_unit_conversion_matches_the_table_or_quarantines(value, pair, unit_noise, case):
    analyte, unit = pair
    codes = CODES.filter(pl.col("analyte") == analyte)["code"]
    assume(codes.len() > 0)
    delivered_unit = case(unit) + unit_noise
    row = ["R1", CANARY, "2025-01-01", codes[0], repr(value), delivered_unit, "final", ""]
    received, staged = stage_bytes("lab_results", csv_bytes(TABLES["lab_results"].column_names, [row]))
    check_outcome(received, staged, written_rows=1)
    if staged.good.height:
        conv = UNITS.filter((pl.col("analyte") == analyte)
                            & (pl.col("unit").str.to_lowercase() == unit.lower())).row(0, named=True)
        expected = value * float(conv["factor"]) + float(conv["offset"])
        assert staged.good["value"][0] == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert unit_noise != "x"
    else:
        assert staged.bad["rule"][0] == nz.UNIT_MISMATCH and unit_noise == "x"


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), st.text(max_size=25)), min_size=1, max_size=30))
def test_dates_codes_and_units_never_raise(texts):
    series = pl.Series("t", texts, dtype=pl.String)
    assert nz.parse_date(series).len() == nz.parse_datetime(series).len() == len(texts)
    out = series.to_frame().select(nz.normalise_icd10(pl.col("t")), nz.unit_key(pl.col("t")).alias("u"))
    assert out.height == len(texts)


# --- memory on large input -----------------------------------------------------------

MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from fh_screen.config import load_settings
    from fh_screen.errors import DeliveryError
    from fh_screen.stages.ingest.readers import read_table
    from fh_screen.stages.ingest.staging import stage_table
    ingest = load_settings().ingest
    scratch = Path(sys.argv[3])
    stage_table(read_table("lab_results", Path(sys.argv[2]), ingest), {}, scratch).remove_parts()  # warm up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        staged = stage_table(read_table("lab_results", Path(sys.argv[1]), ingest), {}, scratch)
        outcome = {"rows": staged.rows + staged.bad.height, "bad": staged.bad.height,
                   "raw_chars": max((len(r) for r in staged.bad["raw"]), default=0)}
    except DeliveryError as exc:
        outcome = {"error": str(exc)}
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({**outcome, "peak_increase_kib": after - before}))
""")
BIG = 50 * 1024 * 1024


def _probe(tmp_path: Path, content: bytes) -> dict:
    big, small = tmp_path / "lab_results.csv", tmp_path / "small" / "lab_results.csv"
    big.write_bytes(content)
    small.parent.mkdir()
    small.write_bytes(csv_bytes(TABLES["lab_results"].column_names,
                                [["R1", "P1", "2025-01-01", "NPU01568", "5.4", "mmol/L", "final", ""]]))
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(big), str(small), str(tmp_path)], capture_output=True,
                            env={"PYTHONPATH": str(ROOT / "pipelines"), "PATH": "/usr/bin:/bin"}, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("shape", ["one_line_without_newline", "huge_number_field", "huge_id_field"])
def test_a_50_mb_single_line_keeps_memory_bounded(tmp_path, shape):
    """Peak memory grows by a small multiple of the file at most (bounded, not timed)."""
    header = ",".join(TABLES["lab_results"].column_names).encode()
    good = b"R0,P0,2025-01-01,NPU01568,5.4,mmol/L,final,\n"
    if shape == "one_line_without_newline":
        content = b"x" * BIG
    elif shape == "huge_number_field":
        content = header + b"\n" + good + b"R1,P1,2025-01-01,NPU01568," + b"9" * BIG + b",mmol/L,final,\n"
    else:
        content = header + b"\n" + good + b"R1," + b"P" * BIG + b",2025-01-01,NPU01568,5.4,mmol/L,final,\n"
    outcome = _probe(tmp_path, content)
    print(shape, outcome)
    increase = outcome["peak_increase_kib"] * 1024
    if shape == "one_line_without_newline":
        assert "header line is longer than" in outcome["error"]
        assert increase < 16 * 1024 * 1024          # only the first MiB is ever read
    else:
        assert outcome["rows"] == 2
        assert outcome["raw_chars"] < 20_000         # quarantine keeps a cut of the field, not 50 MB
        assert increase < 12 * BIG                   # measured 1x (id field) to 9x (number field)


# --- identifiers: SQL and file names -------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(name=st.one_of(st.text(max_size=40), st.sampled_from(["patients; DROP TABLE x", "Patients", "stg_patients",
                                                             "patients--", "quarantine", "main.patients"])))
def test_table_names_from_input_are_rejected(name):
    if name in db.CONTRACT_TABLES:
        assert db.checked_table(name) == name
        assert staging_table(name) == f"stg_{name}"
    else:
        with pytest.raises(ValueError):
            db.checked_table(name)
        with pytest.raises(ValueError):
            staging_table(name)


HOSTILE_IDS = ["../../etc/passwd", "/abs", "/", "..", ".", "", "\x00", "a\x00b", "x" * 5000, "..\\..\\win",
               "~root", "CON", "a/../../b", " ", "...", "\u202e", "P0101/../../../x"]


@settings(max_examples=300, deadline=None)
@given(name=st.one_of(st.text(max_size=300), st.sampled_from(HOSTILE_IDS)), ext=st.sampled_from(["", ".html", ".pdf"]))
def test_ids_in_file_names_stay_in_their_folder(tmp_path_factory, name, ext):
    folder = tmp_path_factory.getbasetemp() / "names"
    path = files.child_path(folder, name + ext)
    assert path.parent == folder.resolve()
    assert 0 < len(path.name) <= files.MAX_NAME
    assert "\x00" not in path.name and not path.name.startswith(".")
    if ext and len(name + ext) > files.MAX_NAME:
        assert path.name.endswith(ext), "a long id lost its extension (html and pdf would collide)"


def test_long_ids_that_share_a_start_do_not_collide(tmp_path):
    a, b = "P" * 100 + "A", "P" * 100 + "B"
    names = {files.child_path(tmp_path, x + e).name for x in (a, b) for e in (".html", ".pdf", ".csv")}
    assert len(names) == 6
    assert {n.rsplit(".", 1)[0] for n in names} == {files.child_path(tmp_path, a).name, files.child_path(tmp_path, b).name}


def test_hostile_values_and_headers_are_data_not_sql(tmp_path):
    """A delivery whose ids and header try SQL injection loads as data; tables stay intact."""
    from fh_screen.app import run
    from fh_screen.context import RunContext

    extract = tmp_path / "hostile"
    extract.mkdir()
    evil = "x'); DROP TABLE patients; --"
    (extract / "patients.csv").write_bytes(csv_bytes(
        ["patient_id", "birth_date", "sex", "practice_id", 'x"; DROP TABLE lab_results; --'],
        [[evil, "1970-01-01", "F", "P1", "1"], ["P2", "1971-01-01", "M", '"; DELETE FROM patients; --', "2"]]))
    (extract / "lab_results.csv").write_bytes(csv_bytes(
        TABLES["lab_results"].column_names,
        [["R1", evil, "2025-01-01", "NPU01568", "5.4", "mmol/L", "final", "P1"]]))
    ctx = run.prepare(extract, tmp_path / "store.duckdb", tmp_path / "out", run.date(2026, 11, 23), load_settings())
    for step in ("stage", "load"):
        run.execute_step(ctx, step)
    con = db.connect(tmp_path / "store.duckdb", read_only=True)
    try:
        assert sorted(r[0] for r in con.execute("SELECT patient_id FROM patients").fetchall()) == ["P2", evil]
        assert con.execute("SELECT patient_id FROM lab_results").fetchall() == [(evil,)]
        assert con.execute("SELECT practice_id FROM patients WHERE patient_id = 'P2'").fetchone()[0].startswith('"')
    finally:
        con.close()
    assert ctx.manifest["tables"]["patients"]["ignored_columns"] == ['x"; drop table lab_results; --']
    assert isinstance(ctx, RunContext)
