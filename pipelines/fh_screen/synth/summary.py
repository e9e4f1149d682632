"""Sanity figures of a synthetic region, each next to the published figure it was built from."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from fh_screen.synth import labs
from fh_screen.synth.care import NEVER
from fh_screen.synth.population import Population, nonfh_mean_sd, secondary_effect

BANDS = [(0, 18, "0-17"), (18, 30, "18-29"), (30, 40, "30-39"), (40, 50, "40-49"), (50, 60, "50-59"), (60, 70, "60-69"), (70, 200, "70+")]
LIPID_CODES = [i for i, k in enumerate(labs.KEYS) if k in labs.LIPIDS]
LIPID_CODES += [len(labs.KEYS) + i for i in LIPID_CODES]
LDL_CODES = [labs.KEYS.index("ldl_calc"), labs.KEYS.index("ldl_meas")]
LDL_CODES += [len(labs.KEYS) + i for i in LDL_CODES]


def _share(mask: np.ndarray, of: np.ndarray) -> float | None:
    total = int(of.sum())
    return round(float((mask & of).sum()) / total, 4) if total else None


def _fig(value, target, source: str) -> dict:
    return {"value": value, "target": target, "source": source}


def ldl_mmol(frame: pl.DataFrame) -> pl.DataFrame:
    """LDL rows of an internal lab frame in mmol/L (mg/dL / 38.67)."""
    mgdl = labs.UNITS.index("mg/dL")
    return (frame.filter(pl.col("code").is_in(LDL_CODES) & (pl.col("status") != 3))
            .with_columns(ldl=pl.when(pl.col("unit") == mgdl).then(pl.col("val") / labs.MGDL_CHOL).otherwise(pl.col("val"))))


def statin_effect(pop: Population, frame: pl.DataFrame) -> dict:
    """Mean LDL before and after statin start among treated people with results on both sides."""
    ldl = ldl_mmol(frame).select("pidx", "day", "ldl")
    start = pl.DataFrame({"pidx": np.arange(pop.n), "start": pop["statin_start"], "statin": pop["statin"]})
    per = (ldl.join(start.filter(pl.col("statin")), on="pidx")
           .with_columns(after=pl.col("day") >= pl.col("start"))
           .group_by("pidx", "after").agg(pl.col("ldl").mean())
           .pivot(on="after", index="pidx", values="ldl").drop_nulls().sort("pidx"))
    if per.height == 0:
        return {"people": 0, "mean_before": None, "mean_after": None}
    return {"people": per.height, "mean_before": round(float(per["false"].mean()), 3),
            "mean_after": round(float(per["true"].mean()), 3)}


def summarise(pop: Population, p: dict, cited: dict, full: dict[str, pl.DataFrame], frame: pl.DataFrame,
              truth: pl.DataFrame, faults: pl.DataFrame, extract_dirs: list[Path], n_patients: int, seed: int,
              as_of: date, fmt: str, dialect: str) -> dict:
    src = lambda *keys: _src(cited, keys)  # noqa: E731
    figures = {**_population_figures(pop, p, src), **_care_figures(pop, p, src, frame)}
    counts = {name: df.height for name, df in full.items()}
    status = frame["status"].to_numpy()
    return {
        "generator": "fh_screen.synth",
        "arguments": {"n_patients": n_patients, "seed": seed, "as_of": as_of.isoformat(), "format": fmt,
                      "dialect": dialect, "nights": len(extract_dirs)},
        "deliveries": [Path(d).name for d in extract_dirs],
        "people_generated_incl_relatives_outside_region": pop.n,
        "rows_full_delivery": counts,
        "lab_results_detail": {
            "censored": int((frame["censor"] > 0).sum()), "status_null": int((status == 0).sum()),
            "corrected": int((status == 2).sum()), "cancelled": int((status == 3).sum()),
            "injected_faults": faults.height,
        },
        "figures": figures,
        "note": "Synthetic data for development, demos and tests. Not real people; figures are checks of the generator, not clinical statistics.",
    }


def _groups(pop: Population) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Who the figures count among, on the delivery date: every person's position, in the
    region, age in years, adults of the region (18 or older), carriers (one or two alleles)."""
    idx = np.arange(pop.n)
    region = pop["in_region"]
    age = pop.age_at(idx, pop.as_of)
    return idx, region, age, region & (age >= 18), pop["alleles"] > 0


