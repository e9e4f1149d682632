"""Time validation against stage and load on a synthetic delivery, and compare the two
Great Expectations backends (DuckDB SQL and pandas) on the lab_results suite.

    .venv/bin/python benchmarks/bench_validation.py [--lab-rows 1000000] [--dir /tmp/fh-bench-validation]

Writes a synthetic delivery (patients = lab rows / 10, a few bad rows mixed in), runs the
stage, validate and load steps through the runner's public API (``fh_screen.app.run``),
then builds the lab_results check relation on a copy of the staged store and validates it
with the reviewed suite on both backends. Floor: DuckDB alone reads the lab file and counts
the rows whose value is not a number, whose code is unknown or whose patient is unknown,
the least any validation must do. Prints figures and ratios to that floor only.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
from contextlib import closing
from datetime import datetime, time, timezone
from pathlib import Path

import duckdb

from fh_screen.app import run as R
from fh_screen.reference import REFERENCE_DIR
from fh_screen.store import db

from floor import AS_OF, ratio_line, timed
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


def floor(folder: Path) -> int:
    """The floor: lab rows with a non-numeric value, an unknown code or an unknown patient."""
    with closing(duckdb.connect()) as con:
        return con.execute("""
            SELECT count(*) FROM read_csv(?, all_varchar = true) l
            WHERE TRY_CAST(l.value AS DOUBLE) IS NULL
               OR l.analyte NOT IN (SELECT code FROM read_csv(?, all_varchar = true))
               OR l.patient_id NOT IN (SELECT patient_id FROM read_csv(?, all_varchar = true))""",
            [str(folder / "lab_results.csv"), str(REFERENCE_DIR / "analyte_codes.csv"),
             str(folder / "patients.csv")]).fetchone()[0]


def pipeline(root: Path, extract: Path) -> tuple[dict, Path]:
    """stage, validate and load in this process; a copy of the store right after stage."""
    for p in root.glob("*.duckdb*"):
        p.unlink()
    shutil.rmtree(root / "out", ignore_errors=True)
    ctx = R.prepare(extract, root / "fh.duckdb", root / "out", AS_OF)
    steps, staged = {}, root / "staged.duckdb"
    for step in ("stage", "validate", "load"):
        report, wall, cpu = timed(lambda: R.execute_step(ctx, step))
        steps[step] = {"wall": wall, "cpu": cpu}
        if step == "stage":
            shutil.copy(root / "fh.duckdb", staged)
    steps["counts"] = {t: {k: c[k] for k in ("received", "loaded", "quarantined")}
                       for t, c in ctx.manifest["tables"].items()}
    return steps, staged


def backends(root: Path, staged: Path, extract: Path) -> dict:
    """The lab_results suite on the same check relation: SQL on the DuckDB file, then pandas."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from fh_screen.stages.validate.gx_runner import RESULT_FORMAT, SuiteRunner, load_suite
    from fh_screen.stages.validate.step import known_patients, prepare_checks

    ctx = R.prepare(extract, staged, root / "out-backends", AS_OF)
    with closing(db.connect(staged)) as con:
        prepare_checks(con, ctx)
        known_patients(con, ("lab_results",))
        _, build, _ = timed(lambda: con.execute(db.sql("validate/lab_results")))
    runner = SuiteRunner(staged, root / "out-backends" / "quality")
    run_time = datetime.combine(AS_OF, time.min, tzinfo=timezone.utc)
    results, sql_s, sql_cpu = timed(lambda: runner.run(["lab_results"], "fh-screen benchmark", run_time))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    with closing(duckdb.connect(str(staged), read_only=True)) as con:
        frame, load_s, _ = timed(lambda: con.sql("SELECT * FROM gx_lab_results").df())
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    suite = context.suites.add(gx.ExpectationSuite(**load_suite("lab_results")))
    batch = (context.data_sources.add_pandas("pd").add_dataframe_asset("lab")
             .add_batch_definition_whole_dataframe("w").get_batch(batch_parameters={"dataframe": frame}))
    pandas, pandas_s, pandas_cpu = timed(lambda: batch.validate(suite, result_format={**RESULT_FORMAT, "result_format": "COMPLETE"}))
    return {
        "build": build, "sql": sql_s, "sql_cpu": sql_cpu,
        "sql_failed": sum(not r.success for r in results["lab_results"].results),
        "pandas_load": load_s, "pandas": pandas_s, "pandas_cpu": pandas_cpu,
        "pandas_failed": sum(not r.success for r in pandas.results),
        "rss_before": rss_before, "rss_after": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-rows", type=int, default=1_000_000, help="lab results in the delivery (default 1M)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/fh-bench-validation"), help="working folder")
    parser.add_argument("--skip-backends", action="store_true", help="time the steps only")
    args = parser.parse_args()
    root = args.dir / str(args.lab_rows)
    extract = root / AS_OF.isoformat()
    if not (extract / "lab_results.csv").exists():
        write_delivery(extract, args.lab_rows)
    bad, floor_s, _ = timed(lambda: floor(extract))
    steps, staged = pipeline(root, extract)
    lab = steps["counts"]["lab_results"]
    print(f"lab rows: {args.lab_rows:,}; received {lab['received']:,}, loaded {lab['loaded']:,}, "
          f"quarantined {lab['quarantined']:,}; load average {os.getloadavg()[0]:.1f}")
    print(f"floor (DuckDB alone: {bad:,} lab rows fail the simple checks): {floor_s:.3f} s")
    for step in ("stage", "validate", "load"):
        print(f"{step}: wall {steps[step]['wall']:.2f} s, CPU {steps[step]['cpu']:.2f} s")
    print(f"peak RSS after the steps: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024:,} MiB")
    for step in ("stage", "validate", "load"):
        print(ratio_line(f"{step} step", steps[step]["wall"], floor_s))
    if args.skip_backends:
        return
    b = backends(root, staged, extract)
    print(f"lab_results check relation built in {b['build']:.2f} s")
    print(f"GX on DuckDB SQL: wall {b['sql']:.2f} s, CPU {b['sql_cpu']:.2f} s, {b['sql_failed']} expectations failed")
    print(f"GX on pandas: load {b['pandas_load']:.2f} s + validate {b['pandas']:.2f} s (CPU {b['pandas_cpu']:.2f} s), "
          f"{b['pandas_failed']} expectations failed; peak RSS {b['rss_before']:,} -> {b['rss_after']:,} MiB")
    print(ratio_line("lab_results suite on DuckDB SQL", b["sql"], floor_s))
    print(ratio_line("lab_results suite on pandas (load + validate)", b["pandas_load"] + b["pandas"], floor_s))


if __name__ == "__main__":
    main()
