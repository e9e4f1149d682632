"""Patient features: LDL-C per sample (precedence, equations), history summary, treatment and
the estimated untreated LDL-C. Tiny curated tables in a temp DuckDB or as polars rows."""

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from fh_screen.store import db, labs as lab_store
from fh_screen.stages.features import lipids
from fh_screen.stages.features.build import build_features, load_inputs, make_inputs

AS_OF = date(2026, 11, 23)
BIRTH = date(1980, 6, 15)
_seq = iter(range(10**6))


def lab(day: date, analyte: str, value: float, method: str = "measured", pid: str = "A", hour: int = 8) -> dict:
    return {"patient_id": pid, "result_id": f"r{next(_seq)}", "sampled_at": datetime(day.year, day.month, day.day, hour),
            "analyte": analyte, "method": method, "value": value}


def panel(day: date, tc: float, hdl: float, tg: float, pid: str = "A") -> list[dict]:
    return [lab(day, "tc", tc, pid=pid), lab(day, "hdl", hdl, pid=pid), lab(day, "tg", tg, pid=pid)]


def feats(labs=(), meds=(), **tables) -> dict:
    patients = tables.pop("patients", [{"patient_id": "A", "birth_date": BIRTH, "sex": "M"}])
    inputs = make_inputs(patients=patients, lab_results=list(labs), medications=list(meds), **tables)
    return build_features(inputs, AS_OF).row(0, named=True)


def disp(day: date, atc: str, mg: float | None = None, pid: str = "A") -> dict:
    return {"patient_id": pid, "atc_code": atc, "dispensed_on": day, "strength_mg": mg}


# ---------------------------------------------------------------- LDL-C per sample

def test_measured_beats_lab_calculated_beats_equation():
    d1, d2, d3 = date(2020, 1, 1), date(2021, 1, 1), date(2022, 1, 1)
    f = feats([lab(d1, "ldl", 5.0), lab(d1, "ldl", 6.0, "calculated"), *panel(d1, 9.0, 1.0, 1.0),
               lab(d2, "ldl", 5.5, "calculated"), *panel(d2, 9.0, 1.0, 1.0),
               *panel(d3, 7.0, 1.5, 1.1)])
    assert f["n_ldl_results"] == 3
    assert (f["ldl_max_mmol"], f["ldl_max_source"], f["ldl_max_date"]) == (5.5, "calculated_lab", d2)


def test_sampson_equation_when_only_tc_hdl_tg():
    f = feats(panel(date(2024, 1, 1), 7.0, 1.5, 1.1))
    tc, hdl, tg = 7.0 * 38.67, 1.5 * 38.67, 1.1 * 88.57
    expected = (tc / 0.948 - hdl / 0.971 - (tg / 8.56 + tg * (tc - hdl) / 2140 - tg**2 / 16100) - 9.44) / 38.67
    assert f["ldl_max_source"] == "sampson"
    assert f["ldl_max_mmol"] == pytest.approx(expected, abs=1e-9)
    assert f["ldl_max_mmol"] == pytest.approx(5.066, abs=0.001)
    assert f["tc_at_estimate_mmol"] == 7.0 and f["non_hdl_at_estimate_mmol"] == 5.5


def test_friedewald_in_mmol_per_l():
    out = pl.select(lipids.friedewald(pl.lit(7.0), pl.lit(1.5), pl.lit(2.2))).item()
    assert out == pytest.approx(4.5)


@pytest.mark.parametrize("tg, derived", [(8.99, True), (9.0, True), (9.01, False)])
def test_no_ldl_is_derived_above_tg_9(tg, derived):
    f = feats(panel(date(2024, 1, 1), 12.0, 1.0, tg))
    assert (f["ldl_max_mmol"] is not None) is derived
    assert f["tg_max_mmol"] == tg


def test_friedewald_preference_respects_its_tg_limit(monkeypatch):
    from fh_screen import reference
    cfg = reference.load("ldl_estimation_v2")
    monkeypatch.setitem(cfg, "derivation", {**cfg["derivation"], "preferred_equation": "friedewald"})
    out = pl.DataFrame({"tg": [4.5, 4.51]}).with_columns(
        *[e.alias(n) for e, n in zip(lipids.derived_ldl(pl.lit(8.0), pl.lit(1.0), pl.col("tg")), ("v", "eq"))])
    assert out["eq"].to_list() == ["friedewald", "sampson"]
    assert out["v"][0] == pytest.approx(8.0 - 1.0 - 4.5 / 2.2)


def test_same_day_duplicates_use_the_last_result_of_the_day():
    d = date(2024, 1, 1)
    f = feats([lab(d, "ldl", 6.0, hour=8), lab(d, "ldl", 5.2, hour=14)])
    assert (f["ldl_max_mmol"], f["n_ldl_results"]) == (5.2, 1)


def test_a_tie_in_sampling_time_goes_to_the_greater_result_id():
    at = datetime(2024, 1, 1, 8)
    rows = [{"patient_id": "A", "result_id": rid, "sampled_at": at, "analyte": "ldl", "method": "measured", "value": v}
            for rid, v in (("r2", 5.2), ("r10", 6.0), ("r1", 4.0))]
    assert feats(rows)["ldl_max_mmol"] == 5.2    # "r2" > "r10" > "r1" as text


