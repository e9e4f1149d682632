"""Plain-language reasons for a model probability.

Model-agnostic and cheap: for each patient, each input is set in turn to the training
population's median and the drop in probability is that input's contribution. Only
patients worth explaining (high probability) are explained, so the cost is
(#explained x #features) predictions, not a per-row loop.
"""

from __future__ import annotations

import json

import numpy as np

from fh_screen.stages.score import spec

TOP = 3
MIN_CONTRIBUTION = 0.005


# Rows per predict_proba call when probing: one call per batch instead of one per feature
# keeps the model's per-call cost (one pass over every tree, thread start-up) from
# multiplying by the number of features, and bounds the memory of the stacked probes.
PROBE_ROWS = 500_000


def contributions(estimator, X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Drop in probability when each input is set to the reference value, per row.

    All probes of a batch of patients (the rows themselves, then one copy per feature
    with that column replaced) go to the model in one ``predict_proba`` call; rows are
    predicted independently, so the result equals one call per feature.
    """
    n, k = X.shape
    out = np.zeros_like(X, dtype=np.float64)
    step = max(1, PROBE_ROWS // (k + 1))
    for start in range(0, n, step):
        block = X[start:start + step]
        rows = block.shape[0]
        probes = np.tile(block, (k + 1, 1))
        for j in range(k):
            probes[(j + 1) * rows:(j + 2) * rows, j] = reference[j]
        p = estimator.predict_proba(probes)[:, 1].reshape(k + 1, rows)
        out[start:start + rows] = (p[0] - p[1:]).T
    return out


def _format(template: str, value: float) -> str:
    return template.format(value=value) if np.isfinite(value) else template.split(":")[0]


def reasons(estimator, X: np.ndarray, reference: np.ndarray, lang: str = "en") -> tuple[list[str], list[str]]:
    """(reasons text, reason_items JSON) per row, largest contributions first."""
    features = spec.load_spec()
    contrib = contributions(estimator, X, reference)
    texts, items = [], []
    for i in range(X.shape[0]):
        order = [j for j in np.argsort(-contrib[i])[:TOP] if contrib[i, j] >= MIN_CONTRIBUTION]
        chosen = [
            {"feature": features[j].name, "value": None if not np.isfinite(X[i, j]) else round(float(X[i, j]), 3),
             "contribution": round(float(contrib[i, j]), 4)}
            for j in order
        ]
        template = (lambda f: f.reason_da) if lang == "da" else (lambda f: f.reason_en)
        texts.append("; ".join(_format(template(features[j]), X[i, j]) for j in order))
        items.append(json.dumps(chosen))
    return texts, items
