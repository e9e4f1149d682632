"""What the health service did: FH diagnoses, lipid testing, referrals and outcomes, treatment.

Order matters and follows cause: existing FH diagnoses -> who gets lipid tests -> past
referrals of tested people (few, biased to very high LDL; carriers found there become
diagnosed) -> statin/ezetimibe treatment (more likely when diagnosed, with CHD or diabetes,
or high LDL) -> follow-up tests after starting treatment.
"""

from __future__ import annotations

import numpy as np

from fh_screen.synth.params import band_table
from fh_screen.synth.population import YEAR, Population, nonfh_mean_sd, secondary_effect

NEVER = np.iinfo(np.int64).max // 4
OUTCOMES = ["fh_genetic", "fh_clinical", "not_fh", "did_not_attend", "declined", "pending"]


def choose_outcome(rng: np.random.Generator, table: dict[str, float], size: int) -> np.ndarray:
    """Indices into OUTCOMES drawn with the table's probabilities."""
    keys = list(table)
    p = np.array([table[k] for k in keys], float)
    pick = np.searchsorted(np.cumsum(p / p.sum()), rng.random(size), side="right")
    return np.array([OUTCOMES.index(k) for k in keys])[pick]


def observed_end(pop: Population) -> np.ndarray:
    """Last day a person can have data: delivery date, death or moving out."""
    return np.minimum(np.minimum(pop["death"], pop["moved"]), pop.as_of)


def diagnose_existing(rng, pop: Population, p: dict) -> None:
    """FH already diagnosed (DE780B) for a share of carriers, more often after CHD."""
    d = p["diagnosis"]
    n, as_of = pop.n, pop.as_of
    age_now = pop.age_at(np.arange(n), as_of)
    eligible = (pop["alleles"] > 0) & (age_now >= 5)
    chd = pop["chd_day"] < as_of
    weight = np.where(chd, d["fh_diagnosed_chd_weight"], 1.0)
    scale = d["fh_diagnosed_share"] * eligible.sum() / max(weight[eligible].sum(), 1e-9)
    diagnosed = eligible & (rng.random(n) < np.minimum(weight * scale, 0.95))
    start = np.maximum(pop["birth"] + 5 * YEAR, as_of - 25 * YEAR)
    end = observed_end(pop) - 30
    day = (start + rng.random(n) * np.maximum(end - start, 0)).astype(np.int64)
    after_chd = chd & (rng.random(n) < 0.5)
    day = np.where(after_chd, np.minimum(pop["chd_day"] + (rng.random(n) * 2 * YEAR).astype(np.int64), end), day)
    diagnosed &= day > pop["birth"]
    pop["diagnosed"] = diagnosed
    pop["diag_day"] = np.where(diagnosed, day, NEVER)
    pop["diag_via_referral"] = np.zeros(n, bool)


def test_rate_per_year(age: np.ndarray, p: dict) -> np.ndarray:
    """Routine lipid profiles per person-year at ``age``, from the 5-year test probabilities."""
    xs, vals = band_table(p["measurement"]["test_probability_per_5y"])
    p5 = np.asarray(vals)[np.searchsorted(xs, age, side="right") - 1]
    return -np.log1p(-p5) / 5.0


