"""How fast a region's worklists render: HTML + PDF + CSV (+ FHIR) for every GP practice.

A fake region of N people (default 200,000): the rules evaluated on ``bench_rules``'
synthetic features (about 3% routed), ~1,600 people per practice (Danish list size), 5 LDL
results and a TC/HDL/TG profile per routed patient, a statin for a third of them. Clinic capacity is set high so everyone
flagged is listed: the point is rendering time, not allocation.

Floor: fpdf2 alone writes the same number of PDF pages with one line of plain text per listed
patient, the least any PDF worklist must do; the worklist PDFs are printed as a ratio to it.

    .venv/bin/python benchmarks/bench_worklists.py [--people 200000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from fpdf import FPDF

from fh_screen.store import db
from fh_screen.outputs import worklist_pdf, worklists
from fh_screen.config import Clinic, SelectionSettings, Settings
from fh_screen.context import RunContext
from fh_screen.stages.referrals.details import read_details
from fh_screen.stages.referrals.step import plan_referrals, empty_events, referrals_step
from fh_screen.stages.rules.results import score

from bench_rules import synthetic_features
from floor import AS_OF, ratio_line, timed


def fake_region(n: int, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Rule results from the real rules on ``bench_rules``' synthetic features (about 3% are
    routed to a clinic or to a check first), GP practices of ~1,600 people, and lab results
    and statins for the routed patients."""
    rng = np.random.default_rng(seed)
    practices = np.array([f"{100000 + i}" for i in range(max(n // 1600, 1))])
    practice = rng.choice(practices, n).astype(object)
    practice[rng.random(n) < 0.003] = None  # a few without a GP
    practice = pl.Series("practice_id", practice.tolist(), dtype=pl.Utf8)
    rules = score(synthetic_features(n, seed).with_columns(practice))
    ids = rules["patient_id"].to_numpy()
    flagged = (rules["route"] != "none").to_numpy()
    ldl = rules["ldl_max_mmol"].fill_null(3.0).to_numpy()
    patients = pl.DataFrame({
        "patient_id": ids, "birth_date": [date(1990, 1, 1)] * n, "sex": rules["sex"], "practice_id": rules["practice_id"],
        "postcode": rng.choice(["5000", "6000", "7100", "8000", "9000"], n), "deceased_date": None,
        "moved_out_date": None, "delivery_id": "bench",
    }).with_columns(pl.col("deceased_date").cast(pl.Date), pl.col("moved_out_date").cast(pl.Date))
    sel = ids[flagged]
    k = len(sel)
    lab_rows = []
    for j in range(5):
        when = [datetime(2018 + j, 1 + (i % 12), 1 + (i % 27)) for i in range(k)]
        lab_rows.append(pl.DataFrame({"patient_id": sel, "sampled_at": when, "analyte": "ldl",
                                      "value": (ldl[flagged] * rng.uniform(0.6, 1.0, k)).round(1)}))
    for analyte, centre in (("tc", 9.0), ("hdl", 1.4), ("tg", 1.6)):
        lab_rows.append(pl.DataFrame({"patient_id": sel, "sampled_at": [datetime(2024, 5, 1)] * k,
                                      "analyte": analyte, "value": rng.normal(centre, 0.2, k).round(1)}))
    labs = pl.concat(lab_rows).with_row_index("n").with_columns(
        pl.format("r{}", "n").alias("result_id"), pl.lit("final").alias("status")).drop("n")
    on_statin = sel[rng.random(k) < 0.33]
    meds = pl.DataFrame({"patient_id": on_statin, "atc_code": "C10AA05",
                         "dispensed_on": [AS_OF - timedelta(days=40)] * len(on_statin), "strength_mg": 40.0})
    return rules, patients, labs, meds


def build(path: Path, rules, patients, labs, meds) -> None:
    con = db.connect(path)
    try:
        con.register("_p", patients)
        con.execute("INSERT INTO patients SELECT * FROM _p")
        db.replace_table(con, "rule_results", rules)
        con.register("_l", labs)
        con.execute("""INSERT INTO lab_results SELECT result_id, patient_id, sampled_at, analyte, 'measured', 'NPU',
                       value, 'mmol/L', NULL, CAST(value AS VARCHAR), 'mmol/L', status, NULL, 'bench' FROM _l""")
        con.register("_m", meds)
        con.execute("INSERT INTO medications SELECT patient_id, atc_code, dispensed_on, strength_mg, 'bench' FROM _m")
    finally:
        con.close()


def floor_pdf(pages: int, lines: list[str]) -> int:
    """The floor: ``pages`` PDF pages of plain text, the listed patients' lines spread over them."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=9)
    per_page = -(-len(lines) // max(pages, 1))
    for k in range(pages):
        pdf.add_page()
        for line in lines[k * per_page:(k + 1) * per_page]:
            pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    return len(pdf.output())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=200_000, help="people in the fake region (default 200,000)")
    parser.add_argument("--lang", default="da")
    args = parser.parse_args()
    settings = Settings(
        clinics=[Clinic(clinic_id="LK", name="Lipidklinik", weekly_capacity=10**6, postcodes=["5", "6", "7", "8", "9"]),
                 Clinic(clinic_id="PAED", name="Børnelipidklinik", weekly_capacity=10**6, paediatric=True)],
        paediatric_clinic_id="PAED", selection=SelectionSettings(), worklist_language=args.lang,
    )
    t0 = time.perf_counter()
    rules, patients, labs, meds = fake_region(args.people)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build(tmp / "bench.duckdb", rules, patients, labs, meds)
        print(f"fake region: {args.people:,} people, {int((rules['route'] != 'none').sum()):,} routed, "
              f"{rules['practice_id'].n_unique():,} practices ({time.perf_counter() - t0:.1f} s to build)")

        t = time.perf_counter()
        planned, _ = plan_referrals(rules, None, patients, pl.DataFrame(schema={
            "patient_id": pl.Utf8, "outcome_date": pl.Date, "outcome": pl.Utf8}), empty_events(), settings, AS_OF)
        print(f"plan (select, rank, allocate) on {args.people:,} rule rows: {time.perf_counter() - t:.2f} s")

        work = tmp / "work"
        work.mkdir()
        ctx = RunContext(settings=settings, db_path=tmp / "bench.duckdb", out_dir=tmp / "out", work_dir=work,
                         as_of=AS_OF, manifest={"rules": {"dlcn": "bench"}})
        t, cpu = time.perf_counter(), time.process_time()
        report = referrals_step(ctx)
        step_s, step_cpu = time.perf_counter() - t, time.process_time() - cpu
        pages = report["pdf_pages"]
        print(f"referrals step: {step_s:.1f} s wall ({step_cpu:.1f} s CPU), of which rendering {report['render_seconds']:.1f} s: "
              f"{report['practices']} practices, {report['events'].get('listed', 0):,} patients listed, "
              f"{pages:,} PDF pages, {report['fhir_bundles']} FHIR bundles")
        print(f"all worklists (HTML+PDF+CSV+FHIR): {pages / max(report['render_seconds'], 1e-3):.1f} PDF pages/s")

        # PDF alone and HTML alone, on the same view models
        con = db.connect(tmp / "bench.duckdb")
        listed = planned.filter(pl.col("event") != "queued")
        details = read_details(con, listed["patient_id"].to_list(), AS_OF)
        con.close()
        practices = worklists.practice_lists(planned, details, ctx)
        t, cpu = time.perf_counter(), time.process_time()
        n_pages = sum(worklist_pdf.pdf(p)[1] for p in practices)
        pdf_s, pdf_cpu = time.perf_counter() - t, time.process_time() - cpu
        t = time.perf_counter()
        for p in practices:
            worklists.html(p)
        html_s = time.perf_counter() - t
        print(f"PDF only: {n_pages:,} pages in {pdf_s:.1f} s wall = {n_pages / max(pdf_s, 1e-3):.1f} pages/s "
              f"({pdf_cpu:.1f} s CPU = {n_pages / max(pdf_cpu, 1e-3):.1f} pages per CPU-second); "
              f"HTML only: {len(practices)} files in {html_s:.2f} s")
        lines = [f"{row['patient_id']}  {row['event']}" for row in listed.iter_rows(named=True)]
        _, floor_s, _ = timed(lambda: floor_pdf(n_pages, lines))
        print(f"floor (fpdf2 alone: {n_pages:,} pages, {len(lines):,} lines of plain text): {floor_s:.3f} s")
        print(ratio_line("worklist PDFs", pdf_s, floor_s))


if __name__ == "__main__":
    main()
