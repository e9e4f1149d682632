"""Measure the validate step against stage and load on a large synthetic delivery, and
compare the two GX backends (DuckDB SQL vs pandas) on the lab_results suite.

Usage (from the repository root):
    PYTHONPATH=pipelines .venv/bin/python scripts/bench_validation.py --lab-rows 1000000 --dir /tmp/fhbench
Prints one JSON line of timings (seconds) and peak RSS. Not a test: timings vary by machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb

R_REFERENCE = Path(__file__).resolve().parents[1] / "pipelines" / "fh_screen" / "reference"
CODES = "['NPU01568','NPU01566','NPU01567','NPU04094','NPU03577','NPU27300','NPU18016']"


def write_delivery(folder: Path, lab_rows: int) -> None:
    """patients (1 per 10 lab rows) and lab_results as plain CSV, a few bad rows mixed in."""
    folder.mkdir(parents=True, exist_ok=True)
    n_pat = max(lab_rows // 10, 10)
    con = duckdb.connect()
    con.execute(f"""
        COPY (SELECT lpad(i::VARCHAR, 8, '0') AS patient_id,
                     DATE '1940-01-01' + CAST(i % 25000 AS INTEGER) AS birth_date,
                     CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END AS sex,
                     'P' || (i % 300) AS practice_id, (5000 + i % 4000)::VARCHAR AS postcode,
                     NULL::DATE AS deceased_date, NULL::DATE AS moved_out_date
              FROM range({n_pat}) t(i))
        TO '{folder / "patients.csv"}' (HEADER)""")
    con.execute(f"""
        COPY (SELECT 'R' || i AS result_id,
                     lpad((CASE WHEN i % 100000 = 7 THEN {n_pat} + 1 ELSE i % {n_pat} END)::VARCHAR, 8, '0') AS patient_id,
                     (DATE '2015-01-01' + CAST(i % 3600 AS INTEGER))::VARCHAR AS sampled_at,
                     {CODES}[1 + i % 7] AS analyte,
                     CASE WHEN i % 100000 = 3 THEN '99'
                          ELSE round([1, 3, 0.8, 0.5, 0.5, 30, 50][1 + i % 7] * (1 + (i % 500) / 250.0), 2)::VARCHAR
                     END AS value,
                     ['mmol/L','mmol/L','mmol/L','mmol/L','mIU/L','mmol/mol','umol/L'][1 + i % 7] AS unit,
                     'final' AS status, 'P' || (i % 300) AS ordering_practice_id
              FROM range({lab_rows}) t(i))
        TO '{folder / "lab_results.csv"}' (HEADER)""")
    con.close()


def pipeline(root: Path, lab_rows: int, steps: list[str]) -> dict:
    """Run the given steps on the delivery; a step resumes from the saved manifest, so
    each step can run in its own process (as under Airflow)."""
    from fh_screen.app import run as R

    extract = root / "2026-11-23"
    if not (extract / "lab_results.csv").exists():
        write_delivery(extract, lab_rows)
    db_path = root / "fh.duckdb"
    if steps[0] in ("stage", "direct-stage"):
        for p in root.glob("fh.duckdb*"):
            p.unlink()
        shutil.rmtree(root / "out", ignore_errors=True)
        shutil.rmtree(root / ".out.partial", ignore_errors=True)
    t = time.perf_counter()
    import great_expectations  # noqa: F401  (import cost reported separately)

    seconds = {"gx_import": round(time.perf_counter() - t, 2)}
    ctx = R.prepare(extract, db_path, root / "out", date(2026, 11, 23))
    cpu = {}
    for step in steps:
        started, wall = time.process_time(), time.perf_counter()
        if step == "direct-stage":
            direct_stage(ctx)
            R.save_manifest(ctx)
            seconds[step] = round(time.perf_counter() - wall, 2)
        else:
            seconds[step] = R.execute_step(ctx, step)["seconds"]
        cpu[step] = round(time.process_time() - started, 2)
    counts = {t: {k: c[k] for k in ("received", "loaded", "quarantined")} for t, c in ctx.manifest["tables"].items()}
    return {"wall_seconds": seconds, "cpu_seconds": cpu, "tables": counts}


def direct_stage(ctx) -> None:
    """What stage writes (stg_patients, stg_lab_results with _row, manifest counts), built
    with DuckDB straight from the CSV files: for timing validate and load when parsing the
    CSV with the real stage step would not fit the time box."""
    con = ctx.connect()
    folder = ctx.extract_dir
    con.execute(f"""CREATE OR REPLACE TABLE stg_patients AS
        SELECT patient_id, birth_date, sex, practice_id, postcode, deceased_date, moved_out_date,
               row_number() OVER () AS _row
        FROM read_csv('{folder / "patients.csv"}', types={{'patient_id': 'VARCHAR', 'postcode': 'VARCHAR', 'birth_date': 'DATE', 'deceased_date': 'DATE', 'moved_out_date': 'DATE', 'sex': 'VARCHAR', 'practice_id': 'VARCHAR'}})""")
    con.execute(f"""CREATE OR REPLACE TABLE stg_lab_results AS
        SELECT l.result_id, l.patient_id, CAST(l.sampled_at AS TIMESTAMP) AS sampled_at, c.analyte, c.method,
               l.analyte AS code, TRY_CAST(l.value AS DOUBLE) AS value, c.canonical_unit AS unit, NULL AS censored,
               l.value AS value_raw, l.unit AS unit_raw, l.status, l.ordering_practice_id,
               row_number() OVER () AS _row
        FROM read_csv('{folder / "lab_results.csv"}', all_varchar=true) l
        JOIN read_csv('{Path(R_REFERENCE) / "analyte_codes.csv"}', all_varchar=true) c ON c.code = l.analyte""")
    for table in ("patients", "lab_results"):
        n = con.execute(f"SELECT count(*) FROM stg_{table}").fetchone()[0]
        ctx.manifest["tables"][table] = {"received": n, "quarantined": 0, "loaded": 0}
    con.close()
    ctx.delivery_id = folder.name
    ctx.present_tables = {"patients", "lab_results"}


def backends(root: Path) -> dict:
    """lab_results suite on the same rows: SQL on the DuckDB file vs a pandas frame."""
    from fh_screen.store import db
    from fh_screen.stages.validate.gx_runner import RESULT_FORMAT, load_suite
    from fh_screen.stages.validate.step import _prepare
    from fh_screen.app.run import prepare
    import great_expectations as gx
    from fh_screen.stages.validate import gx_duckdb

    db_path = root / "bench_backends.duckdb"
    shutil.copy(root / "fh.duckdb", db_path)
    ctx = prepare(root / "2026-11-23", db_path, root / "out2", date(2026, 11, 23))
    con = db.connect(db_path)
    con.execute("CREATE OR REPLACE TABLE stg_lab_results AS SELECT * EXCLUDE (delivery_id), row_number() OVER () AS _row FROM lab_results")
    con.execute("CREATE OR REPLACE TABLE stg_patients AS SELECT * EXCLUDE (delivery_id), row_number() OVER () AS _row FROM patients")
    _prepare(con, ctx)
    con.execute(db.sql("validate/known_patients"))
    t = time.perf_counter()
    con.execute(db.sql("validate/lab_results"))
    build = time.perf_counter() - t
    con.close()
    gx_duckdb.apply_patch()
    context = gx.get_context(mode="ephemeral")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    suite = context.suites.add(gx.ExpectationSuite(**load_suite("lab_results")))
    out = {"build_check_relation": round(build, 2)}
    src = context.data_sources.add_sql("duck", connection_string=gx_duckdb.connection_string(db_path))
    batch = src.add_table_asset("gx_lab_results", table_name="gx_lab_results").add_batch_definition_whole_table("w").get_batch()
    t = time.perf_counter()
    res = batch.validate(suite, result_format=RESULT_FORMAT)
    out["sql_validate"] = round(time.perf_counter() - t, 2)
    out["sql_failed"] = sum(not r.success for r in res.results)
    ee = src.get_execution_engine()
    ee._connection.close()
    ee.engine.dispose()
    src._execution_engine = None
    src.get_engine().dispose()
    del batch
    import gc

    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    with duckdb.connect(str(db_path), read_only=True) as c:
        frame = c.sql("SELECT * FROM gx_lab_results").df()
    out["pandas_load"] = round(time.perf_counter() - t, 2)
    pbatch = (context.data_sources.add_pandas("pd").add_dataframe_asset("lab")
              .add_batch_definition_whole_dataframe("w").get_batch(batch_parameters={"dataframe": frame}))
    t = time.perf_counter()
    res = pbatch.validate(suite, result_format={**RESULT_FORMAT, "result_format": "COMPLETE"})
    out["pandas_validate"] = round(time.perf_counter() - t, 2)
    out["pandas_failed"] = sum(not r.success for r in res.results)
    out["peak_rss_mib_before_pandas"] = rss_before // 1024
    out["peak_rss_mib_after_pandas"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab-rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--skip-backends", action="store_true")
    parser.add_argument("--steps", default="stage,validate,load",
                        help="comma-separated steps to run in this process ('' to skip; direct-stage = "
                        "stg_ tables built by DuckDB instead of the stage step)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    result = {"lab_rows": args.lab_rows}
    if args.steps:
        result["pipeline"] = pipeline(args.dir, args.lab_rows, args.steps.split(","))
    result["peak_rss_mib_pipeline"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    if not args.skip_backends:
        result["backends"] = backends(args.dir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
