"""Training and validating on many synthetic worlds (``fhscreen train --worlds``).

Three disjoint sets of worlds (``training.worlds``), each generated from its own seeds:
* **training worlds**: every scorer is fitted on their pooled labels (what a region has:
  clinic-confirmed and FH-coded people against everyone else), and the slope of the mapping
  from score to probability is fitted on their ground truth, among the not-yet-known people,
  with one intercept per world (the intercept is the region's, set at run time);
* **selection worlds**: the one decision, which scorer is production: the one whose worst
  world is best (carriers found at K = 100 against the best rule), because a region is not
  the average world;
* **external worlds**: never used for a decision; every figure of the validation table, and
  the observed rate of each probability band shown on the worklists;
* **outcome world** (``fhscreen evaluate`` only): one larger world where the lipid clinics
  assess enough listed patients for the outcome recalibration to be used
  (``outcome_recalibration``), so that its effect on calibration is measured.

On every selection and external world the probability is computed exactly as the nightly
score step computes it (``stages.score.step.region_scorer``): from the world's own data, its
configured prevalence and its known cases, without its truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression

from fh_screen.config import Settings
from fh_screen.reference import bands
from fh_screen.stages.score import artefact, spec, step
from fh_screen.stages.score.outcomes import assessed_referrals
from fh_screen.stages.score import calibration
from fh_screen.stages.score.calibration import logit
from fh_screen.store import db, files
from fh_screen.training import famcat, labels, train, validation, worlds

PLAN = {"train": (10, 15_000), "select": (3, 25_000), "external": (5, 70_000)}
# One world large enough that the clinic order holds MIN_EVENTS carriers and MIN_NON_EVENTS others.
OUTCOME_PLAN = {"outcomes": (1, 200_000)}
SEED_BASE = {"train": 1000, "select": 2000, "external": 4000, "outcomes": 5000}
SCORERS = ("fh_gbm", "fh_baseline", train.COMPARISON)
LABELS = {"fh_gbm": "fh_gbm (boosted)", "fh_baseline": "fh_baseline (logistic)", train.COMPARISON: famcat.NAME}
SELECTION_K = 100
RULE_ORDERS = {"highest LDL-C": "top-K by highest LDL-C", "DLCN >= 6": "DLCN points (>= 6 first)",
               "lab flag": "lab flag (then LDL-C)"}


def plan_worlds(root: Path, plan: dict) -> dict[str, list[worlds.World]]:
    """The worlds of each role (not yet built: ``fh_screen.app.evaluate.build``)."""
    return {role: [worlds.world(root, role, SEED_BASE[role] + i, size) for i in range(count)]
            for role, (count, size) in plan.items()}


def pooled_table(ws: list[worlds.World]) -> pl.DataFrame:
    parts = []
    for i, w in enumerate(ws):
        t = train.training_table(w.db, worlds.AS_OF, truth=w.truth)
        parts.append(t.with_columns(pl.col("fh_carrier").fill_null(0), pl.lit(i, pl.Int32).alias("world_index")))
    return pl.concat(parts, how="diagonal_relaxed")


def mapping_slope(score: np.ndarray, carrier: np.ndarray, world: np.ndarray) -> tuple[float, float]:
    """(slope, mean world intercept) of logit P(carrier) = a_world + b * logit(score)."""
    levels = np.unique(world)
    X = np.column_stack([(world == w).astype(float) for w in levels] + [logit(score)])
    fit = LogisticRegression(C=np.inf, fit_intercept=False, max_iter=1000).fit(X, carrier)  # unpenalised
    return float(fit.coef_[0, -1]), float(fit.coef_[0, :-1].mean())


def fit_scorer(table: pl.DataFrame, name: str, seed: int):
    estimator, meta = train.fit(table, name, seed)
    X = spec.matrix(table, meta["feature_schema"])
    s = table["labelled"].to_numpy().astype(int)
    unknown = s == 0
    held_out = estimator.held_out_score(X, s)
    slope, intercept = mapping_slope(held_out[unknown], table["fh_carrier"].to_numpy()[unknown],
                                     table["world_index"].to_numpy()[unknown])
    estimator.intercept_, estimator.slope_ = intercept, slope
    meta["mapping"] = {"intercept": intercept, "slope": slope,
                       "fitted_on": "training worlds' ground truth, not-yet-known people, one intercept per world"}
    return estimator, meta


def world_pool(w: worlds.World, scorers: dict) -> tuple[pl.DataFrame, dict]:
    """Everyone a worklist could list in world ``w`` (scored, not excluded), with truth, the
    rule keys and each scorer's probability (``p_<name>``) as the score step would compute it
    there; and each scorer's calibration record."""
    con = db.connect(w.db, read_only=True)
    try:
        features = con.execute("SELECT * FROM patient_features").pl()
        outcomes = assessed_referrals(con)
        rules = con.execute("SELECT * FROM rule_results WHERE excluded_reason IS NULL").pl()
    finally:
        con.close()
    people = spec.eligible(features)
    pool = rules.join(people.select("patient_id"), on="patient_id", how="semi")
    records = {}
    for name, (estimator, meta) in scorers.items():
        _, record, p, _ = step.region_scorer(estimator, features, outcomes, meta, w.prevalence)
        pool = pool.join(pl.DataFrame({"patient_id": people["patient_id"], f"p_{name}": p}), on="patient_id",
                         how="left")
        records[name] = record.record()
    pool = pool.join(labels.truth_labels(w.truth), on="patient_id", how="left").with_columns(
        pl.col("fh_carrier").fill_null(0))
    return pool, records


