"""The delivery's tables (contract §1) built from the population and its care history.

Each function returns a polars frame with exactly the contract's columns, rows in a fixed
order, so the written files are byte-identical for the same seed.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fh_screen.synth import names
from fh_screen.synth.care import NEVER, OUTCOMES, observed_end
from fh_screen.synth.population import GENES, YEAR, Population

def window_days(p: dict) -> int:
    """Length of the delivered history in days."""
    return int(p["window"]["history_years"] * YEAR)


def pid_expr(col: str = "pidn") -> pl.Expr:
    """Pseudonymous patient id 'P' + 7 digits from the integer id."""
    return pl.concat_str([pl.lit("P"), pl.col(col).cast(pl.String).str.zfill(7)])


def dates(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype(np.int32)).cast(pl.Date)


def geography(rng, pop: Population, p: dict) -> list[str]:
    """Postcode (town) and GP practice per person; returns the practice codes."""
    d = p["demography"]
    n = pop.n
    weights = np.array([w for _, _, w in names.TOWNS], float)
    cum = np.cumsum(weights / weights.sum())
    draw = lambda size: np.minimum(np.searchsorted(cum, rng.random(size), side="right"), len(cum) - 1)  # noqa: E731
    fam_town = draw(pop["family"].max() + 1)[pop["family"]]
    town = np.where(rng.random(n) < d["same_postcode_as_family"], fam_town, draw(n))
    n_region = int(pop["in_region"].sum())
    n_practices = max(len(names.TOWNS), round(n_region / d["patients_per_practice"]))
    practice_town = np.sort(np.concatenate([np.arange(len(names.TOWNS)), draw(n_practices - len(names.TOWNS))]))
    count = np.bincount(practice_town, minlength=len(names.TOWNS))
    offset = np.concatenate([[0], np.cumsum(count)[:-1]])
    practice = offset[town] + (rng.random(n) * count[town]).astype(np.int64)
    practice = np.where(rng.random(n) < d["no_gp_share"], -1, practice)
    codes = 1_000 + rng.choice(999_000, size=n_practices, replace=False)
    pop["town"], pop["practice"] = town, practice
    return [f"{c:06d}" for c in codes]


def practice_column(practice: np.ndarray, codes: list[str]) -> pl.Series:
    """Practice code per person; null where the person has no GP (index -1)."""
    lookup = pl.Series("practice_id", codes, dtype=pl.String)
    values = lookup.gather(pl.Series(np.maximum(practice, 0)))
    return pl.select(pl.when(pl.Series(practice >= 0)).then(values)).to_series().alias("practice_id")


def patients(pop: Population, codes: list[str], death: np.ndarray | None = None) -> pl.DataFrame:
    """The region's residents (and former residents who died or moved out in the window)."""
    region = np.flatnonzero(pop["in_region"])
    death = pop["death"] if death is None else death
    towns = pl.Series([t[0] for t in names.TOWNS])
    df = pl.DataFrame({
        "pidn": pop["pid"][region],
        "birth_date": dates(pop["birth"][region]),
        "sex": pop["reported_sex"][region],
        "practice_id": practice_column(pop["practice"][region], codes),
        "postcode": towns.gather(pl.Series(pop["town"][region])),
        "deceased_date": dates(np.where(death[region] < NEVER, death[region], 0)),
        "moved_out_date": dates(np.where(pop["moved"][region] < NEVER, pop["moved"][region], 0)),
        "_dead": death[region] < NEVER,
        "_moved": pop["moved"][region] < NEVER,
    })
    return df.with_columns(
        patient_id=pid_expr(),
        deceased_date=pl.when(pl.col("_dead")).then(pl.col("deceased_date")),
        moved_out_date=pl.when(pl.col("_moved")).then(pl.col("moved_out_date")),
    ).sort("pidn").select("patient_id", "birth_date", "sex", "practice_id", "postcode", "deceased_date", "moved_out_date")


