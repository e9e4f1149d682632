"""Plain-language reasons for a model probability.

Model-agnostic and cheap: for each patient, each input is set in turn to the training
population's median and the drop in probability is that input's contribution. Only
patients worth explaining (high probability) are explained, so the cost is
(#explained x #features) predictions, not a per-row loop.
"""

from __future__ import annotations

import json

import numpy as np

from fh_screen.ml import spec

TOP = 3
MIN_CONTRIBUTION = 0.005


def contributions(estimator, X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    base = estimator.predict_proba(X)[:, 1]
    out = np.zeros_like(X, dtype=np.float64)
    for j in range(X.shape[1]):
        probe = X.copy()
        probe[:, j] = reference[j]
        out[:, j] = base - estimator.predict_proba(probe)[:, 1]
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