def figures_for(pool: pl.DataFrame, name: str, threshold: float) -> dict:
    scored = pool.with_columns(pl.col(f"p_{name}").alias("probability"))
    orders = validation.rankings(scored)
    rule_orders = {label: orders[key] for label, key in RULE_ORDERS.items()}
    return validation.world_figures(pool, f"p_{name}", rule_orders, validation.clinic_order(scored, threshold),
                                    threshold)


def validate(ws: list[worlds.World], scorers: dict, threshold: float) -> tuple[list[dict], dict]:
    """Per world and scorer: the validation figures; and the production scorer's (p, y)
    pooled over the worlds (for the band rates)."""
    rows, pooled = [], {name: ([], []) for name in scorers}
    for w in ws:
        pool, records = world_pool(w, scorers)
        for name in scorers:
            fig = figures_for(pool, name, threshold)
            rows.append({"world": w.name, "scorer": name, "prevalence": round(w.prevalence, 6),
                         "local_codes": bool(w.overrides["measurement"]["local_code_prefix"]),
                         "calibration": records[name]["method"], **fig, "targets": validation.meets_targets(fig)})
            pooled[name][0].append(pool[f"p_{name}"].to_numpy())
            pooled[name][1].append(pool["fh_carrier"].to_numpy())
    return rows, {n: (np.concatenate(p), np.concatenate(y)) for n, (p, y) in pooled.items()}


def choose(rows: list[dict]) -> dict:
    """Production scorer: best worst-world ratio at ``SELECTION_K``, then best mean AUC."""
    score = {}
    for name in ("fh_gbm", "fh_baseline"):
        mine = [r for r in rows if r["scorer"] == name]
        score[name] = (min(r["ratio"][SELECTION_K] or 0 for r in mine),
                       float(np.mean([r["auc"] or 0.0 for r in mine])))  # a world without carriers counts 0
    best = max(score, key=lambda n: score[n])
    return {"production": best, "criterion": f"worst selection world's carriers at K={SELECTION_K} / best rule, "
            "then mean AUC", "scores": {n: {"worst_ratio": s[0], "mean_auc": round(s[1], 3)} for n, s in score.items()}}


def default_mapping_figures(ws: list[worlds.World], scorers: dict, name: str) -> dict:
    """Calibration before (the artefact's own mapping) and after (region calibration) on the
    selection worlds, against their truth."""
    estimator, meta = scorers[name]
    before, after, ys = [], [], []
    for w in ws:
        pool, _ = world_pool(w, {name: scorers[name]})
        con = db.connect(w.db, read_only=True)
        try:
            features = spec.eligible(con.execute("SELECT * FROM patient_features").pl())
        finally:
            con.close()
        rows = features.join(pool.select("patient_id"), on="patient_id", how="semi").join(
            pool.select("patient_id", "fh_carrier", f"p_{name}"), on="patient_id")
        before.append(estimator.predict_proba(spec.matrix(rows, meta["feature_schema"]))[:, 1])
        after.append(rows[f"p_{name}"].to_numpy())
        ys.append(rows["fh_carrier"].to_numpy().astype(float))
    return train.calibration_report(np.concatenate(before), np.concatenate(after), np.concatenate(ys),
                                    "selection worlds' ground truth")


