"""``fhscreen train``: fit the scorers on a region's store and save versioned artefacts.

Both the baseline (logistic regression) and the boosted model are trained on the same
positive-unlabelled labels; each is saved as its own artefact folder. Which one the
worklists use is a setting (``model.artefact``), chosen on the held-out comparison of
``fhscreen evaluate`` and recorded in the model card.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from fh_screen.store import db
from fh_screen.stages.score import artefact, model, spec
from fh_screen.training import labels

MODELS = {"fh_baseline": model.baseline, "fh_gbm": model.boosted}


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


def fit(table: pl.DataFrame, name: str, seed: int, target: str = "labelled", pu: bool = True):
    columns = spec.names()
    X = spec.matrix(table, columns)
    s = table[target].to_numpy().astype(int)
    estimator = model.PositiveUnlabelled(MODELS[name](seed), cv=3, random_state=seed, pu=pu).fit(X, s)
    reference = {c: float(np.nanmedian(X[:, i])) if np.isfinite(X[:, i]).any() else 0.0 for i, c in enumerate(columns)}
    meta = {
        "name": name,
        "labels": target if not pu else "positive_unlabelled:clinic_outcomes+fh_diagnoses",
        "seed": seed,
        "feature_schema": columns,
        "reference_values": reference,
        "training_rows": int(X.shape[0]),
        "training_positives": int(s.sum()),
        "labelling_rate": estimator.labelling_rate_,
        "training_data_fingerprint": artefact.data_fingerprint(X, s),
    }
    return estimator, meta


def train(db_path: Path, as_of: date, models_dir: Path, seed: int = 7) -> dict[str, dict]:
    """Train every model on the store's practice labels; returns metadata per model."""
    table = training_table(db_path, as_of)
    saved = {}
    for name in MODELS:
        estimator, meta = fit(table, name, seed)
        meta["trained_as_of"] = as_of.isoformat()
        meta["version"] = f"{as_of.isoformat()}.{artefact.model_hash(estimator)[:8]}"
        saved[name] = artefact.save(Path(models_dir) / name, estimator, meta)
    return saved
