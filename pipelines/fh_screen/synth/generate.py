"""``generate``: a synthetic region written as one full delivery plus optional nightly increments.

Layout under ``out``::

    extracts/<as_of>/<table>.csv|.parquet     full history (all eight contract tables)
    extracts/<as_of + k>/...                  night k: patients (full, with new deaths),
                                              lab_results (new results + corrections and
                                              cancellations of earlier result_ids) and
                                              clinic_outcomes (new outcomes only)
    registers/<as_of>/...                     with ``layout``: the same region as register
                                              extracts (``synth/registers.py``)
    ground_truth/truth.parquet                one row per person, region and relatives outside
    ground_truth/injected_faults.csv          deliberately bad rows
    ground_truth/nightly_changes.csv          what each increment changed, and why
    synth_summary.json                        sanity figures next to the published targets

Decisions:
    * Later deliveries carry ``patients`` in full (the contract requires it per delivery; a
      full table is what most regional extracts give and makes deaths visible) and only the
      new or changed rows of ``lab_results`` and ``clinic_outcomes``. Other tables are not
      re-delivered on later nights.
    * New results on later nights are sampled the day before the delivery date; ~15% of them
      go to relatives (in the region) of confirmed cases, so cascade follow-up can close.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from fh_screen.errors import UserError
from fh_screen.store.files import ensure_dir, write_bytes, write_text
from fh_screen.synth import care, labs, registers, tables
from fh_screen.synth.faults import inject
from fh_screen.synth.params import load_params
from fh_screen.synth.population import EPOCH, GENES, VARIANT_CLASS, YEAR, Population, build_population, untreated_ldl
from fh_screen.synth.summary import summarise
from fh_screen.synth.writer import write_table

TABLES = ["patients", "lab_results", "medications", "diagnoses", "relations", "family_history", "clinic_outcomes", "contacts"]


def _rng(seed: int, part: int) -> np.random.Generator:
    return np.random.default_rng([seed, 100 + part])


def _check(n_patients: int, fmt: str, dialect: str, nights: int, layout: str | None = None) -> None:
    if n_patients < 1:
        raise UserError("--patients must be at least 1")
    if fmt not in ("csv", "parquet"):
        raise UserError(f"unknown format {fmt!r}: use csv or parquet")
    if dialect not in ("plain", "danish"):
        raise UserError(f"unknown dialect {dialect!r}: use plain or danish")
    if nights < 1:
        raise UserError("--nights must be at least 1")
    if layout is not None and layout not in registers.LAYOUTS:
        raise UserError(f"unknown register layout {layout!r}: use {' or '.join(registers.LAYOUTS)}")
    if layout is not None and nights != 1:
        raise UserError("--layout writes one full register extract: use --nights 1")


def generate(out: Path, n_patients: int, seed: int, as_of: date, fmt: str = "csv", dialect: str = "plain",
             nights: int = 1, params_file: Path | None = None, layout: str | None = None) -> dict:
    """Write a synthetic region under ``out`` and return a summary (see ``generate_region``)."""
    return generate_region(out, n_patients, seed, as_of, fmt, dialect, nights, params_file, layout)[0]


@dataclass
class Region:
    """The generated region in memory, for the pilot simulator to play forward
    (``fh_screen.synth.simulate``): the people with their true state, the parameters, the
    practice codes, the delivered lab rows (for result numbering) and the family links."""

    pop: Population
    params: dict
    codes: list[str]
    lab_frame: pl.DataFrame
    links: pl.DataFrame
    death: np.ndarray


def generate_region(out: Path, n_patients: int, seed: int, as_of: date, fmt: str = "csv", dialect: str = "plain",
                    nights: int = 1, params_file: Path | None = None,
                    layout: str | None = None) -> tuple[dict, Region]:
    """Write a synthetic region under ``out``; return its summary and the region in memory.

    Args:
        out: folder to create (extracts/, ground_truth/, synth_summary.json).
        n_patients: residents in the region (the ``patients`` table); relatives outside the
            region are generated too and appear only in ``relations`` and the ground truth.
        seed: random seed; the same arguments give byte-identical files.
        as_of: date of the full delivery; night k is delivered on ``as_of + k`` days.
        fmt: ``csv`` or ``parquet``.
        dialect: ``plain`` (UTF-8, ',') or ``danish`` (CP1252, ';', decimal comma); CSV only.
        nights: number of deliveries (1 = the full history only).
        params_file: YAML overriding keys of ``synth/params.yaml``.
        layout: ``dst`` or ``sds`` to write the same region as register extracts too
            (``registers/<as_of>/``, see ``synth/registers.py``); None = contract only.

    Returns:
        The summary: ``extract_dirs`` (first = full history), ``ground_truth`` (folder), ``summary_file``,
        ``seconds`` and the sanity figures of ``synth_summary.json``.
    """
    _check(n_patients, fmt, dialect, nights, layout)
    started = time.perf_counter()
    p, cited = load_params(params_file)
    out = Path(out)
    world = _simulate(seed, n_patients, as_of, p)
    pop, full = world.pop, world.full
    extract_dirs = [_write_delivery(out, as_of, full, fmt, dialect)]
    register_dir = registers.write_registers(out, layout, pop, full, as_of, p, seed) if layout else None
    changes = []
    death = pop["death"].copy()
    last_seq = int(world.lab_frame["seq"].max() or 0)
    for night in range(1, nights):
        delivery, change, last_seq = _increment(seed, night, pop, p, world.codes, world.lab_frame, world.links, death,
                                                last_seq)
        changes.append(change)
        extract_dirs.append(_write_delivery(out, as_of + timedelta(days=night), delivery, fmt, dialect))
    truth_dir, truth = _write_truth(out, pop, p, world, death, changes)
    summary = summarise(pop, p, cited, full, world.lab_frame, truth, world.faults, extract_dirs, n_patients, seed,
                        as_of, fmt, dialect)
    write_text(out / "synth_summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    summary.update({
        "extract_dirs": [str(d) for d in extract_dirs],
        "ground_truth": str(truth_dir),
        "summary_file": str(out / "synth_summary.json"),
        "register_dir": str(register_dir) if register_dir else None,
        "seconds": round(time.perf_counter() - started, 2),
    })
    return summary, Region(pop, p, world.codes, world.lab_frame, world.links, death)


class _World(NamedTuple):
    """The simulated region before anything is written: people, their full delivery, and
    what the nightly increments and the ground truth build on."""

    pop: Population
    codes: list[str]
    lab_frame: pl.DataFrame
    links: pl.DataFrame
    faults: pl.DataFrame
    fh_truth: pl.DataFrame
    full: dict[str, pl.DataFrame]


def _simulate(seed: int, n_patients: int, as_of: date, p: dict) -> _World:
    """People, care and lab history up to ``as_of``; each part draws from its own stream."""
    pop = build_population(seed, n_patients, as_of, p)
    codes = tables.geography(_rng(seed, 1), pop, p)
    care.diagnose_existing(_rng(seed, 2), pop, p)
    base_idx, base_day = care.base_tests(_rng(seed, 3), pop, p)
    first_test = np.full(pop.n, care.NEVER)
    np.minimum.at(first_test, base_idx, base_day)
    outcomes = care.referrals(_rng(seed, 4), pop, p, first_test < care.NEVER, first_test)
    care.treatment(_rng(seed, 5), pop, p)
    fu_idx, fu_day = care.follow_up_tests(_rng(seed, 6), pop, p)
    pop["panels"] = np.bincount(np.concatenate([base_idx, fu_idx]), minlength=pop.n)
    rows = labs.sample_events(_rng(seed, 7), pop, np.concatenate([base_idx, fu_idx]), np.concatenate([base_day, fu_day]), p)
    lab_frame = labs.frame(_rng(seed, 8), pop, rows, 1, p)
    as_of_dt = datetime(as_of.year, as_of.month, as_of.day)
    rendered = labs.render(lab_frame, codes, p["measurement"]["local_code_prefix"])
    lab_table, faults = inject(_rng(seed, 9), rendered, p["faults"]["dirty_fraction"], as_of_dt)
    links = tables.first_degree(pop)
    fh_recorded, fh_truth = tables.family_history(_rng(seed, 10), pop, links, p)
    full = {
        "patients": tables.patients(pop, codes),
        "lab_results": lab_table,
        "medications": tables.medications(_rng(seed, 11), pop, p),
        "diagnoses": tables.diagnoses(_rng(seed, 12), pop, p),
        "relations": tables.relations(_rng(seed, 13), pop, links, p),
        "family_history": fh_recorded,
        "clinic_outcomes": tables.clinic_outcomes(pop, outcomes),
        "contacts": tables.contacts(_rng(seed, 14), pop, p),
    }
    return _World(pop, codes, lab_frame, links, faults, fh_truth, full)


def _write_truth(out: Path, pop: Population, p: dict, world: _World, death: np.ndarray,
                 changes: list[pl.DataFrame]) -> tuple[Path, pl.DataFrame]:
    """ground_truth/: truth.parquet, injected_faults.csv and nightly_changes.csv."""
    truth_dir = ensure_dir(out / "ground_truth")
    truth = _truth(pop, p, world.fh_truth, death)
    write_bytes(truth_dir / "truth.parquet", _parquet_bytes(truth))
    write_text(truth_dir / "injected_faults.csv", world.faults.write_csv())
    nightly = pl.concat(changes) if changes else pl.DataFrame(schema={"delivery": pl.String, "patient_id": pl.String, "change": pl.String})
    write_text(truth_dir / "nightly_changes.csv", nightly.write_csv())
    return truth_dir, truth


def _parquet_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd")
    return buf.getvalue()


def _write_delivery(out: Path, day: date, frames: dict[str, pl.DataFrame], fmt: str, dialect: str) -> Path:
    folder = ensure_dir(out / "extracts" / day.isoformat())
    for name in TABLES:
        if name in frames:
            write_table(frames[name], folder, name, fmt, dialect)
    return folder


def _increment(seed: int, night: int, pop: Population, p: dict, codes: list[str], lab_frame: pl.DataFrame,
               links: pl.DataFrame, death: np.ndarray, last_seq: int) -> tuple[dict, pl.DataFrame, int]:
    """Night ``night``: new deaths, new results (some for relatives of confirmed cases),
    corrections/cancellations of earlier results and a few new clinic outcomes."""
    rng = _rng(seed, 1000 + night)
    q = p["nights"]
    day = pop.as_of + night - 1  # sampled the day before the delivery
    n_region = int(pop["in_region"].sum())
    alive = pop["in_region"] & (death == care.NEVER) & (pop["moved"] == care.NEVER)
    dies = alive & (rng.random(pop.n) < q["deaths_per_night"])
    death[dies] = day
    alive &= ~dies
    cascade, other, new = _night_results(rng, pop, p, links, alive, n_region, day, last_seq)
    fixes, cancel = _night_fixes(rng, lab_frame, max(2, round(q["corrections_per_night"] * n_region)))
    lab_rows = labs.render(pl.concat([fixes, new]).sort("seq"), codes, p["measurement"]["local_code_prefix"])
    who, clinic = _night_outcomes(rng, pop, p, alive, max(1, round(q["new_outcomes_per_night"] * n_region)), day)
    delivery = {"patients": tables.patients(pop, codes, death), "lab_results": lab_rows, "clinic_outcomes": clinic}
    pid = pl.Series(pop["pid"])
    label = (EPOCH + timedelta(days=pop.as_of + night)).isoformat()
    change = pl.concat([
        pl.DataFrame({"pidn": pid.gather(pl.Series(cascade.astype(np.int64))), "change": "new_result_relative_of_confirmed_case"}),
        pl.DataFrame({"pidn": pid.gather(pl.Series(other.astype(np.int64))), "change": "new_result"}),
        pl.DataFrame({"pidn": fixes["pidn"], "change": pl.Series(np.where(cancel, "cancelled_result", "corrected_result"))}),
        pl.DataFrame({"pidn": pid.gather(pl.Series(who.astype(np.int64))), "change": "new_clinic_outcome"}),
        pl.DataFrame({"pidn": pid.gather(pl.Series(np.flatnonzero(dies))), "change": "deceased"}),
    ], how="vertical_relaxed").with_columns(
        delivery=pl.lit(label),
        patient_id=tables.pid_expr(),
    ).sort("pidn", "change").select("delivery", "patient_id", "change")
    return delivery, change, int(new["seq"].max() or last_seq)


def _night_results(rng: np.random.Generator, pop: Population, p: dict, links: pl.DataFrame, alive: np.ndarray,
                   n_region: int, day: int, last_seq: int) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """New results of the night: a share for living untested relatives of confirmed cases
    (cascade testing), the rest for anyone alive in the region."""
    q = p["nights"]
    n_new = max(1, round(q["new_results_share"] * n_region))
    confirmed = pop["diagnosed"] | np.isin(pop["outcome"], [0, 1])
    li, lj = links["i"].to_numpy(), links["j"].to_numpy()
    relatives = np.unique(lj[confirmed[li] & alive[lj] & ~confirmed[lj]])
    n_cascade = min(len(relatives), round(q["cascade_share_of_new"] * n_new))
    cascade = rng.choice(relatives, size=n_cascade, replace=False) if n_cascade else np.array([], np.int64)
    others = np.setdiff1d(np.flatnonzero(alive), cascade)
    other = rng.choice(others, size=min(len(others), n_new - n_cascade), replace=False)
    idx = np.sort(np.concatenate([cascade, other]).astype(np.int64))
    rows = labs.sample_events(rng, pop, idx, np.full(len(idx), day, np.int64), p)
    new = labs.frame(rng, pop, rows, last_seq + 1, p).with_columns(status=pl.lit(1, pl.Int8))
    return cascade, other, new


def _night_fixes(rng: np.random.Generator, lab_frame: pl.DataFrame, n_fix: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Corrections and cancellations of earlier final results (every second one cancelled)."""
    final = lab_frame.filter(pl.col("status") <= 1)
    pick = np.sort(rng.choice(final.height, size=min(final.height, n_fix), replace=False))
    fixes = final[pick]
    cancel = np.arange(fixes.height) % 2 == 1
    delta = rng.choice([-3, -2, -1, 1, 2, 3], size=fixes.height) * np.where(fixes["dec"].to_numpy() == 0, 1.0, 0.1)
    fixes = fixes.with_columns(
        val=pl.Series(np.where(cancel, fixes["val"].to_numpy(), np.maximum(fixes["val"].to_numpy() + delta, 0.1))),
        status=pl.Series(np.where(cancel, 3, 2).astype(np.int8)),
    )
    return fixes, cancel