def fit_and_validate(out: Path, groups: dict[str, list[worlds.World]], plan: dict, models_dir: Path,
                     settings: Settings, seed: int = 7) -> dict:
    """On built worlds: fit every scorer, choose, validate externally, save the artefacts."""
    table = pooled_table(groups["train"])
    scorers = {name: fit_scorer(table, name, seed) for name in SCORERS}
    threshold = settings.selection.min_probability
    selection_rows, _ = validate(groups["select"], scorers, threshold)
    decision = choose(selection_rows)
    production = decision["production"]
    before_after = default_mapping_figures(groups["select"], scorers, production)
    external_rows, pooled = validate(groups["external"], scorers, threshold)
    band_rates = bands.observed_rates(*pooled[production])
    provenance = {"plan": {r: list(v) for r, v in plan.items()},
                  "worlds": {r: [w.name for w in ws] for r, ws in groups.items()}}
    saved = {}
    for name, (estimator, meta) in scorers.items():
        meta = dict(meta, trained_as_of=worlds.AS_OF.isoformat(), worlds=provenance,
                    version=f"{worlds.AS_OF.isoformat()}.{artefact.model_hash(estimator)[:8]}")
        if name == production:
            meta.update(bands=band_rates, selection=decision, calibration_report=before_after)
        saved[name] = artefact.save(Path(models_dir) / name, estimator, meta)
    result = {"selection": decision, "calibration_report": before_after, "selection_table": selection_rows,
              "external_table": external_rows, "bands": band_rates, "threshold": threshold,
              "models": {n: m["version"] for n, m in saved.items()}, **provenance}
    files.write_text(Path(out) / "validation.json", json.dumps(result, indent=1, default=str))
    files.write_text(Path(out) / "validation.md", markdown(result))
    return result


def outcome_recalibration(w: worlds.World, scorer: tuple, threshold: float) -> dict:
    """Outcome recalibration exercised on world ``w``: the lipid clinics assess the clinic
    order's patients, first to last, until ``MIN_EVENTS`` confirmed and ``MIN_NON_EVENTS``
    ruled out (each assessed by a genetic test, so the outcome is the world's truth), each
    with the forecast the worklist showed (tonight's prior-shift probability and its model
    score). The score step's region calibration then refits intercept and slope on them.
    Calibration before (prior shift) and after (outcome logistic) is measured against truth
    among the eligible people nobody has assessed and who are not known cases (the people the
    probability is for), and among the assessed themselves (the fit's own data)."""
    estimator, meta = scorer
    people, rules = _eligible_and_rules(w, meta["feature_schema"])
    score = estimator.labelled_score(spec.matrix(people, meta["feature_schema"]))
    known = spec.known_case(people).to_numpy()
    nothing = np.zeros(0)
    prior = calibration.calibrate_region(score, known, nothing, nothing, estimator.mapping(), w.prevalence)
    scored = pl.DataFrame({"patient_id": people["patient_id"], "probability": prior.mapping().apply(score),
                           "model_logit": logit(score), "row": np.arange(people.height)})
    pool = rules.join(scored, on="patient_id").join(labels.truth_labels(w.truth), on="patient_id", how="left")
    pool = pool.with_columns(pl.col("fh_carrier").fill_null(0))
    order = validation.clinic_order(pool, threshold)
    ordered = pl.DataFrame({"patient_id": order}).join(pool, on="patient_id", how="left", maintain_order="left")
    y_order = ordered["fh_carrier"].to_numpy()
    n_assessed = assessed_until_enough(y_order, calibration.MIN_EVENTS, calibration.MIN_NON_EVENTS)
    out = {"world": w.name, "people": w.patients, "prevalence": round(w.prevalence, 6), "candidates": order.len(),
           "carriers_among_candidates": int(y_order.sum()), "triggered": n_assessed is not None}
    if n_assessed is None:
        return out
    assessed = ordered.head(n_assessed)
    record = calibration.calibrate_region(score, known, assessed["fh_carrier"].to_numpy().astype(float),
                                          assessed["model_logit"].to_numpy(), estimator.mapping(), w.prevalence)
    y, rest, was_assessed = measured_among(people.height, pool["row"].to_numpy(), pool["fh_carrier"].to_numpy(),
                                           assessed["row"].to_numpy(), known)
    before, after = prior.mapping().apply(score), record.mapping().apply(score)
    out.update(
        assessed=assessed.height, assessed_confirmed=int(assessed["fh_carrier"].sum()), method=record.method,
        outcome_fit=record.outcome_fit, mapping_before={"intercept": prior.intercept, "slope": prior.slope},
        mapping_after={"intercept": record.intercept, "slope": record.slope},
        not_assessed=train.calibration_report(before[rest], after[rest], y[rest], "truth, eligible not assessed"),
        not_assessed_high={"before": high_band(before, y, rest), "after": high_band(after, y, rest)},
        assessed_fit=train.calibration_report(before[was_assessed], after[was_assessed], y[was_assessed],
                                              "truth, the assessed (the fit's own data)"))
    return out