def medications(rng, pop: Population, p: dict) -> pl.DataFrame:
    """Statin and ezetimibe dispensings within the history window."""
    interval = p["treatment"]["dispensing_interval_days"]
    window_start = pop.as_of - window_days(p)
    end = observed_end(pop)
    frames = []
    for kind in ("statin", "eze"):
        start = pop["statin_start"] if kind == "statin" else pop["eze_start"]
        stop = np.minimum(pop["statin_stop"], end)
        ok = pop["in_region"] & (start < stop)
        first = np.where(start >= window_start, start, start + ((window_start - start) // interval + 1) * interval)
        k = np.where(ok & (first < stop), (stop - 1 - first) // interval + 1, 0)
        idx = np.repeat(np.arange(pop.n), k)
        step = np.arange(len(idx)) - np.repeat(np.cumsum(k) - k, k)
        day = first[idx] + step * interval + (rng.integers(-7, 8, len(idx)) * (step > 0))
        day = np.minimum(day, end[idx] - 1)
        if kind == "statin":
            atc, mg = pop["statin_drug"][idx], pop["statin_mg"][idx]
        else:
            atc, mg = np.full(len(idx), "C10AX09"), np.full(len(idx), 10.0)
        frames.append(pl.DataFrame({"pidn": pop["pid"][idx], "atc_code": atc, "dispensed_on": dates(day), "strength_mg": mg}))
    return (pl.concat(frames).with_columns(patient_id=pid_expr()).sort("pidn", "dispensed_on", "atc_code")
            .select("patient_id", "atc_code", "dispensed_on", "strength_mg"))


def diagnoses(rng, pop: Population, p: dict) -> pl.DataFrame:
    """CHD, FH and secondary-cause diagnoses in WHO (I21.9) and Danish SKS (DI219) spellings."""
    n, as_of = pop.n, pop.as_of
    end = observed_end(pop)
    region = pop["in_region"]
    sks = rng.random(n) < p["chd"]["icd_sks_share"]
    rows = []

    def add(mask: np.ndarray, day: np.ndarray, who: np.ndarray, dk: np.ndarray) -> None:
        mask = mask & region & (day <= end) & (day > pop["birth"])
        idx = np.flatnonzero(mask)
        rows.append(pl.DataFrame({"pidn": pop["pid"][idx], "icd10_code": np.where(sks[idx], dk[idx], who[idx]), "diagnosed_on": dates(day[idx])}))

    const = lambda text: np.full(n, text)  # noqa: E731
    mi = rng.random(n) < 0.6
    add(pop["chd_day"] < as_of, pop["chd_day"], np.where(mi, "I21.9", "I25.1"), np.where(mi, "DI219", "DI251"))
    fh_pick = rng.random(n)
    who_fh = np.where(fh_pick < 0.1, "E78.01", "E78.0")
    add(pop["diagnosed"], pop["diag_day"], who_fh, const("DE780B"))
    seen = pop["ldl_now"] >= 6.0
    e780 = seen & (pop["alleles"] == 0) & (rng.random(n) < p["diagnosis"]["e780_nonfh_share_ldl6"])
    e780_day = (as_of - rng.random(n) * window_days(p)).astype(np.int64)
    add(e780, e780_day, const("E78.0"), const("DE780"))
    recorded = p["secondary_causes"]["diagnosis_recorded_share"]
    for key, who, dk in (("hypo", "E03.9", "DE039"), ("hyper", "E05.9", "DE059"), ("dm", "E11.9", "DE119"),
                         ("neph", "N04.9", "DN049"), ("ckd", "N18.3", "DN183"), ("chol", "K83.1", "DK831")):
        on = pop[f"{key}_on"]
        day = on + (rng.random(n) * 60).astype(np.int64)
        add((on < as_of) & (rng.random(n) < recorded), day, const(who), const(dk))
    return (pl.concat(rows).with_columns(patient_id=pid_expr()).sort("pidn", "diagnosed_on", "icd10_code")
            .select("patient_id", "icd10_code", "diagnosed_on"))


def first_degree(pop: Population) -> pl.DataFrame:
    """All first-degree links (i, j, relationship of j to i) among all persons, both directions."""
    child = np.concatenate([np.flatnonzero(pop["father"] >= 0), np.flatnonzero(pop["mother"] >= 0)])
    parent = np.concatenate([pop["father"][pop["father"] >= 0], pop["mother"][pop["mother"] >= 0]])
    pc = pl.DataFrame({"i": child, "j": parent, "relationship": "parent"})
    cp = pl.DataFrame({"i": parent, "j": child, "relationship": "child"})
    # Siblings share both parents; an unknown parent (-1) matches an unknown parent, as in
    # a civil register where only one parent is registered.
    kids = (pl.DataFrame({"i": np.arange(pop.n), "f": pop["father"], "m": pop["mother"]})
            .filter((pl.col("f") >= 0) | (pl.col("m") >= 0)))
    sib = (kids.join(kids, on=["f", "m"], suffix="_r").filter(pl.col("i") != pl.col("i_r"))
           .select(pl.col("i"), pl.col("i_r").alias("j"), pl.lit("sibling").alias("relationship")))
    return pl.concat([pc, cp, sib]).sort("i", "j")


def relations(rng, pop: Population, links: pl.DataFrame, p: dict) -> pl.DataFrame:
    """Civil-register links covering part of the families; relatives may live outside the region."""
    coverage = p["families"]["register_link_coverage"]
    lo = np.minimum(links["i"].to_numpy(), links["j"].to_numpy())
    hi = np.maximum(links["i"].to_numpy(), links["j"].to_numpy())
    u = rng.random(pop.n)
    # One decision per unordered pair (both directions kept together, as a register gives them).
    pair_u = (u[lo] * 7919 + u[hi] * 104729) % 1.0
    keep = (pair_u < coverage) & pop["in_region"][links["i"].to_numpy()]
    kept = links.filter(pl.Series(keep))
    pid = pl.Series(pop["pid"])
    return (kept.with_columns(pidn=pid.gather(kept["i"]), ridn=pid.gather(kept["j"]))
            .with_columns(patient_id=pid_expr("pidn"), relative_id=pid_expr("ridn"))
            .sort("pidn", "ridn").select("patient_id", "relative_id", "relationship"))


def family_history(rng, pop: Population, links: pl.DataFrame, p: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    """True family-history items per person and the few that a GP recorded.

    Returns ``(recorded, truth)``; truth has one boolean column per item.
    """
    f = p["family_history"]
    n, as_of = pop.n, pop.as_of
    idx = np.arange(n)
    age = pop.age_at(idx, as_of)
    rel = links["j"].to_numpy()
    facts = pl.DataFrame({
        "i": links["i"],
        "pchd": pop["chd_premature"][rel] & (pop["chd_day"][rel] < as_of),
        "fh": pop["diagnosed"][rel] & (pop["diag_day"][rel] < as_of),
        "hi_adult": (age[rel] >= 18) & (pop["ldl_now"][rel] >= f["high_ldl_relative_threshold"]),
        "hi_child": (age[rel] < 18) & (pop["ldl_now"][rel] >= f["high_ldl_child_threshold"]),
    }).group_by("i").agg(pl.all().any()).sort("i")
    truth = pl.DataFrame({"i": idx}).join(facts, on="i", how="left").fill_null(False).sort("i")
    carrier = pop["alleles"] > 0
    xan = rng.random(n) < np.where(carrier & (age >= 18), f["xanthoma_true"]["fh_adult"], f["xanthoma_true"]["nonfh"])
    arcus = rng.random(n) < np.where(carrier, f["arcus_true"]["fh"], f["arcus_true"]["nonfh"])
    items = {
        "premature_chd_first_degree": truth["pchd"].to_numpy(),
        "fh_first_degree": truth["fh"].to_numpy(),
        "high_ldl_first_degree_adult": truth["hi_adult"].to_numpy(),
        "high_ldl_child_relative": truth["hi_child"].to_numpy(),
        "tendon_xanthoma": xan,
        "arcus_before_45": arcus & (age >= 18),
        "premature_chd_self": pop["chd_premature"] & (pop["chd_day"] < as_of),
    }
    window_start = as_of - window_days(p)
    end = observed_end(pop)
    rows = []
    for item, true in items.items():
        share = f["xanthoma_recorded"] if item in ("tendon_xanthoma", "arcus_before_45") else f["recorded_given_true"]
        rec = np.flatnonzero(true & pop["in_region"] & (rng.random(n) < share) & (end > window_start))
        day = window_start + (rng.random(len(rec)) * (end[rec] - window_start)).astype(np.int64)
        rows.append(pl.DataFrame({"pidn": pop["pid"][rec], "item": np.full(len(rec), item), "recorded_on": dates(day)}))
    recorded = (pl.concat(rows).with_columns(patient_id=pid_expr()).sort("pidn", "item")
                .select("patient_id", "item", "recorded_on"))
    return recorded, pl.DataFrame({k: v for k, v in items.items()})


def clinic_outcomes(pop: Population, out: dict[str, np.ndarray]) -> pl.DataFrame:
    genes = pl.Series(list(GENES))
    return (pl.DataFrame({
        "pidn": pop["pid"][out["pidx"]],
        "outcome_date": dates(out["day"]),
        "outcome": pl.Series(OUTCOMES).gather(pl.Series(out["outcome"])),
        "gene": genes.gather(pl.Series(out["gene"].astype(np.int64))),
    }).with_columns(patient_id=pid_expr(), gene=pl.when(pl.col("gene") != "").then(pl.col("gene")))
      .sort("pidn", "outcome_date", "outcome").select("patient_id", "outcome_date", "outcome", "gene"))


def contacts(rng, pop: Population, p: dict) -> pl.DataFrame:
    """Name, address and letter language for residents (a few without an address on file)."""
    d = p["demography"]
    n = pop.n
    pick = lambda seq, size: (rng.random(size) * len(seq)).astype(np.int64)  # noqa: E731
    word = lambda seq, index: pl.Series(list(seq), dtype=pl.String).gather(pl.Series(index))  # noqa: E731
    # Blood relatives share the family surname; in-married partners keep their own.
    surname = np.where(pop["founder"] & (pop["generation"] == 2), pick(names.SURNAMES, n),
                       pick(names.SURNAMES, pop["family"].max() + 1)[pop["family"]])
    english = rng.random(n) < d["english_share"]
    english_surname = english & (rng.random(n) < 0.5)
    first_m, first_f, first_en = pick(names.FIRST_M, n), pick(names.FIRST_F, n), pick(names.FIRST_EN, n)
    surname_en = pick(names.SURNAMES_EN, n)
    street, number, floor = pick(names.STREETS, n), rng.integers(1, 120, n), pick(names.FLOORS, n)
    keep = pop["in_region"] & (rng.random(n) >= d["contact_missing_share"])
    idx = np.flatnonzero(keep)
    tricky = np.zeros(n, bool)
    tricky[rng.choice(idx, size=min(len(idx), max(len(names.TRICKY), len(idx) // 2000)), replace=False)] = True
    tricky_name = pick(names.TRICKY, n)
    df = pl.DataFrame({
        "pidn": pop["pid"][idx],
        "first": pl.select(pl.when(pl.Series(english[idx])).then(word(names.FIRST_EN, first_en[idx]))
                           .when(pl.Series(pop["male"][idx])).then(word(names.FIRST_M, first_m[idx]))
                           .otherwise(word(names.FIRST_F, first_f[idx]))).to_series(),
        "surname": pl.select(pl.when(pl.Series(english_surname[idx])).then(word(names.SURNAMES_EN, surname_en[idx]))
                             .otherwise(word(names.SURNAMES, surname[idx]))).to_series(),
        "tricky": tricky[idx], "tricky_name": word(names.TRICKY, tricky_name[idx]),
        "street": word(names.STREETS, street[idx]), "number": number[idx], "floor": word(names.FLOORS, floor[idx]),
        "postcode": word([t[0] for t in names.TOWNS], pop["town"][idx]),
        "city": word([t[1] for t in names.TOWNS], pop["town"][idx]),
        "english": english[idx],
    })
    return df.with_columns(
        patient_id=pid_expr(),
        full_name=pl.when(pl.col("tricky")).then(pl.col("tricky_name")).otherwise(pl.concat_str(["first", "surname"], separator=" ")),
        address=pl.concat_str([pl.col("street"), pl.lit(" "), pl.col("number").cast(pl.String), pl.col("floor")]),
        language=pl.when(pl.col("english")).then(pl.lit("en")).otherwise(pl.lit("da")),
    ).sort("pidn").select("patient_id", "full_name", "address", "postcode", "city", "language")
