"""How fast a region's worklists render: HTML + PDF + CSV (+ FHIR) for every GP practice.

A fake region of N people (default 200,000) with ~1.5% flagged by the rules, ~1,600
people per practice (Danish list size), 5 LDL results and a TC/HDL/TG profile per
flagged patient, a statin for a third of them. Clinic capacity is set high so everyone
flagged is listed: the point is rendering time, not allocation.

    PYTHONPATH=pipelines python benchmarks/bench_worklists.py [--people 200000] [--flagged 0.015]
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

from fh_screen.store import db
from fh_screen.outputs import worklist_pdf, worklists
from fh_screen.config import Clinic, SelectionSettings, Settings
from fh_screen.context import RunContext
from fh_screen.stages.referrals.step import plan_referrals, empty_events, referrals_step

AS_OF = date(2026, 11, 23)


def fake_region(n: int, share: float, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:07d}" for i in range(n)])
    practices = np.array([f"{100000 + i}" for i in range(max(n // 1600, 1))])
    practice = rng.choice(practices, n).astype(object)
    practice[rng.random(n) < 0.003] = None  # a few without a GP
    practice = pl.Series(practice.tolist(), dtype=pl.Utf8)
    flagged = rng.random(n) < share
    age = rng.integers(5, 95, n)
    ldl = np.where(flagged, rng.normal(6.8, 1.1, n), rng.normal(3.2, 0.8, n)).clip(0.8, 15)
    points = np.where(flagged, rng.integers(6, 14, n), rng.integers(0, 5, n))
    category = np.select([points > 8, points >= 6, points >= 3], ["definite", "probable", "possible"], "unlikely")
    has_cause = flagged & (rng.random(n) < 0.08)
    secondary = pl.Series(np.where(has_cause, "TSH 12.1 mIU/L on 2025-06-02", "").tolist(), dtype=pl.Utf8)
    rules = pl.DataFrame({
        "patient_id": ids, "age_years": age.astype(np.int32), "sex": rng.choice(["F", "M"], n),
        "practice_id": practice, "is_child": age < 18, "ldl_max_mmol": ldl.round(1),
        "ldl_max_date": [AS_OF - timedelta(days=int(d)) for d in rng.integers(30, 3000, n)],
        "ldl_max_age": age.astype(float), "ldl_max_treated": rng.random(n) < 0.3,
        "ldl_untreated_estimate_mmol": (ldl * 1.1).round(1), "ldl_source": "measured",
        "dlcn_points": points.astype(np.int32), "dlcn_category": category, "dlcn_status": "scored",
        "simon_broome": np.where(flagged, "possible", "not_met"), "medped": "not_met",
        "lab_flag": flagged, "criteria": [["dlcn.ldl"]] * n,
        "reason_items": json.dumps([{"code": "ldl_high", "params": {}}]),
        "reasons": [f"LDL-C {v:.1f} mmol/L, highest measured; DLCN {p} points" for v, p in zip(ldl, points)],
        "missing_items": [["family_history_not_recorded", "physical_exam_not_recorded"]] * n,
        "missing_information": "family history not recorded; no physical examination recorded",
        "secondary_cause": secondary,
        "route": np.where(has_cause, "check_secondary_cause_first", "refer_lipid_clinic"),
        "excluded_reason": pl.Series([None] * n, dtype=pl.Utf8),
    }).with_columns(pl.when(pl.col("secondary_cause") != "").then(pl.col("secondary_cause")).alias("secondary_cause"))
    patients = pl.DataFrame({
        "patient_id": ids, "birth_date": [date(1990, 1, 1)] * n, "sex": rules["sex"], "practice_id": practice,
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--flagged", type=float, default=0.015)
    parser.add_argument("--lang", default="da")
    args = parser.parse_args()
    settings = Settings(
        clinics=[Clinic(clinic_id="LK", name="Lipidklinik", weekly_capacity=10**6, postcodes=["5", "6", "7", "8", "9"]),
                 Clinic(clinic_id="PAED", name="Børnelipidklinik", weekly_capacity=10**6, paediatric=True)],
        paediatric_clinic_id="PAED", selection=SelectionSettings(), worklist_language=args.lang,
    )
    t0 = time.perf_counter()
    rules, patients, labs, meds = fake_region(args.people, args.flagged)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build(tmp / "bench.duckdb", rules, patients, labs, meds)
        print(f"fake region: {args.people:,} people, {int(rules['lab_flag'].sum()):,} flagged, "
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
        print(f"all worklists (HTML+PDF+CSV+FHIR): {pages / report['render_seconds']:.1f} PDF pages/s")

        # PDF alone and HTML alone, on the same view models
        con = db.connect(tmp / "bench.duckdb")
        listed = planned.filter(pl.col("event") != "queued")
        details = worklists.load_details(con, listed["patient_id"].to_list(), AS_OF)
        con.close()
        practices = worklists.practice_lists(planned, details, ctx)
        t, cpu = time.perf_counter(), time.process_time()
        n_pages = sum(worklist_pdf.pdf(p)[1] for p in practices)
        pdf_s, pdf_cpu = time.perf_counter() - t, time.process_time() - cpu
        t = time.perf_counter()
        for p in practices:
            worklists.html(p)
        html_s = time.perf_counter() - t
        print(f"PDF only: {n_pages:,} pages in {pdf_s:.1f} s wall = {n_pages / pdf_s:.1f} pages/s "
              f"({pdf_cpu:.1f} s CPU = {n_pages / pdf_cpu:.1f} pages per CPU-second); "
              f"HTML only: {len(practices)} files in {html_s:.2f} s")


if __name__ == "__main__":
    main()