def _night_outcomes(rng: np.random.Generator, pop: Population, p: dict, alive: np.ndarray, n_out: int,
                    day: int) -> tuple[np.ndarray, pl.DataFrame]:
    """New clinic outcomes: pending referrals resolved, then new referrals of very high LDL."""
    pending = np.flatnonzero((pop["outcome"] == care.OUTCOMES.index("pending")) & alive)
    fresh = np.flatnonzero(alive & (pop["outcome"] < 0) & (pop["ldl_now"] >= 6.5) & ~pop["diagnosed"])
    who = np.concatenate([rng.permutation(pending), rng.permutation(fresh)])[:n_out]
    r = p["referral"]
    carrier = pop["alleles"][who] > 0
    resolved = {k: v for k, v in r["outcome_carrier"].items() if k != "pending"}
    resolved_non = {k: v for k, v in r["outcome_noncarrier"].items() if k != "pending"}
    outcome = np.where(carrier, care.choose_outcome(rng, resolved, len(who)), care.choose_outcome(rng, resolved_non, len(who)))
    pop["outcome"][who] = outcome
    gene = np.where(outcome == 0, pop["gene"][who], 0)
    clinic = tables.clinic_outcomes(pop, {"pidx": who, "day": np.full(len(who), day, np.int64), "outcome": outcome, "gene": gene})
    return who, clinic