def test_the_store_and_given_rows_reduce_to_the_same_days(tmp_path):
    """One definition of the day rows (``store.labs``): the store's usable results and the
    same rows given as a frame give the same days: each lipid kind's last result of the day,
    the day's extremes of the other analytes, and the count."""
    con = db.connect(tmp_path / "days.duckdb")
    rows = [("a1", "2024-01-01 08:00", "ldl", "measured", 5.0), ("a2", "2024-01-01 15:00", "ldl", "measured", 4.0),
            ("a3", "2024-01-01 09:00", "ldl", "calculated", 4.8), ("a4", "2024-01-01 08:00", "tc", "measured", 7.0),
            ("a5", "2024-01-01 08:00", "tc", "measured", 7.4), ("a6", "2024-01-01 08:00", "albumin", "measured", 40),
            ("a7", "2024-01-01 12:00", "albumin", "measured", 35), ("a8", "2024-01-01 12:00", "tsh", "measured", 2.0),
            ("a9", "2024-01-01 13:00", "tsh", "measured", 6.5), ("b1", "2024-02-01 08:00", "lpa", "measured", 700),
            ("b2", "2024-02-01 08:00", "tg", "measured", 2.0), ("b3", "2024-02-01 09:00", "tg", "measured", 1.5)]
    for rid, ts, analyte, method, value in rows:
        con.execute("INSERT INTO lab_results VALUES (?, 'A', ?, ?, ?, 'x', ?, 'u', NULL, '', '', 'final', NULL, 'd')",
                    [rid, ts, analyte, method, value])
    text, params = db.sql("feat_lab_results"), {"as_of": AS_OF}
    stored = lab_store.lab_days(con, text, params).sort("sample_date")
    given = lab_store.lab_days_of(con.execute(text, params).pl()).sort("sample_date")
    con.close()
    assert stored.equals(given)
    day, later = stored.rows(named=True)
    assert (day["n_results"], day["ldl_meas"], day["ldl_calc"], day["tc"]) == (9, 4.0, 4.8, 7.4)
    assert (day["albumin_min"], day["tsh_max"], day["tg"], day["lpa_max"]) == (35, 6.5, None, None)
    assert (later["n_results"], later["tg"], later["tg_max"], later["lpa_max"]) == (3, 1.5, 2.0, 700)


def test_history_summary_and_slope():
    f = feats([lab(date(2020, 1, 1), "ldl", 4.0), lab(date(2022, 1, 1), "ldl", 5.0), lab(date(2021, 1, 1), "ldl", 4.5)])
    assert f["n_ldl_results"] == 3 and f["ldl_median_mmol"] == 4.5
    assert (f["ldl_first_date"], f["ldl_last_date"], f["ldl_last_mmol"]) == (date(2020, 1, 1), date(2022, 1, 1), 5.0)
    assert f["ldl_slope_mmol_per_year"] == pytest.approx(0.5, abs=0.01)
    assert feats([lab(date(2020, 1, 1), "ldl", 4.0)])["ldl_slope_mmol_per_year"] is None


@pytest.mark.parametrize("day, age", [(date(2020, 6, 14), 39), (date(2020, 6, 15), 40)])
def test_age_at_sample_counts_completed_years(day, age):
    f = feats([lab(day, "ldl", 5.0)])
    assert f["ldl_max_age"] == age
    assert (f["ldl_max_age_lt40_mmol"] is not None) is (age < 40)


def test_percentile_is_approximate_but_ordered():
    low = feats([lab(date(2020, 1, 1), "ldl", 3.0)])["ldl_percentile"]
    high = feats([lab(date(2020, 1, 1), "ldl", 6.0)])["ldl_percentile"]
    assert 0 < low < 95 < high <= 100
    unknown_sex = feats([lab(date(2020, 1, 1), "ldl", 6.0)],
                        patients=[{"patient_id": "A", "birth_date": BIRTH, "sex": "U"}])
    assert unknown_sex["ldl_percentile"] is None


def test_curated_tables_exclude_cancelled_and_later_results(tmp_path):
    con = db.connect(tmp_path / "c.duckdb")
    con.execute("INSERT INTO patients VALUES ('A', '1980-06-15', 'M', 'P1', '5000', NULL, NULL, 'd')")
    rows = [("r1", "2024-01-01 08:00", 5.0, "final"), ("r2", "2024-02-01 08:00", 9.0, "cancelled"),
            ("r3", "2024-03-01 08:00", 6.0, "corrected"), ("r4", "2026-11-24 08:00", 12.0, "final")]
    for rid, ts, value, status in rows:
        con.execute("INSERT INTO lab_results VALUES (?, 'A', ?, 'ldl', 'measured', 'NPU01568', ?, 'mmol/L', NULL,"
                    " ?, 'mmol/L', ?, NULL, 'd')", [rid, ts, value, str(value), status])
    f = build_features(load_inputs(con, AS_OF), AS_OF).row(0, named=True)
    con.close()
    assert (f["ldl_max_mmol"], f["n_ldl_results"], f["n_lab_results"]) == (6.0, 2, 2)


