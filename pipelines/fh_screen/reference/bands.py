"""Probability bands (``rules/probability_bands_v1.yaml``) and their observed rates on held-out
worlds: one definition for the score step (``model_scores.probability_band``), training (the
rates) and the worklists (the words)."""

from __future__ import annotations

import numpy as np

from fh_screen import reference


def definition() -> dict:
    return reference.load("probability_bands_v1")


def band_of(p: float) -> str:
    """The band of a probability (bands are listed from the highest lower bound down)."""
    for band in definition()["bands"]:
        if p >= band["lower"]:
            return band["name"]
    return definition()["bands"][-1]["name"]


def observed_rates(p: np.ndarray, y: np.ndarray) -> list[dict]:
    """Per band: people, carriers and the observed carrier share (validation only)."""
    names = np.array([band_of(v) for v in p])
    rows = []
    for band in definition()["bands"]:
        mask = names == band["name"]
        n, carriers = int(mask.sum()), int(y[mask].sum())
        rows.append({"name": band["name"], "lower": band["lower"], "people": n, "carriers": carriers,
                     "mean_probability": round(float(p[mask].mean()), 4) if n else None,
                     "observed_rate": round(carriers / n, 4) if n else None})
    return rows
