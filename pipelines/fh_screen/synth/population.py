"""People of the synthetic region: three-generation families, FH genotype and phenotype.

Everything is a numpy array indexed by person (``Population``), built a generation at a
time, so 200,000 people take well under a second. Dates are integer days since 1970-01-01.

Decisions:
    * A family is a grandparent couple (founders), their children with in-married founder
      partners, and grandchildren. FH alleles enter only through founders (probability
      ``founder_fh_prevalence``) and pass to each child with probability 0.5 per allele
      (autosomal dominant), so homozygous FH arises naturally when two carriers have a child.
    * A person keeps their LDL centile for life: untreated LDL at any age is the age/sex
      mean plus a fixed personal deviation (polygenic part ``0.35 * prs_z`` + the rest), or
      for carriers the mean times a gene multiplier plus a personal deviation.
    * Secondary causes are episodes (onset, resolution) that add to LDL while active; the lab
      tests that reveal them are drawn in ``labs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from fh_screen.synth.params import band_table

EPOCH = date(1970, 1, 1)
YEAR = 365.25
GENES = np.array(["", "LDLR", "LDLR", "APOB", "PCSK9"])
VARIANT_CLASS = np.array(["", "LDLR_null", "LDLR_defective", "APOB", "PCSK9"])
NONE, LDLR_NULL, LDLR_DEF, APOB, PCSK9 = range(5)


def day_of(d: date) -> int:
    return (d - EPOCH).days


@dataclass
class Population:
    """Column arrays, one entry per person (in the region or a relative outside it)."""

    as_of: int
    cols: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.cols[key]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        self.cols[key] = value

    @property
    def n(self) -> int:
        return len(self.cols["family"])

    def age_at(self, idx: np.ndarray, day: np.ndarray | int) -> np.ndarray:
        return (np.asarray(day) - self.cols["birth"][idx]) / YEAR


def _choice(rng: np.random.Generator, probs: list[float], size: int) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(size), side="right")


def _families(rng: np.random.Generator, n_families: int, p: dict, as_of: int) -> dict[str, np.ndarray]:
    """Persons of ``n_families`` three-generation families, parents as indices (-1 = none)."""
    fam = p["families"]
    g1 = _first_generation(rng, n_families, fam)
    g2 = _children(rng, g1, n_families, fam)
    sp, partner = _partners(rng, g2, base=len(g1["family"]) + len(g2["family"]), share=fam["g2_spouse_share"])
    g3 = _grandchildren(rng, g2, partner, base=len(g1["family"]), fam=fam)
    parts = [g1, g2, sp, g3]
    cols = {k: np.concatenate([part[k] for part in parts]) for k in g1}
    cols["founder"] = np.concatenate([np.ones(len(g1["family"]), bool), np.zeros(len(g2["family"]), bool),
                                      np.ones(len(sp["family"]), bool), np.zeros(len(g3["family"]), bool)])
    cols["birth"] = np.floor(as_of - cols["age"] * YEAR).astype(np.int64)
    return cols


def _gap(rng: np.random.Generator, fam: dict, size: int) -> np.ndarray:
    """Years between a parent's and a child's birth."""
    return rng.uniform(fam["generation_gap_min"], fam["generation_gap_max"], size)


def _first_generation(rng: np.random.Generator, n_families: int, fam: dict) -> dict[str, np.ndarray]:
    """Generation 1: one couple per family (founders), the woman about 2 years younger."""
    g1_age = rng.uniform(fam["g1_age_min"], fam["g1_age_max"], n_families)
    return {
        "family": np.repeat(np.arange(n_families), 2),
        "male": np.tile([True, False], n_families),
        "age": np.column_stack([g1_age, g1_age - rng.normal(2, 3, n_families)]).ravel(),
        "father": np.full(2 * n_families, -1),
        "mother": np.full(2 * n_families, -1),
        "generation": np.full(2 * n_families, 1),
    }


def _children(rng: np.random.Generator, g1: dict, n_families: int, fam: dict) -> dict[str, np.ndarray]:
    """Generation 2: children of each generation-1 couple (father at 2f, mother at 2f + 1)."""
    g2_fam = np.repeat(np.arange(n_families), _choice(rng, fam["children_per_couple"], n_families))
    n2 = len(g2_fam)
    age = g1["age"][2 * g2_fam + 1] - _gap(rng, fam, n2)
    return {
        "family": g2_fam,
        "male": rng.random(n2) < 0.5,
        "age": age,
        "father": 2 * g2_fam,
        "mother": 2 * g2_fam + 1,
        "generation": np.full(n2, 2),
    }


def _partners(rng: np.random.Generator, g2: dict, base: int, share: float) -> tuple[dict, np.ndarray]:
    """In-married partners (founders) of generation 2, and each generation-2 person's
    partner index (-1 = none); partners are numbered from ``base``."""
    n2 = len(g2["family"])
    sp_of = np.flatnonzero(rng.random(n2) < share)
    ns = len(sp_of)
    sp = {
        "family": g2["family"][sp_of],
        "male": ~g2["male"][sp_of],
        "age": g2["age"][sp_of] + rng.normal(0, 3, ns),
        "father": np.full(ns, -1),
        "mother": np.full(ns, -1),
        "generation": np.full(ns, 2),
    }
    partner = np.full(n2, -1)
    partner[sp_of] = base + np.arange(ns)
    return sp, partner


def _grandchildren(rng: np.random.Generator, g2: dict, partner: np.ndarray, base: int, fam: dict) -> dict:
    """Generation 3: children of each generation-2 person (with their partner when present);
    generation-2 people are numbered from ``base``."""
    n2 = len(g2["family"])
    par = np.repeat(np.arange(n2), _choice(rng, fam["children_per_couple"], n2))
    n3 = len(par)
    own = base + par
    other = partner[par]
    par_male = g2["male"][par]
    return {
        "family": g2["family"][par],
        "male": rng.random(n3) < 0.5,
        "age": g2["age"][par] - _gap(rng, fam, n3),
        "father": np.where(par_male, own, other),
        "mother": np.where(par_male, other, own),
        "generation": np.full(n3, 3),
    }


def _subset(cols: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """Rows ``keep`` of every column, with parent indices renumbered (dropped parent -> -1)."""
    new_index = np.cumsum(keep) - 1
    out = {k: v[keep] for k, v in cols.items()}
    for key in ("father", "mother"):
        ref = out[key]
        valid = ref >= 0
        ref[valid] = np.where(keep[ref[valid]], new_index[ref[valid]], -1)
    return out


def _genotype(rng: np.random.Generator, pop: Population, p: dict) -> None:
    """FH alleles from founders, passed on generation by generation (parents precede children)."""
    g = p["genotype"]
    n = pop.n
    alleles = np.zeros(n, np.int8)
    gene = np.zeros(n, np.int8)
    founders = pop["founder"]
    carrier = founders & (rng.random(n) < g["founder_fh_prevalence"])
    split = g["gene_split"]
    ldlr, apob = split["LDLR"], split["APOB"]
    null = g["ldlr_null_share"]
    probs = [ldlr * null, ldlr * (1 - null), apob, split["PCSK9"]]
    alleles[carrier] = 1
    gene[carrier] = 1 + _choice(rng, probs, int(carrier.sum()))
    u_f, u_m = rng.random(n), rng.random(n)
    for generation in (2, 3):
        kids = np.flatnonzero((pop["generation"] == generation) & ~founders)
        for key, u in (("father", u_f), ("mother", u_m)):
            par = pop[key][kids]
            has = par >= 0
            k, pa = kids[has], par[has]
            passes = u[k] < g["transmission"] * alleles[pa]
            alleles[k[passes]] += 1
            first = passes & (gene[k] == NONE)
            gene[k[first]] = gene[pa[first]]
    pop["alleles"] = alleles
    pop["gene"] = gene


def _interp_band(ages: np.ndarray, table: dict, child: list[float]) -> tuple[np.ndarray, np.ndarray]:
    xs, vals = band_table(table)
    xs = [17.0] + xs
    means = [child[0]] + [v[0] for v in vals]
    sds = [child[1]] + [v[1] for v in vals]
    return np.interp(ages, xs, means), np.interp(ages, xs, sds)


def nonfh_mean_sd(pop: Population, idx: np.ndarray, ages: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Population (non-FH) untreated LDL mean and sd at each person's age and sex."""
    q = p["ldl_nonfh"]
    mean = np.empty(len(idx))
    sd = np.empty(len(idx))
    male = pop["male"][idx]
    for sex_key, mask in (("men", male), ("women", ~male)):
        m, s = _interp_band(ages[mask], q[sex_key], q["child"])
        mean[mask], sd[mask] = m, s
    return mean, sd


