"""``fhscreen train``: fit the scorers and save versioned artefacts.

Two ways in:
* ``--worlds``: on many synthetic worlds (``training.multiworld``), with whole worlds held
  out for the choice of model and for external validation. This is how the committed
  artefacts are made.
* ``--db``: on one region's store, from the labels that region has (clinic-confirmed and
  FH-coded people against everyone else). Without ground truth the mapping slope stays 1
  (logit P(FH) = a + logit g, the small-score limit of Elkan & Noto's g/c) and the intercept
  is set by the region calibration of the score step every night.

Both report calibration-in-the-large and the calibration slope before and after the region
calibration (``calibration_report``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from fh_screen.stages.score import artefact, model, spec, step
from fh_screen.stages.score.outcomes import assessed_referrals
from fh_screen.stages.score.calibration import expit, logit, outcome_fit
from fh_screen.store import db
from fh_screen.training import famcat, labels, validation

MODELS = {"fh_baseline": model.baseline, "fh_gbm": model.boosted}
COMPARISON = "famcat_like"


def columns_of(name: str) -> list[str]:
    return [famcat.SEX_COLUMN, *famcat.COLUMNS] if name == COMPARISON else spec.names()


def estimator_of(name: str, seed: int):
    return famcat.estimator(seed) if name == COMPARISON else MODELS[name](seed)


def training_table(db_path: Path, as_of: date, truth: Path | None = None) -> pl.DataFrame:
    con = db.connect(db_path, read_only=True)
    try:
        features = spec.eligible(con.execute("SELECT * FROM patient_features ORDER BY patient_id").pl())
        table = features.join(labels.practice_labels(con, as_of), on="patient_id", how="left")
    finally:
        con.close()
    if truth is not None:
        table = table.join(labels.truth_labels(truth), on="patient_id", how="left")
    return table.with_columns(pl.col("labelled").fill_null(0))


def fit(table: pl.DataFrame, name: str, seed: int, target: str = "labelled"):
    """A ``LabelledScorer`` on ``target`` (identity mapping) and its metadata."""
    columns = columns_of(name)
    X = spec.matrix(table, columns)
    s = table[target].to_numpy().astype(int)
    estimator = model.LabelledScorer(estimator_of(name, seed), cv=3, random_state=seed).fit(X, s)
    reference = {c: float(np.nanmedian(X[:, i])) if np.isfinite(X[:, i]).any() else 0.0 for i, c in enumerate(columns)}
    meta = {
        "name": name,
        "labels": target if target != "labelled" else "clinic_outcomes+fh_diagnoses vs unlabelled",
        "role": "comparison" if name == COMPARISON else "scorer",
        "seed": seed,
        "feature_schema": columns,
        "reference_values": reference,
        "training_rows": int(X.shape[0]),
        "training_positives": int(s.sum()),
        "training_data_fingerprint": artefact.data_fingerprint(X, s),
    }
    return estimator, meta


def calibration_report(p_before: np.ndarray, p_after: np.ndarray, y: np.ndarray, against: str) -> dict:
    """Calibration-in-the-large (intercept with slope 1; 0 is perfect), slope (1 is perfect)
    and O/E of the default mapping and of the region calibration, against ``against``."""
    if y.size == 0 or y.min() == y.max():
        return {"against": against, "people": int(y.size), "measurable": False}

    def figures(p):
        return {"citl": round(validation.calibration_in_the_large(p, y), 3),
                "slope": round(outcome_fit(logit(p), y)[1], 3),
                "oe": validation.observed_expected(p, y)}

    return {"against": against, "people": int(y.size), "events": int(y.sum()), "measurable": True,
            "before": figures(p_before), "after": figures(p_after)}


def region_calibration_report(db_path: Path, estimator, meta: dict, prevalence: float, listed_by_it: bool) -> dict:
    """Before/after figures on the region's assessed referrals (its only outcome data): the
    probability each patient was shown when listed, against tonight's region calibration of
    ``estimator`` applied to the model score at that listing. Only for the model that made the
    listings (``listed_by_it``): what another model would have forecast then is unknown, and
    its score from tonight's inputs is no forecast (``stages.score.outcomes``)."""
    con = db.connect(db_path, read_only=True)
    try:
        features = step.model_inputs(con, meta["feature_schema"])
        outcomes = assessed_referrals(con)
    finally:
        con.close()
    _, record, _, _ = step.region_scorer(estimator, features, outcomes, meta, prevalence)
    against = "assessed referrals (clinic outcome after listing)"
    if not listed_by_it or not outcomes.height:
        why = ("the assessed patients were listed on another model's forecasts; measured once its own are"
               if outcomes.height else "no clinic assessment has yet followed a listing by this product")
        return {"method": record.method, "against": against, "people": outcomes.height, "measurable": False,
                "why": why}
    before = outcomes["probability"].to_numpy()
    after = record.mapping().apply(expit(outcomes["model_logit"].to_numpy()))
    return {"method": record.method,
            **calibration_report(before, after, outcomes["confirmed"].to_numpy().astype(float), against)}


def train(db_path: Path, as_of: date, models_dir: Path, seed: int = 7, prevalence: float = 1 / 250) -> dict[str, dict]:
    """Train every model on the store's labels; returns metadata per model."""
    table = training_table(db_path, as_of)
    saved = {}
    for name in MODELS:
        estimator, meta = fit(table, name, seed)
        meta["trained_as_of"] = as_of.isoformat()
        meta["version"] = f"{as_of.isoformat()}.{artefact.model_hash(estimator)[:8]}"
        meta["calibration_report"] = region_calibration_report(db_path, estimator, meta, prevalence, listed_by_it=False)
        saved[name] = artefact.save(Path(models_dir) / name, estimator, meta)
    return saved