def _population_figures(pop: Population, p: dict, src) -> dict:
    """Genotypes and untreated LDL-C of the region, against their targets."""
    idx, region, age, adult, carrier = _groups(pop)
    high = adult & (pop["ldl_now"] >= 4.9)
    by_band = _ldl_by_band(pop, p, idx, age, region, carrier)
    return {
        "fh_prevalence_region": _fig(_share(carrier, region), 0.004, src("genotype", "founder_fh_prevalence")),
        "fh_prevalence_founders": _fig(_share(carrier, pop["founder"]), p["genotype"]["founder_fh_prevalence"], src("genotype", "founder_fh_prevalence")),
        "hofh_people_region": _fig(int((region & (pop["alleles"] >= 2)).sum()), "1:160,000-1:300,000", "docs/clinical-reference.md §9 (ClinGen; Vallejo-Vaz & Ray 2018)"),
        "gene_split_among_carriers": _fig(
            {g: _share(np.isin(pop["gene"], codes), carrier & region) for g, codes in (("LDLR", [1, 2]), ("APOB", [3]), ("PCSK9", [4]))},
            p["genotype"]["gene_split"], src("genotype", "gene_split")),
        "mean_untreated_ldl_by_age_band": _fig(by_band, "non-FH: band means of ldl_nonfh (nonfh_target); FH adults 5.7 +- 1.3 at mean age 37.5; FH children 4.8",
                                                "docs/clinical-reference.md §9/§13 (Clin Cardiol 2017;40:1169; NORIP; CGPS)"),
        "share_adults_untreated_ldl_ge_4_9": _fig(_share(pop["ldl_now"] >= 4.9, adult), "0.05-0.07", "docs/clinical-reference.md §13 targets (Perak 2016; Khera 2016; CGPS)"),
        "share_adults_untreated_ldl_ge_6_5": _fig(_share(pop["ldl_now"] >= 6.5, adult), 0.0025, "docs/clinical-reference.md §13 (Bell 2012: 99.75th percentile)"),
        "monogenic_among_ldl_ge_4_9": _fig(_share(carrier, high), 0.02, "docs/clinical-reference.md §9 (Khera 2016 1.7%; Natarajan 2018 2%)"),
        "polygenic_among_ldl_ge_4_9": _fig(_share(pop["prs_z"] >= p["ldl_nonfh"]["polygenic_high_z"], high & ~carrier), "0.20-0.30", "docs/clinical-reference.md §9 (Natarajan 2018 23%; Trinder 2020)"),
    }


def _ldl_by_band(pop: Population, p: dict, idx: np.ndarray, age: np.ndarray, region: np.ndarray,
                 carrier: np.ndarray) -> dict:
    """Untreated LDL by age band, FH and non-FH, next to the non-FH target means."""
    mean_nf, _ = nonfh_mean_sd(pop, idx, age, p)
    by_band = {}
    for lo, hi, label in BANDS:
        band = region & (age >= lo) & (age < hi)
        fh, nf = band & carrier, band & ~carrier
        by_band[label] = {
            "fh_mean": round(float(pop["ldl_now"][fh].mean()), 2) if fh.any() else None, "fh_n": int(fh.sum()),
            "nonfh_mean": round(float(pop["ldl_now"][nf].mean()), 2) if nf.any() else None, "nonfh_n": int(nf.sum()),
            "nonfh_target": round(float(mean_nf[nf].mean()), 2) if nf.any() else None,
        }
    return by_band