def _eligible_and_rules(w: worlds.World, feature_schema: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The world's eligible people with their model inputs, and its rule results (not excluded)."""
    con = db.connect(w.db, read_only=True)
    try:
        features = step.model_inputs(con, feature_schema)
        rules = con.execute("SELECT * FROM rule_results WHERE excluded_reason IS NULL").pl()
    finally:
        con.close()
    return spec.eligible(features), rules


def assessed_until_enough(carrier_in_order: np.ndarray, min_events: int, min_non_events: int) -> int | None:
    """How many of the clinic order the clinics assess, first to last: up to and including the
    first patient at which at least ``min_events`` are confirmed and ``min_non_events`` ruled
    out (the score step's threshold for trusting an outcome fit); None if the order never
    gets there."""
    y = np.asarray(carrier_in_order)
    enough = (np.cumsum(y) >= min_events) & (np.cumsum(1 - y) >= min_non_events)
    return int(np.argmax(enough)) + 1 if enough.any() else None


def measured_among(n_people: int, pool_rows: np.ndarray, pool_carrier: np.ndarray, assessed_rows: np.ndarray,
                   known: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth per eligible person (0 outside the rules' pool), the people a probability is for
    (in the pool, not a known case, not assessed) and the assessed, as masks by row."""
    y = np.zeros(n_people)
    y[pool_rows] = pool_carrier
    in_pool = np.zeros(n_people, bool)
    in_pool[pool_rows] = True
    was_assessed = np.zeros(n_people, bool)
    was_assessed[assessed_rows] = True
    return y, in_pool & ~known & ~was_assessed, was_assessed


def high_band(p: np.ndarray, y: np.ndarray, mask: np.ndarray) -> dict:
    """People with a probability of at least ``validation.HIGH`` in ``mask`` and their O/E."""
    sel = mask & (p >= validation.HIGH)
    return {"people": int(sel.sum()), "oe": validation.observed_expected(p[sel], y[sel])}


def markdown(result: dict) -> str:
    """The external validation table, one row per world and scorer."""
    ks = validation.KS
    head = ("| world | 1 in | scorer | AUC | carriers | " + " | ".join(f"found@{k} (best rule)" for k in ks)
            + " | O/E | O/E p>=0.5 (n) | CITL | slope | ECE (equal mass) | NB model / all | targets met |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in result["external_table"]:
        met = r["targets"]
        lines.append(
            f"| {r['world']} | {1 / r['prevalence']:.0f} | {LABELS[r['scorer']]} | {r['auc']} | {r['carriers']} | "
            + " | ".join(f"{r['found'][k]} ({r['best_rule'][k]}, x{r['ratio'][k]})" for k in ks)
            + f" | {r['oe']} | {r['oe_high']} ({r['high_n']}) | {r['citl']} | {r['slope']} | {r['ece_equal_mass']} | "
            f"{r['net_benefit']['model']:.5f} / {r['net_benefit']['refer_everyone']:.5f} | "
            f"{sum(met.values())}/{len(met)} |")
    check = result.get("outcome_recalibration")
    if check:
        lines += ["", f"Outcome recalibration ({check['world']}, {check['people']:,} people, production scorer):", ""]
        if not check["triggered"]:
            lines.append(f"not triggered: {check['carriers_among_candidates']} carriers among {check['candidates']} "
                         "candidates")
        else:
            lines += [f"{check['assessed']} assessed in the clinic order ({check['assessed_confirmed']} confirmed); "
                      f"method {check['method']}", "",
                      "| people | when | CITL | slope | O/E | O/E p>=0.5 (n) |", "|---|---|---|---|---|---|"]
            for part, key in (("eligible, not assessed", "not_assessed"), ("assessed (fit data)", "assessed_fit")):
                r = check[key]
                for when in ("before", "after"):
                    hi = check["not_assessed_high"][when] if key == "not_assessed" else None
                    high = f"{hi['oe']} ({hi['people']})" if hi else ""
                    lines.append(f"| {part} ({r['people']:,}, {r.get('events', 0)} carriers) | {when} | "
                                 f"{r[when]['citl']} | {r[when]['slope']} | {r[when]['oe']} | {high} |")
    lines += ["", "Probability bands (production scorer, pooled external worlds):", "",
              "| band | people | carriers | mean p | observed |", "|---|---|---|---|---|"]
    for b in result["bands"]:
        lines.append(f"| {b['name']} | {b['people']:,} | {b['carriers']} | {b['mean_probability']} | "
                     f"{b['observed_rate']} |")
    return "\n".join(lines) + "\n"