def untreated_ldl(pop: Population, idx: np.ndarray, day: np.ndarray | int, p: dict) -> np.ndarray:
    """Genetic + age untreated LDL (mmol/L) of persons ``idx`` on ``day`` (no secondary causes)."""
    ages = np.broadcast_to(pop.age_at(idx, day), idx.shape).astype(float)
    mean, sd = nonfh_mean_sd(pop, idx, ages, p)
    q, f = p["ldl_nonfh"], p["ldl_fh"]
    poly, skew = q["polygenic_sd"], q["skew_sdlog"]
    # Right-skewed personal deviation: a standardised lognormal (mean 0, sd 1).
    e = pop["ldl_e"][idx]
    e_skew = (np.exp(skew * e) - np.exp(skew**2 / 2)) / np.sqrt((np.exp(skew**2) - 1) * np.exp(skew**2))
    ldl = mean + poly * pop["prs_z"][idx] + np.sqrt(np.maximum(sd**2 - poly**2, 0.01)) * e_skew
    alleles = pop["alleles"][idx]
    het = alleles == 1
    if het.any():
        mult_table = f["multiplier"]
        mult = np.array([1.0] + [mult_table[name] for name in VARIANT_CLASS[1:]])[pop["gene"][idx[het]]]
        adult = ages[het] >= 18
        fh = np.where(
            adult,
            mean[het] * mult + f["adult_sd"] * pop["ldl_e"][idx[het]],
            f["child_mean"] * mult / 1.9 + f["child_sd"] * pop["ldl_e"][idx[het]],
        )
        ldl[het] = fh
    hom = alleles >= 2
    if hom.any():
        ldl[hom] = f["hofh"][0] + f["hofh"][1] * pop["ldl_e"][idx[hom]]
    return np.maximum(ldl, 0.8)