def _care_figures(pop: Population, p: dict, src, frame: pl.DataFrame) -> dict:
    """Testing, treatment, lab coding, diagnoses and clinic outcomes, against their targets."""
    idx, region, age, adult, carrier = _groups(pop)
    as_of_day = pop.as_of
    seen = pop["ldl_now"] + secondary_effect(pop, idx, as_of_day, p)
    tested = pop["panels"] > 0
    on_statin = pop["statin"] & (pop["statin_start"] <= as_of_day) & (pop["statin_stop"] > as_of_day)
    alive = region & (pop["death"] == NEVER) & (pop["moved"] == NEVER)
    lipid = frame.filter(pl.col("code").is_in(LIPID_CODES))
    outcome = pop["outcome"]
    fh_out = np.isin(outcome, [0, 1])
    attended = np.isin(outcome, [0, 1, 2])
    referred_high = region & pop["referred"] & (seen >= 6.5)
    sec_active = np.zeros(pop.n, bool)
    for key in ("hypo", "dm", "neph", "chol"):
        sec_active |= (pop[f"{key}_on"] <= as_of_day) & (as_of_day < pop[f"{key}_off"])
    return {
        "share_ever_tested_10y": _fig(_share(tested, region), "0.25-0.46 (one GP list 25%; 41-46% with a coded LDL)", src("measurement", "test_probability_per_5y")),
        "share_ever_tested_10y_by_age": _fig(
            {label: _share(tested, region & (age >= lo) & (age < hi)) for lo, hi, label in ((0, 18, "0-17"), (18, 40, "18-39"), (40, 60, "40-59"), (60, 200, "60+"))},
            {"18-39": round(1 - 0.75**2, 3), "40-59": round(1 - 0.5**2, 3), "60+": round(1 - 0.3**2, 3)},
            "(derived) 1-(1-p5)^2 from docs/clinical-reference.md §13 lipid_test_probability_per_5y; people with more tests carry more of them"),
        "lipid_profiles_per_tested_person_10y": _fig(round(float(pop["panels"][region & tested].mean()), 2), None, "(derived) routine tests plus monitoring after statin start (measurement.monitoring_tests_per_year)"),
        "share_on_statin_now": _fig(_share(on_statin, alive), 0.094, "docs/clinical-reference.md §9 (Svensson 2015: 94 per 1,000 in Northern Denmark)"),
        "share_on_statin_now_fh_undiagnosed_adults": _fig(_share(on_statin, alive & carrier & ~pop["diagnosed"] & (age >= 18)), p["treatment"]["statin_prob_fh_undiagnosed"], src("treatment", "statin_prob_fh_undiagnosed")),
        "share_on_statin_now_fh_diagnosed": _fig(_share(on_statin, alive & carrier & pop["diagnosed"]), p["treatment"]["statin_prob_fh_diagnosed"], src("treatment", "statin_prob_fh_diagnosed")),
        "statin_effect_before_after": _fig(statin_effect(pop, frame), "about -30 to -45% (NICE % reductions; N. Denmark median 4.0 -> 2.3)", "docs/clinical-reference.md §4.1/§4.2 (Svensson 2015)"),
        "share_lipid_results_mg_dl": _fig(round(float((lipid["unit"] == labs.UNITS.index("mg/dL")).mean()), 4), p["measurement"]["mgdl_share_of_lipids"], src("measurement", "mgdl_share_of_lipids")),
        "share_ldl_results_mg_dl": _fig(round(float((frame.filter(pl.col("code").is_in(LDL_CODES))["unit"] == labs.UNITS.index("mg/dL")).mean()), 4), p["measurement"]["mgdl_share_of_lipids"], src("measurement", "mgdl_share_of_lipids")),
        "share_results_loinc": _fig(round(float((frame["code"] >= len(labs.KEYS)).mean()), 4), p["measurement"]["loinc_share"], src("measurement", "loinc_share")),
        "share_fh_diagnosed": _fig(_share(pop["diagnosed"], region & carrier), p["diagnosis"]["fh_diagnosed_share"], src("diagnosis", "fh_diagnosed_share")),
        "share_chd_fh_adults": _fig(_share(pop["chd_day"] < as_of_day, adult & carrier), "0.17-0.33", "docs/clinical-reference.md §9 (FHSC 17.4%; CGPS 33%)"),
        "share_chd_nonfh_adults": _fig(_share(pop["chd_day"] < as_of_day, adult & ~carrier), None, src("chd", "nonfh_cumulative_by_age")),
        "clinic_outcome_rows": _fig(int((region & (outcome >= 0)).sum()), "few", "docs/clinical-reference.md §7 (4-27% of flagged people are referred)"),
        "fh_yield_among_clinic_outcomes": _fig(_share(fh_out, region & (outcome >= 0)), 0.26, "docs/clinical-reference.md §13 (Hedegaard 2023)"),
        "fh_yield_among_attended": _fig(_share(fh_out, region & attended), None, "(derived)"),
        "variant_among_referred_ldl_ge_6_5": _fig(_share(carrier, referred_high), "0.30-0.42", "docs/clinical-reference.md §7 (Bell 2014; Bender 2016)"),
        "secondary_cause_active_among_ldl_ge_5": _fig(_share(sec_active, adult & (seen >= 5.0)), "0.08-0.51 by definition", "docs/clinical-reference.md §6 (Bell 2012 8.3%; Mülverstedt 2021 ~51%)"),
    }


def _src(cited: dict, keys: tuple[str, ...]) -> str:
    node = cited
    for key in keys:
        node = node[key]
    return node.get("source", "") if isinstance(node, dict) else ""