def _truth(pop: Population, p: dict, fh_truth: pl.DataFrame, death: np.ndarray) -> pl.DataFrame:
    """One row per person with the true state behind the delivery (never read by the pipeline)."""
    idx = np.arange(pop.n)
    age40 = untreated_ldl(pop, idx, pop["birth"] + int(40 * YEAR), p)
    cols = {
        "pidn": pop["pid"], "family_id": pop["family"], "generation": pop["generation"],
        "in_region": pop["in_region"], "sex": np.where(pop["male"], "M", "F"),
        "birth_date": tables.dates(pop["birth"]),
        "fh_carrier": pop["alleles"] > 0,
        "genotype": np.asarray(["none", "het", "hom"])[np.minimum(pop["alleles"], 2)],
        "gene": GENES[pop["gene"]], "variant_class": VARIANT_CLASS[pop["gene"]],
        "prs_z": np.round(pop["prs_z"], 4),
        "polygenic_high": pop["prs_z"] >= p["ldl_nonfh"]["polygenic_high_z"],
        "ldl_untreated_current": np.round(pop["ldl_now"], 3),
        "ldl_untreated_age40": np.round(age40, 3),
        "hdl_usual": np.round(pop["hdl"], 3), "tg_usual": np.round(pop["tg"], 3),
    }
    df = pl.DataFrame(cols).with_columns(**_truth_history(pop, death))
    df = pl.concat([df, fh_truth.rename({c: f"true_{c}" for c in fh_truth.columns})], how="horizontal")
    return df.with_columns(patient_id=tables.pid_expr(),
                           clinic_outcome=pl.when(pl.col("clinic_outcome") != "").then(pl.col("clinic_outcome")),
                           gene=pl.when(pl.col("gene") != "").then(pl.col("gene")),
                           variant_class=pl.when(pl.col("variant_class") != "").then(pl.col("variant_class")),
                           statin_atc=pl.when(pl.col("statin_atc") != "").then(pl.col("statin_atc")),
                           ).sort("pidn").drop("pidn").select("patient_id", pl.exclude("patient_id"))


