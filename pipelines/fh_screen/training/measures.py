"""How well a model's probabilities discriminate and are calibrated, against known labels.

Used by ``fhscreen evaluate`` on a held-out synthetic region (the only place with ground
truth); kept with training so that scikit-learn stays inside scoring and training.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |observed - predicted| over equal-width probability bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / max(len(p), 1))


def discrimination(pool: pl.DataFrame, column: str) -> dict:
    y, p = pool["fh_carrier"].to_numpy(), pool[column].fill_null(0.0).to_numpy()
    if y.min() == y.max():
        return {"n": len(y), "carriers": int(y.sum()), "roc_auc": None, "pr_auc": None, "ece": None}
    return {"n": len(y), "carriers": int(y.sum()), "roc_auc": round(float(roc_auc_score(y, p)), 3),
            "pr_auc": round(float(average_precision_score(y, p)), 3),
            "ece": round(expected_calibration_error(p, y), 4)}
