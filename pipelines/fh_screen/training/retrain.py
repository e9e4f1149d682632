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


def retrain_and_maybe_promote(db_path: Path, models_dir: Path, as_of: date, name: str = "fh_gbm",
                              seed: int = 7, prevalence: float = 1 / 250) -> dict:
    table = train.training_table(Path(db_path), as_of)
    fit_idx, hold_idx = train_test_split(
        list(range(table.height)), test_size=HOLDOUT_SHARE, random_state=seed,
        stratify=table["labelled"].to_numpy(),
    )
    fit_rows, hold_rows = table[fit_idx], table[hold_idx]
    candidate, meta = train.fit(fit_rows, name, seed)
    X_hold = spec.matrix(hold_rows, spec.names())
    y_hold = hold_rows["labelled"].to_numpy()
    candidate_ap = float(average_precision_score(y_hold, candidate.predict_proba(X_hold)[:, 1]))

    current_dir = Path(models_dir) / name
    try:
        current, current_meta = artefact.load(current_dir)
        current_ap = float(average_precision_score(y_hold, current.predict_proba(X_hold)[:, 1]))
    except Exception as exc:  # no usable current model: a first model is promoted
        current_meta, current_ap = {"version": None, "load_error": type(exc).__name__}, None

    calibration = {"candidate": train.region_calibration_report(Path(db_path), candidate, meta, prevalence,
                                                             listed_by_it=False)}
    if current_ap is not None:
        calibration["current"] = train.region_calibration_report(Path(db_path), current, current_meta, prevalence,
                                                                listed_by_it=True)
    promote = current_ap is None or candidate_ap > current_ap
    meta["trained_as_of"] = as_of.isoformat()
    meta["version"] = f"{as_of.isoformat()}.{artefact.model_hash(candidate)[:8]}"
    decision = {
        "decided_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "as_of": as_of.isoformat(),
        "current_version": current_meta.get("version"),
        "candidate_version": meta["version"],
        "holdout_people": int(len(y_hold)),
        "holdout_positives": int(y_hold.sum()),
        "current_average_precision": current_ap,
        "candidate_average_precision": candidate_ap,
        "promoted": bool(promote),
        "calibration": calibration,
    }
    if promote:
        staging = Path(models_dir) / f".{name}.candidate"
        if staging.exists():
            shutil.rmtree(staging)
        artefact.save(staging, candidate, meta)
        if current_dir.exists():
            for keep in ("MODEL_CARD.md", "promotion_log.jsonl"):
                if (current_dir / keep).exists():
                    shutil.copy2(current_dir / keep, staging / keep)
            shutil.rmtree(current_dir)
        staging.rename(current_dir)
    files.ensure_dir(current_dir)
    with (current_dir / "promotion_log.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(decision, sort_keys=True) + "\n")
    return decision
