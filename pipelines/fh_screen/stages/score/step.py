"""The ``score`` step: a calibrated probability for everyone the scorer is for."""

from __future__ import annotations

import numpy as np
import polars as pl

from fh_screen.store import db
from fh_screen.context import RunContext, log
from fh_screen.stages.score import artefact, explain, spec

EXPLAIN_ABOVE = 0.05   # probability above which a patient gets model reasons ...
EXPLAIN_AT_MOST = 1000  # ... among the most probable (explaining costs one prediction per input)


def score_frame(features: pl.DataFrame, estimator, meta: dict) -> pl.DataFrame:
    """patient_id, probability, model_name, model_version, reasons, reason_items."""
    people = spec.eligible(features)
    columns = meta["feature_schema"]
    X = spec.matrix(people, columns)
    probability = estimator.predict_proba(X)[:, 1] if X.shape[0] else np.zeros(0)
    texts = np.full(X.shape[0], "", dtype=object)
    items = np.full(X.shape[0], "[]", dtype=object)
    ranked = np.argsort(-probability, kind="stable")[:EXPLAIN_AT_MOST]
    chosen = np.sort(ranked[probability[ranked] >= EXPLAIN_ABOVE])
    if chosen.size:
        reference = np.array([meta["reference_values"][c] for c in columns])
        t, it = explain.reasons(estimator, X[chosen], reference)
        texts[chosen], items[chosen] = t, it
    return pl.DataFrame(
        {
            "patient_id": people["patient_id"],
            "probability": probability.astype(np.float64),
            "model_name": meta["name"],
            "model_version": meta["version"],
            "reasons": pl.Series(texts.tolist(), dtype=pl.Utf8),
            "reason_items": pl.Series(items.tolist(), dtype=pl.Utf8),
        }
    )


def model_inputs(con, columns: list[str]) -> pl.DataFrame:
    """The columns of ``patient_features`` that eligibility and the model read (about 48 of
    129): DuckDB reads and converts only these, a fifth of the time of every column."""
    features = con.sql("SELECT * FROM patient_features").pl(lazy=True)
    available = features.collect_schema()
    wanted = dict.fromkeys(["patient_id", *spec.ELIGIBILITY_COLUMNS, *columns])
    return features.select(c for c in wanted if c in available).collect()


def score_step(ctx: RunContext) -> dict:
    if not ctx.settings.model.enabled:
        ctx.feature_off("model_score", "switched off in settings (model.enabled: false)")
        estimator = meta = None
    else:
        estimator, meta = artefact.load(ctx.settings.model.artefact)
    con = ctx.connect()
    try:
        scores = (
            score_frame(model_inputs(con, meta["feature_schema"]), estimator, meta)
            if estimator is not None
            else pl.DataFrame(schema={"patient_id": pl.Utf8, "probability": pl.Float64, "model_name": pl.Utf8,
                                      "model_version": pl.Utf8, "reasons": pl.Utf8, "reason_items": pl.Utf8})
        )
        with db.transaction(con):
            db.replace_table(con, "model_scores", scores)
    finally:
        con.close()
    if meta:
        ctx.manifest["model"] = {k: meta[k] for k in ("name", "version", "model_hash", "file_sha256", "labels")}
    log.info("scored %d people", scores.height)
    return {"scored": scores.height, "explained": int((scores["reasons"] != "").sum())}
