"""Synthetic worlds end to end: ``fhscreen train --worlds`` and ``fhscreen evaluate``.

Building a world runs the nightly job, so it lives in the entry layer; fitting and
validation are ``fh_screen.training.multiworld``. ``evaluate`` rebuilds the external worlds
of training (the same seeds and sizes the model card reports; none was used for any
decision) and validates the committed artefacts on them: the production scorer, the other
scorer and the FAMCAT-like refit, each scored as the score step scores a region (own data,
configured prevalence, known cases, never the truth).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from fh_screen.app.run import execute_step, prepare
from fh_screen.config import Settings
from fh_screen.reference import bands
from fh_screen.stages.score import artefact
from fh_screen.store import files
from fh_screen.synth import generate
from fh_screen.training import multiworld, train, worlds
from fh_screen.training.multiworld import OUTCOME_PLAN, PLAN, markdown

__all__ = ["OUTCOME_PLAN", "PLAN", "build", "evaluate", "markdown", "train_on_worlds"]


def build(w: worlds.World) -> worlds.World:
    """Generate the world and run the nightly steps up to the rules (skipped when built)."""
    done = w.folder / "built.json"
    stamp = {"overrides": w.overrides, "patients": w.patients}
    if done.exists() and json.loads(done.read_text(encoding="utf-8")) == stamp:
        return w
    files.ensure_dir(w.folder)
    params = files.write_text(w.folder / "params.yaml", yaml.safe_dump(w.overrides, sort_keys=True))
    generate(out=w.folder / "region", n_patients=w.patients, seed=w.seed, as_of=worlds.AS_OF, fmt="parquet",
             dialect="plain", nights=1, params_file=params)
    ctx = prepare(w.folder / "region" / "extracts" / worlds.AS_OF.isoformat(), w.db, w.folder / "run",
                  worlds.AS_OF, w.settings())
    for step in worlds.STEPS:
        execute_step(ctx, step)
    files.write_text(done, json.dumps(stamp))
    return w


def _build_all(groups: dict[str, list[worlds.World]], log) -> None:
    for ws in groups.values():
        for w in ws:
            log(f"world {w.name}: {w.patients:,} people, prevalence 1/{1 / w.prevalence:.0f}")
            build(w)


def train_on_worlds(out: Path, models_dir: Path, settings: Settings, plan: dict | None = None, seed: int = 7,
                    log=print) -> dict:
    """Build the worlds, fit every scorer, choose, validate externally, save the artefacts."""
    plan = plan or PLAN
    groups = multiworld.plan_worlds(Path(out), plan)
    _build_all(groups, log)
    return multiworld.fit_and_validate(Path(out), groups, plan, models_dir, settings, seed)


def evaluate(out: Path, settings: Settings, models_dir: Path = Path("models"),
             external: tuple[int, int] | None = None, log=print, outcome_patients: int = 0) -> dict:
    """Build the external worlds (cached in ``out``) and validate the committed artefacts; with
    ``outcome_patients``, also exercise the outcome recalibration on a world of that size."""
    plan = {"external": external or PLAN["external"]}
    if outcome_patients:
        plan["outcomes"] = (OUTCOME_PLAN["outcomes"][0], outcome_patients)
    groups = multiworld.plan_worlds(Path(out), plan)
    _build_all(groups, log)
    names = [n for n in multiworld.SCORERS if (artefact.resolve(Path(models_dir) / n) / artefact.METADATA_FILE).exists()]
    scorers = {n: artefact.load(Path(models_dir) / n) for n in names}
    production = next((n for n in names if "bands" in scorers[n][1] and n != train.COMPARISON), names[0])
    rows, pooled = multiworld.validate(groups["external"], scorers, settings.selection.min_probability)
    result = {"external_table": rows, "bands": bands.observed_rates(*pooled[production]), "production": production,
              "threshold": settings.selection.min_probability, "plan": {r: list(v) for r, v in plan.items()},
              "models": {n: scorers[n][1].get("version") for n in names}}
    if outcome_patients:
        result["outcome_recalibration"] = multiworld.outcome_recalibration(
            groups["outcomes"][0], scorers[production], settings.selection.min_probability)
    files.write_text(Path(out) / "evaluation.json", json.dumps(result, indent=1, default=str))
    files.write_text(Path(out) / "evaluation.md", markdown(result))
    return result