def base_tests(rng, pop: Population, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Routine lipid profiles over the history window: (person index, day) per panel."""
    m = p["measurement"]
    as_of = pop.as_of
    start = np.maximum(as_of - int(p["window"]["history_years"] * YEAR), pop["birth"])
    end = observed_end(pop)
    years = np.where(pop["in_region"], np.maximum(end - start, 0) / YEAR, 0.0)
    rate = test_rate_per_year(pop.age_at(np.arange(pop.n), (start + end) // 2), p)
    shape = m["test_frailty_shape"]
    frailty = rng.gamma(shape, 1.0 / shape, pop.n)
    counts = rng.poisson(rate * frailty * years)
    pidx = np.repeat(np.arange(pop.n), counts)
    day = start[pidx] + (rng.random(len(pidx)) * (end - start)[pidx]).astype(np.int64)
    return pidx, day


def referrals(rng, pop: Population, p: dict, tested: np.ndarray, first_test: np.ndarray) -> dict[str, np.ndarray]:
    """Past lipid-clinic referrals and their outcomes (few, biased toward very high LDL).

    Carriers with an FH outcome become diagnosed on the outcome date. Diagnosed carriers
    also get an outcome row (most were diagnosed in a lipid clinic).
    """
    r, d = p["referral"], p["diagnosis"]
    n, as_of = pop.n, pop.as_of
    idx = np.arange(n)
    end = observed_end(pop)
    seen = pop["ldl_now"] + secondary_effect(pop, idx, as_of, p) + 0.3 * rng.standard_normal(n)
    prob = r["max_prob"] / (1 + np.exp(-(seen - r["midpoint_ldl"]) / r["scale"]))
    age_now = pop.age_at(idx, as_of)
    candidate = pop["in_region"] & tested & ~pop["diagnosed"] & (age_now >= 18)
    referred = candidate & (rng.random(n) < prob)
    carrier = pop["alleles"] > 0
    polygenic = pop["prs_z"] >= p["ldl_nonfh"]["polygenic_high_z"]
    outcome = np.full(n, -1)
    for mask, table in (
        (referred & carrier, r["outcome_carrier"]),
        (referred & ~carrier & polygenic, r["outcome_noncarrier_polygenic"]),
        (referred & ~carrier & ~polygenic, r["outcome_noncarrier"]),
    ):
        outcome[mask] = choose_outcome(rng, table, int(mask.sum()))
    lo = first_test + 30
    hi = end - 1
    day = (lo + rng.random(n) * np.maximum(hi - lo, 0)).astype(np.int64)
    pending = outcome == OUTCOMES.index("pending")
    day = np.where(pending, np.maximum(as_of - 1 - (rng.random(n) * 120).astype(np.int64), lo), day)
    day = np.minimum(day, hi)
    found = referred & carrier & (outcome <= 1)
    pop["diagnosed"] = pop["diagnosed"] | found
    pop["diag_day"] = np.where(found, day, pop["diag_day"])
    pop["diag_via_referral"] = found
    # Existing diagnoses with a lipid-clinic record.
    record = pop["diagnosed"] & ~found & pop["in_region"] & (rng.random(n) < d["clinic_record_share"])
    genetic = rng.random(n) < r["diagnosed_gene_known"]
    outcome[record] = np.where(genetic[record], 0, 1)
    day = np.where(record, pop["diag_day"], day)
    has = outcome >= 0
    pop["referred"] = referred
    pop["outcome"] = outcome
    pop["outcome_day"] = np.where(has, day, NEVER)
    rows = np.flatnonzero(has)
    gene = np.where(outcome[rows] == 0, pop["gene"][rows], 0)
    return {"pidx": rows, "day": day[rows], "outcome": outcome[rows], "gene": gene}


def treatment(rng, pop: Population, p: dict) -> None:
    """Statin start/stop, drug, strength and individual response; ezetimibe add-on."""
    t = p["treatment"]
    n, as_of = pop.n, pop.as_of
    idx = np.arange(n)
    age_now = pop.age_at(idx, as_of)
    end = observed_end(pop)
    diagnosed = pop["diagnosed"]
    treated = rng.random(n) < np.minimum(_statin_probability(pop, p, age_now), 0.95)
    start = _statin_start(rng, pop, t)
    treated &= start < end - 1
    drugs, drug, strength, reduction = _statin_drug(rng, pop, t)
    nonresponse = rng.random(n) < t["nonresponse_share"]
    response = np.maximum(reduction + t["response_sd"] * rng.standard_normal(n), 0.0)
    response = np.where(nonresponse, 0.0, np.minimum(response, 0.8))
    interval = t["dispensing_interval_days"]
    stop = np.where(nonresponse, start + (1 + (rng.random(n) * 3).astype(np.int64)) * interval, NEVER)
    pop["statin"] = treated
    pop["statin_start"] = np.where(treated, start, NEVER)
    pop["statin_stop"] = np.where(treated, stop, NEVER)
    pop["statin_drug"] = np.where(treated, np.asarray(drugs)[drug], "")
    pop["statin_mg"] = np.where(treated, strength, 0.0)
    pop["statin_expected"] = np.where(treated, reduction, 0.0)
    pop["statin_response"] = np.where(treated, response, 0.0)
    pop["nonresponder"] = treated & nonresponse
    eze_p = np.where(diagnosed, t["ezetimibe_prob"]["fh_diagnosed"], t["ezetimibe_prob"]["other"])
    eze_start = start + (90 + rng.random(n) * 910).astype(np.int64)
    eze = treated & ~nonresponse & (rng.random(n) < eze_p) & (eze_start < end - 1)
    pop["eze_start"] = np.where(eze, eze_start, NEVER)
    pop["eze_response"] = np.where(eze, np.clip(t["ezetimibe_reduction"] + t["ezetimibe_sd"] * rng.standard_normal(n), 0, 0.5), 0.0)


def _statin_probability(pop: Population, p: dict, age_now: np.ndarray) -> np.ndarray:
    """Chance of ever being on a statin: by age, LDL-C z-score, heart disease and diabetes
    for non-carriers; fixed shares for undiagnosed adult and diagnosed (10+) carriers."""
    t = p["treatment"]
    idx = np.arange(pop.n)
    mean, sd = nonfh_mean_sd(pop, idx, age_now, p)
    z = (pop["ldl_now"] - mean) / sd
    xs, vals = band_table(t["statin_prob_nonfh_by_age"])
    base = np.asarray(vals)[np.searchsorted(xs, age_now, side="right") - 1]
    chd = pop["chd_day"] < pop.as_of
    dm = pop["dm_on"] < pop.as_of
    slope = t["ldl_z_slope"]
    prob = t["statin_prob_nonfh_scale"] * base * np.exp(slope * z - slope**2 / 2) * np.where(chd, t["chd_factor"], 1.0) * np.where(dm, t["diabetes_factor"], 1.0)
    carrier = pop["alleles"] > 0
    diagnosed = pop["diagnosed"]
    prob = np.where(carrier & ~diagnosed, np.where(age_now >= 18, t["statin_prob_fh_undiagnosed"], 0.0), prob)
    return np.where(diagnosed, np.where(age_now >= 10, t["statin_prob_fh_diagnosed"], 0.0), prob)


def _statin_start(rng, pop: Population, t: dict) -> np.ndarray:
    """Start day: within the look-back, not before the minimum age (10 for diagnosed FH, 18
    for other carriers, 30 otherwise); soon after heart disease or an FH diagnosis."""
    n, as_of = pop.n, pop.as_of
    carrier, diagnosed = pop["alleles"] > 0, pop["diagnosed"]
    chd = pop["chd_day"] < as_of
    min_age = np.where(carrier, np.where(diagnosed, 10.0, 18.0), 30.0)
    earliest = pop["birth"] + (min_age * YEAR).astype(np.int64)
    lookback = as_of - (rng.random(n) * t["start_lookback_years"] * YEAR).astype(np.int64)
    start = np.maximum(lookback, earliest)
    start = np.where(chd & ~diagnosed, pop["chd_day"] + (rng.random(n) * 60).astype(np.int64), start)
    return np.where(diagnosed, np.maximum(pop["diag_day"] + (rng.random(n) * 90).astype(np.int64), earliest), start)


def _statin_drug(rng, pop: Population, t: dict) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """Drug and strength: high intensity for diagnosed FH, the Danish mix otherwise; with
    each one's expected LDL-C reduction."""
    n, diagnosed = pop.n, pop["diagnosed"]
    drugs = list(t["drug_mix"])
    drug = np.searchsorted(np.cumsum([t["drug_mix"][k] for k in drugs]), rng.random(n) * sum(t["drug_mix"].values()), side="right")
    strength = np.zeros(n)
    reduction = np.zeros(n)
    u = rng.random(n)
    for k, code in enumerate(drugs):
        mask = drug == k
        strength[mask], reduction[mask] = _strength(t["strengths"][code], t["expected_reduction"][code], u[mask])
    hi = t["fh_diagnosed_high_intensity"]
    hi_drugs = list(hi)
    hi_pick = (rng.random(n) * len(hi_drugs)).astype(int)
    for k, code in enumerate(hi_drugs):
        mask = diagnosed & (hi_pick == k)
        drug[mask] = drugs.index(code)
        strength[mask], reduction[mask] = _strength(hi[code], t["expected_reduction"][code], u[mask])
    return drugs, drug, strength, reduction


def _strength(table: dict, reductions: dict, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = list(table)
    cum = np.cumsum([table[k] for k in keys])
    pick = np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(keys) - 1)
    mg = np.array([float(k) for k in keys])[pick]
    red = np.array([reductions[k] for k in keys])[pick]
    return mg, red


def treatment_factor(pop: Population, idx: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Multiplier on LDL from statin and ezetimibe taken on ``day``."""
    on_statin = (pop["statin_start"][idx] <= day) & (day < pop["statin_stop"][idx])
    on_eze = pop["eze_start"][idx] <= day
    return np.where(on_statin, 1 - pop["statin_response"][idx], 1.0) * np.where(on_eze, 1 - pop["eze_response"][idx], 1.0)


def follow_up_tests(rng, pop: Population, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Tests around treatment: the profile that led to it, then monitoring profiles."""
    m = p["measurement"]
    as_of = pop.as_of
    window_start = as_of - int(p["window"]["history_years"] * YEAR)
    end = observed_end(pop)
    treated = pop["statin"] & pop["in_region"]
    start = np.maximum(pop["statin_start"], window_start)
    years = np.where(treated, np.maximum(end - start, 0) / YEAR, 0.0)
    counts = rng.poisson(m["monitoring_tests_per_year"] * years)
    pidx = np.repeat(np.arange(pop.n), counts)
    day = start[pidx] + 14 + (rng.random(len(pidx)) * np.maximum(end - start - 14, 1)[pidx]).astype(np.int64)
    pre_day = pop["statin_start"] - (7 + rng.random(pop.n) * 53).astype(np.int64)
    pre = treated & (pre_day >= window_start) & (pre_day < end) & (rng.random(pop.n) < 0.9)
    pre_idx = np.flatnonzero(pre)
    all_idx = np.concatenate([pidx, pre_idx])
    all_day = np.concatenate([day, pre_day[pre_idx]])
    keep = all_day < end[all_idx]
    return all_idx[keep], all_day[keep]