# ---------------------------------------------------------------- treatment and untreated estimate

SAMPLE = date(2024, 5, 2)


def treated(meds, ldl=3.5) -> dict:
    return feats([lab(SAMPLE, "ldl", ldl)], meds)


@pytest.mark.parametrize(
    "meds, factor, source, regimen, intensity",
    [
        ([disp(SAMPLE - timedelta(days=30), "C10AA05", 40)], 1.937984, "rdrf", "atorvastatin 40 mg", 3),
        ([disp(SAMPLE - timedelta(days=30), "C10AA01", 10)], 1.37741, "rdrf", "simvastatin 10 mg", 1),
        ([disp(SAMPLE - timedelta(days=30), "C10AA04", 80)], 1.492537, "nice_derived", "fluvastatin 80 mg", 2),
        ([disp(SAMPLE - timedelta(days=30), "C10BA05", 20)], 2.173913, "rdrf", "atorvastatin 20 mg + ezetimibe", 3),
        ([disp(SAMPLE - timedelta(days=30), "C10AA03", 40), disp(SAMPLE - timedelta(days=60), "C10AX09", 10)],
         1.422475 * 1.236094, "rdrf_product", "pravastatin 40 mg + ezetimibe", 1),
        ([disp(SAMPLE - timedelta(days=30), "C10AX09", 10)], 1.236094, "rdrf", "ezetimibe", 0),
        ([disp(SAMPLE - timedelta(days=30), "C10AA05", 30)], 1.43, "fallback_1.43", "atorvastatin 30 mg", None),
        ([disp(SAMPLE - timedelta(days=30), "C10AA07", 20), disp(SAMPLE - timedelta(days=20), "C10AX13", 140)],
         2.5, "rdrf+eas2014_derived+capped at 2.5", "rosuvastatin 20 mg + evolocumab", 3),
        ([disp(SAMPLE - timedelta(days=30), "C10AC01", 4000)], 1.43, "fallback_1.43", "colestyramine", 0),
    ],
)
def test_regimen_factor_and_provenance(meds, factor, source, regimen, intensity):
    f = treated(meds)
    assert f["ldl_estimate_treated"] is True
    assert f["ldl_correction_factor"] == pytest.approx(factor)
    assert f["ldl_untreated_estimate_mmol"] == pytest.approx(3.5 * factor)
    assert (f["ldl_correction_source"], f["ldl_estimate_regimen"], f["ldl_estimate_statin_intensity"]) == (
        source, regimen, intensity)
    assert f["ldl_estimate_measured_mmol"] == 3.5


@pytest.mark.parametrize("days_before, on_treatment", [(0, False), (1, True), (100, True), (101, False)])
def test_a_dispensing_covers_100_days_before_the_sample(days_before, on_treatment):
    # When covered, the episode began a year earlier (dispensings every 90 days): the drug has acted.
    start = SAMPLE - timedelta(days=days_before)
    f = treated([disp(start - timedelta(days=90 * k), "C10AA05", 40) for k in range(5 if on_treatment else 1)])
    assert f["ldl_estimate_treated"] is on_treatment
    assert f["ldl_correction_factor"] == pytest.approx(1.937984 if on_treatment else 1.0)


def test_fibrates_do_not_correct_ldl():
    f = treated([disp(SAMPLE - timedelta(days=10), "C10AB05", 145)])
    assert (f["ldl_estimate_treated"], f["ldl_correction_factor"]) == (False, 1.0)


def test_measured_untreated_scores_before_a_higher_estimate():
    f = feats([lab(date(2020, 1, 1), "ldl", 6.0), lab(SAMPLE, "ldl", 3.5)],
              [disp(SAMPLE - timedelta(days=30), "C10AA05", 40)])
    assert (f["ldl_max_mmol"], f["ldl_max_treated"], f["ldl_max_untreated_mmol"]) == (6.0, False, 6.0)
    # 3.5 x 1.938 = 6.78 would be higher, but a measured untreated value exists: it scores.
    assert (f["ldl_untreated_estimate_mmol"], f["ldl_estimate_basis"]) == (6.0, "measured_untreated")
    assert (f["ldl_estimate_date"], f["ldl_estimate_measured_mmol"], f["ldl_estimate_treated"]) == (
        date(2020, 1, 1), 6.0, False)
    assert f["n_samples_treated"] == 1


def test_treatment_now_and_ever():
    f = feats([lab(SAMPLE, "ldl", 4.0)], [disp(AS_OF - timedelta(days=20), "C10AA07", 10),
                                         disp(date(2019, 1, 1), "C10AX14", 75)])
    assert (f["lipid_lowering_ever"], f["lipid_lowering_now"], f["pcsk9_ever"], f["ezetimibe_ever"]) == (
        True, True, True, False)
    assert (f["statin_intensity_now"], f["regimen_now"], f["lipid_lowering_first_date"]) == (
        3, "rosuvastatin 10 mg", date(2019, 1, 1))
