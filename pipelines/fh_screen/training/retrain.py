"""Monthly retraining: train a candidate on the accumulated outcomes, compare it with the
current model on a holdout, and promote it only when it is better.

Without ground truth the comparison uses what the region has: a stratified 25% of
people held out of the candidate's training, scored by both models; the model whose
ranking puts the held-out labelled positives higher (average precision) wins. A tie or
a loss keeps the current model. Every decision is appended to ``promotion_log.jsonl``
in the model folder; nothing is replaced silently. The decision also records, for both
models, calibration-in-the-large and the calibration slope on the region's assessed
referrals before and after the region calibration of the score step
(``train.region_calibration_report``).
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split

from fh_screen.store import files
from fh_screen.stages.score import artefact, spec
from fh_screen.training import train

HOLDOUT_SHARE = 0.25


KEPT_ON_PROMOTION = ("MODEL_CARD.md", "promotion_log.jsonl")  # the folder's history outlives its model


def retrain_and_maybe_promote(db_path: Path, models_dir: Path, as_of: date, name: str = "fh_gbm",
                              seed: int = 7, prevalence: float = 1 / 250) -> dict:
    """Train a candidate, score it and the current model on the holdout, promote the
    candidate only if ``should_promote``, and append the decision to the folder's log."""
    table = train.training_table(Path(db_path), as_of)
    fit_idx, hold_idx = train_test_split(
        list(range(table.height)), test_size=HOLDOUT_SHARE, random_state=seed,
        stratify=table["labelled"].to_numpy(),
    )
    fit_rows, hold_rows = table[fit_idx], table[hold_idx]
    candidate, meta = train.fit(fit_rows, name, seed)
    X_hold, y_hold = spec.matrix(hold_rows, spec.names()), hold_rows["labelled"].to_numpy()
    candidate_ap = float(average_precision_score(y_hold, candidate.predict_proba(X_hold)[:, 1]))
    current_dir = Path(models_dir) / name
    current, current_meta, current_ap = _current_model(current_dir, X_hold, y_hold)

    calibration = {"candidate": train.region_calibration_report(Path(db_path), candidate, meta, prevalence,
                                                             listed_by_it=False)}
    if current is not None:
        calibration["current"] = train.region_calibration_report(Path(db_path), current, current_meta, prevalence,
                                                                listed_by_it=True)
    meta.update(candidate_identity(as_of, artefact.model_hash(candidate)))
    decision = decision_record(as_of, current_meta.get("version"), meta["version"], y_hold, current_ap,
                               candidate_ap, calibration, datetime.now(timezone.utc))
    if decision["promoted"]:
        _install(Path(models_dir), name, candidate, meta)
    files.ensure_dir(current_dir)
    with (current_dir / "promotion_log.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(decision, sort_keys=True) + "\n")
    return decision


def _current_model(folder: Path, X_hold, y_hold) -> tuple[object | None, dict, float | None]:
    """The current model, its metadata and its holdout average precision; a folder without a
    usable model gives no model, the reason it could not be loaded, and no score."""
    try:
        current, meta = artefact.load(folder)
        return current, meta, float(average_precision_score(y_hold, current.predict_proba(X_hold)[:, 1]))
    except Exception as exc:  # no usable current model: a first model is promoted
        return None, {"version": None, "load_error": type(exc).__name__}, None


def should_promote(candidate_ap: float, current_ap: float | None) -> bool:
    """Promote a candidate only when it ranks the holdout's positives strictly higher than the
    current model; with no usable current model the first candidate is promoted. A tie keeps
    the current model, so a retrain that learned nothing new changes nothing."""
    return current_ap is None or candidate_ap > current_ap


def candidate_identity(as_of: date, model_hash: str) -> dict:
    """The candidate's training date and version: the date plus the first 8 characters of the
    model's hash, so two models trained on one date from different data differ."""
    return {"trained_as_of": as_of.isoformat(), "version": f"{as_of.isoformat()}.{model_hash[:8]}"}


def decision_record(as_of: date, current_version: str | None, candidate_version: str, y_hold,
                    current_ap: float | None, candidate_ap: float, calibration: dict,
                    decided_at: datetime) -> dict:
    """One line of ``promotion_log.jsonl``: both models' versions and holdout scores, the
    holdout's size, the calibration reports and whether the candidate was promoted."""
    return {
        "decided_at": decided_at.isoformat(timespec="seconds"),
        "as_of": as_of.isoformat(),
        "current_version": current_version,
        "candidate_version": candidate_version,
        "holdout_people": int(len(y_hold)),
        "holdout_positives": int(y_hold.sum()),
        "current_average_precision": current_ap,
        "candidate_average_precision": candidate_ap,
        "promoted": bool(should_promote(candidate_ap, current_ap)),
        "calibration": calibration,
    }


def _install(models_dir: Path, name: str, candidate, meta: dict) -> None:
    """Save the candidate beside the current folder, carry over ``KEPT_ON_PROMOTION``, then
    swap it in, so the model folder is never left half written."""
    current_dir, staging = models_dir / name, models_dir / f".{name}.candidate"
    if staging.exists():
        shutil.rmtree(staging)
    artefact.save(staging, candidate, meta)
    if current_dir.exists():
        for keep in KEPT_ON_PROMOTION:
            if (current_dir / keep).exists():
                shutil.copy2(current_dir / keep, staging / keep)
        shutil.rmtree(current_dir)
    staging.rename(current_dir)
