"""Stage + load of whole deliveries into DuckDB: idempotency, corrections, cancellations,
the Danish dialect, structural refusals, and received = loaded + quarantined."""

import math
import shutil
from contextlib import closing
from datetime import date
from pathlib import Path

import duckdb
import pytest

from fh_screen.app import cli
from fh_screen.store import db
from fh_screen.stages.ingest import step as ingest
from fh_screen.schemas import TABLES
from fh_screen.errors import DeliveryError
from fh_screen.app.run import prepare

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
AS_OF = date(2026, 11, 23)


def ingest_delivery(extract: Path, db_path: Path, out: Path, as_of: date = AS_OF):
    """stage + load (validation is a separate step and not needed here)."""
    ctx = prepare(extract, db_path, out, as_of)
    ingest.stage_step(ctx)
    ingest.load_step(ctx)
    for table, counts in ctx.manifest["tables"].items():
        assert counts["received"] == counts["loaded"] + counts["quarantined"], table
    return ctx


def contents(db_path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in (*TABLES, "quarantine")}
    finally:
        con.close()


def lab(db_path: Path) -> dict[str, dict]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        cur = con.execute("SELECT * FROM lab_results")
        names = [d[0] for d in cur.description]
        return {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
    finally:
        con.close()


def test_mini_fixture_loads_completely(tmp_path):
    ctx = ingest_delivery(FIXTURES / "mini", tmp_path / "fh.duckdb", tmp_path / "out")
    assert ctx.delivery_id == "mini" and ctx.run_id == "2026-11-23_mini"
    assert ctx.present_tables == set(TABLES)
    tables = ctx.manifest["tables"]
    assert tables["lab_results"]["received"] == tables["lab_results"]["loaded"] == 28
    assert tables["patients"]["loaded"] == 12
    assert all(t["quarantined"] == 0 for t in tables.values())
    got = lab(tmp_path / "fh.duckdb")
    assert math.isclose(got["R0005"]["value"], 5.0, rel_tol=1e-9)        # 193.35 mg/dL LDL
    assert (got["R0012"]["value"], got["R0012"]["censored"]) == (20.0, ">")
    assert got["R0019"]["status"] == "cancelled"
    assert {r["delivery_id"] for r in got.values()} == {"mini"}
    con = duckdb.connect(str(tmp_path / "fh.duckdb"), read_only=True)
    assert con.execute("SELECT delivery_id, as_of FROM deliveries").fetchall() == [("mini", AS_OF)]
    assert con.execute("SELECT full_name FROM contacts WHERE patient_id = '000102'").fetchone() == ("Jens Æbelø",)


def test_the_same_delivery_twice_changes_nothing(tmp_path):
    dbp = tmp_path / "fh.duckdb"
    ingest_delivery(FIXTURES / "mini", dbp, tmp_path / "out")
    first = contents(dbp)
    ingest_delivery(FIXTURES / "mini", dbp, tmp_path / "out", as_of=date(2026, 11, 24))
    assert contents(dbp) == first


def test_rerun_with_quarantined_rows_duplicates_nothing(tmp_path):
    extract = tmp_path / "night1"
    shutil.copytree(FIXTURES / "mini", extract)
    with (extract / "lab_results.csv").open("a", encoding="utf-8") as handle:
        handle.write("R0099,000101,2024-03-01,NPU01568,high,mmol/L,final,P0101\n")
        handle.write("R0001,000101,2024-03-01 08:15:00,NPU01568,5.5,mmol/L,corrected,P0101\n")
    dbp = tmp_path / "fh.duckdb"
    ctx = ingest_delivery(extract, dbp, tmp_path / "out")
    counts = ctx.manifest["tables"]["lab_results"]
    assert (counts["received"], counts["loaded"], counts["quarantined"]) == (30, 28, 2)
    assert counts["quarantine_rules"] == {"ingest.duplicate_key": 1, "ingest.unparseable_value": 1}
    assert lab(dbp)["R0001"]["value"] == 5.5                              # the later row of the file wins
    first = contents(dbp)
    ingest_delivery(extract, dbp, tmp_path / "out")
    assert contents(dbp) == first
    assert len(first["quarantine"]) == 2


def test_a_later_delivery_corrects_and_cancels(tmp_path):
    dbp = tmp_path / "fh.duckdb"
    ingest_delivery(FIXTURES / "mini", dbp, tmp_path / "out")
    ingest_delivery(FIXTURES / "mini_next", dbp, tmp_path / "out", as_of=date(2026, 11, 24))
    got = lab(dbp)
    assert len(got) == 29                                                 # 28 + one new result
    assert (got["R0001"]["value"], got["R0001"]["status"], got["R0001"]["delivery_id"]) == (5.6, "corrected", "mini_next")
    assert got["R0026"]["status"] == "cancelled"
    assert got["R0030"]["patient_id"] == "000113"
    assert got["R0002"]["delivery_id"] == "mini"                          # untouched rows stay
    con = duckdb.connect(str(dbp), read_only=True)
    assert con.execute("SELECT count(*) FROM patients").fetchone() == (13,)
    assert con.execute("SELECT practice_id FROM patients WHERE patient_id = '000108'").fetchone() == ("P0102",)
    # a withdrawn result is gone from anything that excludes cancelled results
    assert con.execute(
        "SELECT count(*) FROM lab_results WHERE patient_id = '000112' AND analyte = 'ldl' AND status <> 'cancelled'"
    ).fetchone() == (0,)
    # optional tables absent from the second delivery keep what the first delivered
    assert con.execute("SELECT count(*) FROM medications").fetchone() == (7,)
    # loading the earlier delivery's content again is a new delivery only if its name differs
    assert con.execute("SELECT count(*) FROM deliveries").fetchone() == (2,)


def test_a_table_that_arrives_whole_stages_only_the_rows_that_changed(tmp_path):
    """patients and contacts arrive whole every night: only the rows that differ from the store
    are staged (so validate and load cost what changed); the rest count as received and loaded
    (unchanged), and the store ends as if the whole file had been loaded."""
    dbp = tmp_path / "fh.duckdb"
    ingest_delivery(FIXTURES / "mini", dbp, tmp_path / "out")
    night = tmp_path / "night"
    shutil.copytree(FIXTURES / "mini", night)
    patients = night / "patients.csv"
    text = patients.read_text(encoding="utf-8")
    patients.write_text(text.replace("000108,2001-02-28,M,P0101", "000108,2001-02-28,M,P0102")
                        .replace("000110,1995-10-10,U,", "000110,1995-10-10,,"), encoding="utf-8")  # '' is read as U
    ctx = prepare(night, dbp, tmp_path / "out", date(2026, 11, 24))
    report = ingest.stage_step(ctx)
    assert (report["staged_rows"]["patients"], report["unchanged_rows"]) == (1, {"patients": 11, "contacts": 4})
    with closing(db.connect(dbp, read_only=True)) as con:
        assert con.execute("SELECT patient_id, practice_id FROM stg_patients").fetchall() == [("000108", "P0102")]
        assert con.execute("SELECT count(*) FROM stg_contacts").fetchone() == (0,)
    ingest.load_step(ctx)
    counts = ctx.manifest["tables"]["patients"]
    assert (counts["received"], counts["loaded"], counts["unchanged"], counts["quarantined"]) == (12, 12, 11, 0)
    whole = tmp_path / "whole.duckdb"
    ingest_delivery(night, whole, tmp_path / "out-whole")
    query = "SELECT * EXCLUDE (delivery_id) FROM {} ORDER BY ALL"
    for table in ("patients", "contacts"):
        with closing(db.connect(dbp, read_only=True)) as a, closing(db.connect(whole, read_only=True)) as b:
            assert a.execute(query.format(table)).fetchall() == b.execute(query.format(table)).fetchall()


def test_danish_dialect_loads_the_same_values(tmp_path):
    plain, danish = tmp_path / "plain.duckdb", tmp_path / "danish.duckdb"
    ingest_delivery(FIXTURES / "mini", plain, tmp_path / "out")
    ctx = ingest_delivery(FIXTURES / "mini_danish", danish, tmp_path / "out")
    report = ctx.manifest["tables"]["lab_results"]
    assert (report["delimiter"], report["decimal"], report["encoding"]) == (";", ",", "cp1252")

    def curated(path):
        con = duckdb.connect(str(path), read_only=True)
        out = {}
        for table in TABLES:
            cols = [c for c, *_ in con.execute(f"DESCRIBE {table}").fetchall()
                    if c not in ("delivery_id", "value_raw")]
            out[table] = con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL").fetchall()
        return out

    assert curated(danish) == curated(plain)


def test_absent_optional_tables_are_reported(tmp_path):
    ctx = prepare(FIXTURES / "mini_next", tmp_path / "fh.duckdb", tmp_path / "out", AS_OF)
    ingest.stage_step(ctx)
    assert ctx.present_tables == {"patients", "lab_results"}
    assert set(ctx.manifest["tables_absent"]) == set(TABLES) - {"patients", "lab_results"}
    con = duckdb.connect(str(tmp_path / "fh.duckdb"), read_only=True)
    staged = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'stg_%'").fetchall()}
    assert staged == {"stg_patients", "stg_lab_results"}


def schema_of(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "SELECT table_name, sql FROM duckdb_tables() WHERE NOT starts_with(table_name, 'stg_') ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


def test_curated_tables_keep_the_schema_after_first_and_later_loads(tmp_path):
    fresh = tmp_path / "fresh.duckdb"
    db.connect(fresh).close()
    dbp = tmp_path / "fh.duckdb"
    ingest_delivery(FIXTURES / "mini", dbp, tmp_path / "out")          # empty tables: staged tables adopted
    assert schema_of(dbp) == schema_of(fresh)
    ingest_delivery(FIXTURES / "mini_next", dbp, tmp_path / "out")     # later: delete + insert
    assert schema_of(dbp) == schema_of(fresh)
    con = duckdb.connect(str(dbp))
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO lab_results (result_id) VALUES (NULL)")


def test_staging_tables_have_the_curated_types(tmp_path):
    dbp = tmp_path / "fh.duckdb"
    ctx = prepare(FIXTURES / "mini", dbp, tmp_path / "out", AS_OF)
    ingest.stage_step(ctx)
    con = duckdb.connect(str(dbp), read_only=True)
    for table in TABLES:
        curated = {c: t for c, t, *_ in con.execute(f"DESCRIBE {table}").fetchall() if c != "delivery_id"}
        staged = {c: t for c, t, *_ in con.execute(f"DESCRIBE stg_{table}").fetchall()}
        assert staged == curated | {"_row": "BIGINT"}, table


def broken(tmp_path, name: str, data: bytes | str) -> Path:
    extract = tmp_path / "broken"
    shutil.copytree(FIXTURES / "mini", extract)
    path = extract / name
    if data is None:
        path.unlink()
    else:
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return extract


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("patients.csv", None, "patients.csv: required file missing (expected patients.csv or patients.parquet)"),
        ("lab_results.csv", "result_id,patient_id,sampled_at,analyte,unit\nR1,1,2024-01-01,NPU01568,mmol/L\n",
         "lab_results.csv: required column value is missing"),
        ("patients.csv", "patient_id,birth_date,sex\n", "patients.csv: required table has no data rows"),
        ("patients.csv", "patient_id,birth_date,sex\n1,1.2.1970,F\n", "patients.csv: column birth_date: no value could be read as a date (YYYY-MM-DD)"),
        ("medications.csv", b"patient_id,atc_code,dispensed_on\n1,C10AA05,\x81\x8d\n", "medications.csv: cannot be decoded as cp1252 (byte 43); export it as UTF-8"),
        ("diagnoses.parquet", b"not parquet", "diagnoses.parquet: not a readable Parquet file"),
    ],
)
def test_structural_errors_stop_before_anything_is_written(tmp_path, name, data, message):
    dbp = tmp_path / "fh.duckdb"
    extract = broken(tmp_path, name, data)
    if name == "diagnoses.parquet":
        (extract / "diagnoses.csv").unlink()
    ctx = prepare(extract, dbp, tmp_path / "out", AS_OF)
    with pytest.raises(DeliveryError) as err:
        ingest.stage_step(ctx)
    assert str(err.value) == message
    assert "\n" not in str(err.value)
    if dbp.exists():
        con = duckdb.connect(str(dbp), read_only=True)
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'stg_%'").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_a_structural_error_leaves_earlier_loads_untouched(tmp_path):
    dbp = tmp_path / "fh.duckdb"
    ingest_delivery(FIXTURES / "mini", dbp, tmp_path / "out")
    before = contents(dbp)
    ctx = prepare(broken(tmp_path, "lab_results.csv", "result_id\nR1\n"), dbp, tmp_path / "out", AS_OF)
    with pytest.raises(DeliveryError):
        ingest.stage_step(ctx)
    assert contents(dbp) == before