def _truth_history(pop: Population, death: np.ndarray) -> dict[str, pl.Series]:
    """The truth's columns of what happened to each person: conditions and their onset,
    heart disease, diagnosis, referral, treatment and its true effect, tests, death, moves."""
    as_of, never = pop.as_of, care.NEVER
    panels = pop["panels"]
    d = lambda arr: tables.dates(np.where(arr < never, arr, 0))  # noqa: E731
    has = lambda arr: pl.Series(arr < never)  # noqa: E731
    extra = {}
    for key, name in (("hypo", "hypothyroidism"), ("hyper", "hyperthyroidism"), ("dm", "diabetes"),
                      ("neph", "nephrotic_syndrome"), ("ckd", "chronic_kidney_disease"), ("chol", "cholestasis")):
        extra[name] = has(np.where(pop[f"{key}_on"] < as_of, 0, never))
        extra[f"{name}_onset"] = d(np.where(pop[f"{key}_on"] < as_of, pop[f"{key}_on"], never))
    extra.update({
        "chd_true": has(np.where(pop["chd_day"] < as_of, 0, never)),
        "chd_onset": d(np.where(pop["chd_day"] < as_of, pop["chd_day"], never)),
        "premature_chd_true": pl.Series(pop["chd_premature"] & (pop["chd_day"] < as_of)),
        "fh_diagnosed": pl.Series(pop["diagnosed"]), "fh_diagnosed_on": d(pop["diag_day"]),
        "diagnosed_via_referral": pl.Series(pop["diag_via_referral"]),
        "referred": pl.Series(pop["referred"]),
        "clinic_outcome": pl.Series([""] + care.OUTCOMES).gather(pl.Series(pop["outcome"] + 1)),
        "statin": pl.Series(pop["statin"]), "statin_start": d(pop["statin_start"]),
        "statin_stop": d(pop["statin_stop"]), "statin_atc": pl.Series(pop["statin_drug"]),
        "statin_mg": pl.Series(pop["statin_mg"]),
        "statin_expected_reduction": pl.Series(np.round(pop["statin_expected"], 3)),
        "statin_true_reduction": pl.Series(np.round(pop["statin_response"], 3)),
        "statin_nonresponder": pl.Series(pop["nonresponder"]),
        "ezetimibe_start": d(pop["eze_start"]),
        "ezetimibe_true_reduction": pl.Series(np.round(pop["eze_response"], 3)),
        "lipid_panels_in_window": pl.Series(panels), "ever_tested": pl.Series(panels > 0),
        "deceased_date": d(death), "moved_out_date": d(pop["moved"]),
    })
    return extra
