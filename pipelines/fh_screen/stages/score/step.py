"""The ``score`` step: a probability of FH for everyone the scorer is for, calibrated to
the region it runs in (``calibration``), with its plain-language reasons."""

from __future__ import annotations

import numpy as np
import polars as pl

from fh_screen.context import RunContext, log
from fh_screen.errors import UserError
from fh_screen.reference import bands
from fh_screen.stages.score import artefact, calibration, explain, spec
from fh_screen.stages.score.outcomes import assessed_referrals
from fh_screen.stages.score.model import RegionScorer
from fh_screen.store import db

EXPLAIN_ABOVE = 0.05   # probability above which a patient gets model reasons ...
EXPLAIN_AT_MOST = 1000  # ... among the most probable (explaining costs one prediction per input)

# model_logit: logit of the model's score behind the probability, kept with each listing
# (referral_events) so that outcome recalibration fits on the forecast made at listing.
SCHEMA = {"patient_id": pl.Utf8, "probability": pl.Float64, "probability_band": pl.Utf8, "known_case": pl.Boolean,
          "model_name": pl.Utf8, "model_version": pl.Utf8, "reasons": pl.Utf8, "reason_items": pl.Utf8,
          "model_logit": pl.Float64}


def score_frame(features: pl.DataFrame, estimator, meta: dict, probability: np.ndarray | None = None,
                model_logit: np.ndarray | None = None) -> pl.DataFrame:
    """patient_id, probability, probability_band, known_case, model_name, model_version,
    reasons, reason_items, model_logit for the eligible people; ``estimator`` gives the
    probability (unless it is given, in the order of the eligible people, with the logit of
    the model score behind it) and the reasons."""
    people = spec.eligible(features)
    columns = meta["feature_schema"]
    X = spec.matrix(people, columns)
    if probability is None:
        probability = estimator.predict_proba(X)[:, 1] if X.shape[0] else np.zeros(0)
    texts = np.full(X.shape[0], "", dtype=object)
    items = np.full(X.shape[0], "[]", dtype=object)
    ranked = np.argsort(-probability, kind="stable")[:EXPLAIN_AT_MOST]
    chosen = np.sort(ranked[probability[ranked] >= EXPLAIN_ABOVE])
    if chosen.size:
        reference_values = np.array([meta["reference_values"][c] for c in columns])
        t, it = explain.reasons(estimator, X[chosen], reference_values)
        texts[chosen], items[chosen] = t, it
    known = (spec.known_case(people) if all(c in people.columns for c in spec.KNOWN_CASE_COLUMNS)
             else pl.Series([False] * people.height))
    return pl.DataFrame(
        {
            "patient_id": people["patient_id"],
            "probability": probability.astype(np.float64),
            "probability_band": pl.Series([bands.band_of(p) for p in probability], dtype=pl.Utf8),
            "known_case": known.cast(pl.Boolean),
            "model_name": meta["name"],
            "model_version": meta["version"],
            "reasons": pl.Series(texts.tolist(), dtype=pl.Utf8),
            "reason_items": pl.Series(items.tolist(), dtype=pl.Utf8),
            "model_logit": pl.Series(model_logit.tolist() if model_logit is not None else [None] * X.shape[0],
                                     dtype=pl.Float64),
        },
        schema=SCHEMA,
    )


def model_inputs(con, columns: list[str]) -> pl.DataFrame:
    """The columns of ``patient_features`` that eligibility, calibration and the model read
    (about 50 of 129): DuckDB reads and converts only these, a fifth of the time of every column.
    In patient order: an incremental night leaves the table's rows in no particular order, and
    the scores, the calibration's sums and which ties are explained must not depend on it."""
    features = con.sql("SELECT * FROM patient_features").pl(lazy=True)
    available = features.collect_schema()
    wanted = dict.fromkeys(["patient_id", *spec.ELIGIBILITY_COLUMNS, *spec.KNOWN_CASE_COLUMNS, *columns])
    return features.select(c for c in wanted if c in available).collect().sort("patient_id")


def region_scorer(estimator, features: pl.DataFrame, outcomes: pl.DataFrame, meta: dict,
                  prevalence: float) -> tuple[RegionScorer, calibration.RegionCalibration, np.ndarray, np.ndarray]:
    """The artefact with tonight's region calibration (see ``calibration``), the record for
    the manifest, and the probability and logit of the model score of every eligible person
    (the model runs once). ``outcomes``: ``outcomes.assessed_referrals``."""
    people = spec.eligible(features)
    score = estimator.labelled_score(spec.matrix(people, meta["feature_schema"])) if people.height else np.zeros(0)
    known = spec.known_case(people).to_numpy()
    record = calibration.calibrate_region(
        score, known, outcomes["confirmed"].to_numpy().astype(np.float64), outcomes["model_logit"].to_numpy(),
        estimator.mapping(), prevalence,
    )
    return RegionScorer(estimator, record.mapping()), record, record.mapping().apply(score), calibration.logit(score)


def population(con, as_of) -> dict:
    """Who could be scored tonight, and in words why nobody could when the count is 0: an
    empty population (a run date before the data, a first delivery without lipid panels)
    is a normal night with empty worklists, and the manifest says why."""
    people = con.sql("SELECT * FROM patient_features").pl(lazy=True).select(*spec.ELIGIBILITY_COLUMNS).collect()
    report = {"people": people.height, "eligible_for_scoring": spec.eligible(people).height}
    if report["eligible_for_scoring"] == 0:
        report["empty_because"] = (
            f"nobody in the store has an LDL-C result on or before {as_of.isoformat()} while alive and living "
            "in the region, so nobody can be scored or listed tonight"
            if people.height else "the store holds nobody as of this run date"
        )
    return report


def score_step(ctx: RunContext) -> dict:
    if not ctx.settings.model.enabled:
        ctx.feature_off("model_score", "switched off in settings (model.enabled: false)")
        estimator = meta = None
    else:
        estimator, meta = artefact.load(ctx.settings.model.artefact)
        if meta.get("role") == "comparison":
            raise UserError(f"{meta['name']} is a comparison model for validation only; it cannot score a region")
    con = ctx.connect()
    record = None
    try:
        if estimator is not None:
            features = model_inputs(con, meta["feature_schema"])
            scorer, record, probability, model_logit = region_scorer(
                estimator, features, assessed_referrals(con), meta, ctx.settings.metrics.expected_prevalence)
            scores = score_frame(features, scorer, meta, probability, model_logit)
        else:
            scores = pl.DataFrame(schema=SCHEMA)
        with db.transaction(con):
            db.replace_table(con, "model_scores", scores)
        ctx.manifest["population"] = population(con, ctx.as_of)
    finally:
        con.close()
    if meta:
        ctx.manifest["model"] = {k: meta[k] for k in ("name", "version", "model_hash", "file_sha256", "labels")}
        ctx.manifest["model"]["calibration"] = record.record()
        ctx.manifest["model"]["bands"] = meta.get("bands", [])
        log.info("calibration: %s (expected carriers among the not yet known %.1f, target %.1f)",
                 record.method, record.expected_carriers_after, record.expected_unknown_target)
    log.info("scored %d people", scores.height)
    return {"scored": scores.height, "explained": int((scores["reasons"] != "").sum()),
            "calibration": record.method if record else None}