def test_cli_exits_2_with_one_line(tmp_path, capsys):
    extract = broken(tmp_path, "patients.csv", None)
    code = cli.main(["run", "--extract", str(extract), "--db", str(tmp_path / "fh.duckdb"),
                     "--out", str(tmp_path / "out"), "--as-of", "2026-11-23", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "fhscreen: patients.csv: required file missing (expected patients.csv or patients.parquet)\n"


def test_parquet_delivery_loads_like_csv(tmp_path):
    import polars as pl

    extract = tmp_path / "pq"
    extract.mkdir()
    for table in ("patients", "lab_results"):
        frame = pl.read_csv(FIXTURES / "mini" / f"{table}.csv", infer_schema=False)
        if table == "patients":
            frame = frame.with_columns(pl.col("birth_date").str.to_date())
        else:
            frame = frame.with_columns(pl.col("sampled_at").str.replace("T", " ").str.to_datetime(strict=False)
                                       .fill_null(pl.col("sampled_at").str.to_date(strict=False).cast(pl.Datetime)))
        frame.write_parquet(extract / f"{table}.parquet")
    ctx = ingest_delivery(extract, tmp_path / "pq.duckdb", tmp_path / "out")
    assert ctx.manifest["tables"]["lab_results"]["format"] == "parquet"
    ingest_delivery(FIXTURES / "mini", tmp_path / "csv.duckdb", tmp_path / "out")
    strip = lambda rows: {k: {c: v for c, v in r.items() if c != "delivery_id"} for k, r in rows.items()}
    assert strip(lab(tmp_path / "pq.duckdb")) == strip(lab(tmp_path / "csv.duckdb"))


def test_rows_moved_to_quarantine_between_stage_and_load_are_counted(tmp_path):
    dbp = tmp_path / "fh.duckdb"
    ctx = prepare(FIXTURES / "mini", dbp, tmp_path / "out", AS_OF)
    ingest.stage_step(ctx)
    con = db.connect(dbp)      # what validation does with a failing row: quarantine it, delete it
    con.execute("INSERT INTO quarantine SELECT 'mini', 'lab_results', _row, result_id, 'gx.x', 'r', '{}' "
                "FROM stg_lab_results WHERE result_id = 'R0003'")
    con.execute("INSERT INTO quarantine SELECT 'mini', 'lab_results', _row, result_id, 'gx.y', 'r', '{}' "
                "FROM stg_lab_results WHERE result_id = 'R0003'")       # a second rule, same row
    con.execute("DELETE FROM stg_lab_results WHERE result_id = 'R0003'")
    con.close()
    ingest.load_step(ctx)
    counts = ctx.manifest["tables"]["lab_results"]
    assert (counts["received"], counts["loaded"], counts["quarantined"]) == (28, 27, 1)
    assert "R0003" not in lab(dbp)


def test_a_row_lost_between_stage_and_load_stops_the_load(tmp_path):
    dbp = tmp_path / "fh.duckdb"
    ctx = prepare(FIXTURES / "mini", dbp, tmp_path / "out", AS_OF)
    ingest.stage_step(ctx)
    con = db.connect(dbp)
    con.execute("DELETE FROM stg_lab_results WHERE result_id = 'R0003'")   # dropped without quarantine
    con.close()
    with pytest.raises(RuntimeError, match="^internal error: lab_results: received 28 != loaded 27 \\+ quarantined 0"):
        ingest.load_step(ctx)
    assert lab(dbp) == {}
    assert contents(dbp)["patients"] == []
