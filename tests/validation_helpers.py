"""Staged tables built directly in SQL, shaped like the stage step's output, so the
validate step can be tested without parsing files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fh_screen.store import db
from fh_screen.config import load_settings
from fh_screen.context import RunContext

AS_OF = date(2026, 11, 23)


def make_context(tmp_path: Path, delivery_id: str = "2026-11-23", as_of: date = AS_OF) -> RunContext:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return RunContext(
        settings=load_settings(),
        db_path=tmp_path / "fh.duckdb",
        out_dir=tmp_path / "out",
        work_dir=work,
        as_of=as_of,
        delivery_id=delivery_id,
        manifest={"tables": {}, "steps": {}},
    )


def stage(ctx: RunContext, table: str, rows: list[dict]) -> None:
    """Write ``stg_<table>`` as stage would: curated columns minus delivery_id, plus _row."""
    con = ctx.connect()
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE stg_{table} AS "
            f"SELECT * EXCLUDE (delivery_id), CAST(NULL AS BIGINT) AS _row FROM {table} WHERE false"
        )
        columns = [r[0] for r in con.execute(f"DESCRIBE stg_{table}").fetchall()]
        for i, row in enumerate(rows, start=1):
            values = {**row, "_row": row.get("_row", i)}
            con.execute(
                f"INSERT INTO stg_{table} VALUES ({', '.join('?' for _ in columns)})",
                [values.get(c) for c in columns],
            )
    finally:
        con.close()
    ctx.present_tables.add(table)
    ctx.manifest["tables"][table] = {"received": len(rows), "quarantined": 0, "loaded": 0}


def patient(pid: str, **kw) -> dict:
    return {"patient_id": pid, "birth_date": date(1970, 1, 1), "sex": "F", "practice_id": "P1", **kw}


def lab(rid: str, pid: str, **kw) -> dict:
    base = {
        "result_id": rid, "patient_id": pid, "sampled_at": "2025-01-01 08:00:00", "analyte": "ldl",
        "method": "measured", "code": "NPU01568", "value": 4.2, "unit": "mmol/L", "censored": None,
        "value_raw": "4.2", "unit_raw": "mmol/L", "status": "final", "ordering_practice_id": "P1",
    }
    return {**base, **kw}


def stg_rows(ctx: RunContext, table: str) -> list[int]:
    con = db.connect(ctx.db_path, read_only=True)
    try:
        return [r[0] for r in con.execute(f"SELECT _row FROM stg_{table} ORDER BY _row").fetchall()]
    finally:
        con.close()


def quarantine(ctx: RunContext, table: str | None = None) -> list[tuple]:
    con = db.connect(ctx.db_path, read_only=True)
    try:
        sql = "SELECT table_name, row_number, row_key, rule, reason, raw FROM quarantine WHERE delivery_id = ?"
        params = [ctx.delivery_id]
        if table:
            sql += " AND table_name = ?"
            params.append(table)
        return con.execute(sql + " ORDER BY table_name, row_number", params).fetchall()
    finally:
        con.close()


def empty_relations(tmp_path: Path) -> dict[str, list[str]]:
    """Columns of each gx_<table> check relation, built over empty staged tables."""
    from fh_screen.stages.validate.step import FIRST_PHASE, known_patients, prepare_checks

    ctx = make_context(tmp_path)
    for table in db.CONTRACT_TABLES:
        stage(ctx, table, [])
    con = ctx.connect()
    try:
        prepare_checks(con, ctx)
        known_patients(con, tuple(t for t in db.CONTRACT_TABLES if t not in FIRST_PHASE))
        out = {}
        for table in db.CONTRACT_TABLES:
            con.execute(db.sql(f"validate/{table}"))
            out[table] = [r[0] for r in con.execute(f"DESCRIBE gx_{table}").fetchall()]
        return out
    finally:
        con.close()