def _episodes(rng, pop: Population, p: dict) -> None:
    """Secondary-cause episodes: onset and resolution days (no episode = onset beyond as_of)."""
    s = p["secondary_causes"]
    n, as_of = pop.n, pop.as_of
    age_now = pop.age_at(np.arange(n), as_of)
    male = pop["male"]
    lookback = 15 * YEAR
    never = np.full(n, np.iinfo(np.int64).max // 4)

    def onset(mask: np.ndarray, min_age: float) -> np.ndarray:
        start = np.maximum(pop["birth"] + min_age * YEAR, as_of - lookback)
        day = (start + rng.random(n) * np.maximum(as_of - start, 0)).astype(np.int64)
        return np.where(mask & (start < as_of), day, never)

    def resolve(on: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return np.where(on < never, on + (rng.uniform(lo, hi, n) * YEAR).astype(np.int64), never)

    prev_hypo = np.where(male, s["hypothyroid_prevalence"]["M"], s["hypothyroid_prevalence"]["F"])
    pop["hypo_on"] = onset((rng.random(n) < prev_hypo) & (age_now >= 25), 25)
    pop["hypo_off"] = resolve(pop["hypo_on"], 0.5, 3.0)
    pop["hyper_on"] = onset((rng.random(n) < s["hyperthyroid_prevalence"]) & (age_now >= 25), 25)
    pop["hyper_off"] = resolve(pop["hyper_on"], 0.3, 1.5)
    xs, vals = band_table(s["diabetes_prevalence_by_age"])
    pop["dm_on"] = onset(rng.random(n) < np.interp(age_now, xs, vals), 30)
    pop["dm_off"] = never.copy()
    pop["neph_on"] = onset((rng.random(n) < s["nephrotic_prevalence"]) & (age_now >= 5), 5)
    pop["neph_off"] = resolve(pop["neph_on"], 0.5, 2.0)
    pop["ckd_on"] = onset((rng.random(n) < s["ckd_prevalence_age60plus"]) & (age_now >= 60), 55)
    pop["ckd_off"] = never.copy()
    pop["chol_on"] = onset((rng.random(n) < s["cholestasis_prevalence"]) & (age_now >= 20), 20)
    pop["chol_off"] = resolve(pop["chol_on"], 0.3, 2.0)


SECONDARY = {  # episode key -> LDL effect parameter
    "hypo": "hypothyroid_ldl_effect",
    "hyper": "hyperthyroid_ldl_effect",
    "dm": "diabetes_ldl_effect",
    "neph": "nephrotic_ldl_effect",
    "ckd": "ckd_ldl_effect",
    "chol": "cholestasis_ldl_effect",
}


def active(pop: Population, key: str, idx: np.ndarray, day: np.ndarray | int) -> np.ndarray:
    return (pop[f"{key}_on"][idx] <= day) & (day < pop[f"{key}_off"][idx])


def secondary_effect(pop: Population, idx: np.ndarray, day: np.ndarray | int, p: dict) -> np.ndarray:
    """LDL added (mmol/L) by secondary causes active on ``day``."""
    s = p["secondary_causes"]
    total = np.zeros(len(idx))
    for key, param in SECONDARY.items():
        total += np.where(active(pop, key, idx, day), s[param], 0.0)
    return total


def _chd(rng, pop: Population, p: dict) -> None:
    """Coronary heart disease onset by inverting cumulative-incidence curves per person."""
    c = p["chd"]
    n, as_of = pop.n, pop.as_of
    age_now = pop.age_at(np.arange(n), as_of)
    u = rng.random(n)
    onset_age = np.full(n, np.inf)
    male = pop["male"]
    carrier = pop["alleles"] > 0

    def invert(mask: np.ndarray, table: dict, factor: np.ndarray) -> None:
        xs, vals = band_table(table)
        vals = np.asarray(vals, float) + np.arange(len(vals)) * 1e-9  # strictly increasing
        scaled = u[mask] / factor[mask]
        age = np.interp(scaled, vals, xs)
        age[scaled >= vals[-1]] = np.inf
        onset_age[mask] = age

    sex_factor = np.where(male, c["nonfh_sex_factor"]["M"], c["nonfh_sex_factor"]["F"])
    invert(~carrier, c["nonfh_cumulative_by_age"], sex_factor)
    gene_factor = np.where(pop["gene"] == APOB, c["apob_factor"], 1.0) * c["fh_population_factor"]
    invert(carrier & male, c["fh_cumulative_men"], gene_factor)
    invert(carrier & ~male, c["fh_cumulative_women"], gene_factor)
    has = onset_age <= age_now
    pop["chd_day"] = np.where(has, pop["birth"] + np.nan_to_num(onset_age, posinf=0) * YEAR, np.iinfo(np.int64).max // 4).astype(np.int64)
    premature = np.where(male, c["premature_age"]["M"], c["premature_age"]["F"])
    pop["chd_premature"] = has & (onset_age < premature)


def _demography(rng, pop: Population, p: dict) -> None:
    d = p["demography"]
    n, as_of = pop.n, pop.as_of
    window = p["window"]["history_years"] * YEAR
    age_now = pop.age_at(np.arange(n), as_of)
    xs, vals = band_table(d["deceased_share_by_age"])
    dead = rng.random(n) < np.interp(age_now, xs, vals)
    death = (as_of - rng.random(n) * window).astype(np.int64)
    death = np.maximum(death, pop["birth"] + 1)
    none = np.iinfo(np.int64).max // 4
    pop["death"] = np.where(dead, death, none)
    moved = ~dead & (rng.random(n) < d["moved_out_share"])
    pop["moved"] = np.where(moved, (as_of - rng.random(n) * window).astype(np.int64), none)
    pop["moved"] = np.where(moved, np.maximum(pop["moved"], pop["birth"] + 1), none)
    pop["reported_sex"] = np.where(rng.random(n) < p["families"]["sex_unknown_share"], "U", np.where(pop["male"], "M", "F"))


def build_population(seed: int, n_patients: int, as_of: date, p: dict) -> Population:
    """All persons of enough families to give exactly ``n_patients`` people in the region."""
    as_of_day = day_of(as_of)
    n_families = max(4, int(n_patients / 4.0) + 20)
    while True:
        rng = np.random.default_rng([seed, 1, n_families])
        cols = _families(rng, n_families, p, as_of_day)
        cols = _subset(cols, cols["birth"] <= as_of_day - 1)
        in_region = rng.random(len(cols["family"])) >= p["families"]["outside_region_share"]
        if in_region.sum() >= n_patients:
            break
        n_families *= 2
    # Keep whole families until the region holds n_patients; trim the last family's extra members
    # by moving them outside the region (they remain relatives in the ground truth).
    per_family = np.cumsum(np.bincount(cols["family"], weights=in_region, minlength=n_families))
    keep = cols["family"] <= np.searchsorted(per_family, n_patients)
    cols = _subset(cols, keep)
    in_region = in_region[keep]
    in_region &= np.cumsum(in_region) <= n_patients
    cols["in_region"] = in_region
    pop = Population(as_of=as_of_day, cols=cols)
    rng = np.random.default_rng([seed, 2])
    n = pop.n
    # Pseudonymous ids: a random permutation of 7-digit numbers below 9,000,000 (P9xxxxxx never used).
    pop["pid"] = 1_000_000 + rng.choice(8_000_000, size=n, replace=False)
    pop["prs_z"] = rng.standard_normal(n)
    pop["ldl_e"] = rng.standard_normal(n)
    _genotype(np.random.default_rng([seed, 3]), pop, p)
    _episodes(np.random.default_rng([seed, 4]), pop, p)
    _chd(np.random.default_rng([seed, 5]), pop, p)
    _demography(np.random.default_rng([seed, 6]), pop, p)
    o = p["other_lipids"]
    rng = np.random.default_rng([seed, 7])
    hdl_mean = np.where(pop["male"], o["hdl_mean"]["M"], o["hdl_mean"]["F"])
    pop["hdl"] = np.clip(hdl_mean + o["hdl_sd"] * rng.standard_normal(n), 0.5, 3.5)
    tg_med = o["tg_median"] * np.where(rng.random(n) < o["high_tg_share"], o["high_tg_factor"], 1.0)
    tg = tg_med * np.exp(o["tg_sdlog"] * rng.standard_normal(n))
    fh_tg = np.clip(o["fh_tg"][0] + o["fh_tg"][1] * rng.standard_normal(n), 0.3, None)
    pop["tg"] = np.where(pop["alleles"] > 0, fh_tg, tg)
    pop["ldl_now"] = untreated_ldl(pop, np.arange(n), as_of_day, p)
    return pop
