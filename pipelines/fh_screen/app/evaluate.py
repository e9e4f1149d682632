"""``fhscreen evaluate``: rankings compared on a held-out, shifted synthetic region.

The region is generated with another seed and shifted parameters (testing rates, statin
uptake, prevalence: ``heldout_shift.yaml``), run through the same nightly job, and each
ranking is cut at the same number of referrals K/2, K and 2K. Because only synthetic
regions have ground truth, this is where "finds more true carriers at the clinics'
capacity" can be measured at all.

Rule-based rankings are given their best case: each orders the whole eligible pool by
its own key (e.g. DLCN points, then estimated untreated LDL-C), not only those above
its cut-off, so they always fill K.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from fh_screen.app.run import execute_step, prepare
from fh_screen.config import Settings
from fh_screen.stages.referrals.step import rank_candidates
from fh_screen.stages.score import artefact
from fh_screen.stages.score.step import score_frame
from fh_screen.store import db, files
from fh_screen.synth import generate
from fh_screen.training import labels, train
from fh_screen.training.measures import discrimination, expected_calibration_error

SHIFT_FILE = Path(__file__).resolve().parents[1] / "synth" / "shifted_region.yaml"
HELDOUT_AS_OF = date(2026, 11, 23)
# The rankings need rule results and scores only; worklists and letters are not made.
EVALUATED_STEPS = ("stage", "validate", "load", "features", "rules", "score")


def rankings(pool: pl.DataFrame) -> dict[str, pl.Series]:
    """Patient ids in ranked order for each strategy (best first)."""

    def by(*keys: str) -> pl.Series:
        return pool.sort(list(keys), descending=True, nulls_last=True)["patient_id"]

    return {
        "top-K by highest LDL-C": by("ldl_max_mmol"),
        "lab flag (then LDL-C)": pool.with_columns(pl.col("lab_flag").fill_null(False).cast(pl.Int8))
        .sort(["lab_flag", "ldl_max_mmol"], descending=True, nulls_last=True)["patient_id"],
        "DLCN points (>= 6 first)": by("dlcn_points", "ldl_untreated_estimate_mmol"),
        "ML model probability": by("probability"),
        **{f"{c.replace('_probability', '').replace('_', ' ')} model": by(c)
           for c in ("baseline_probability", "truth_trained_probability") if c in pool.columns},
        "worklist ranking": rank_candidates(pool)["patient_id"],
    }


def compare(pool: pl.DataFrame, k: int) -> list[dict]:
    carriers = set(pool.filter(pl.col("fh_carrier") == 1)["patient_id"].to_list())
    rows = []
    for name, order in rankings(pool).items():
        row = {"ranking": name}
        for label, n in (("K/2", max(k // 2, 1)), ("K", k), ("2K", 2 * k)):
            found = len(carriers.intersection(order.head(n).to_list()))
            row[f"found@{label}"] = found
            row[f"ppv@{label}"] = round(found / n, 4)
            row[f"sensitivity@{label}"] = round(found / max(len(carriers), 1), 4)
        rows.append(row)
    return rows


def heldout_pool(db_path: Path, truth_path: Path) -> pl.DataFrame:
    """Everyone a worklist could list: scored, not excluded, with rule results and truth."""
    con = db.connect(db_path, read_only=True)
    try:
        table = con.execute(
            """
            SELECT r.*, s.probability FROM rule_results r
            JOIN model_scores s USING (patient_id)
            WHERE r.excluded_reason IS NULL
            """
        ).pl()
    finally:
        con.close()
    return table.join(labels.truth_labels(truth_path), on="patient_id", how="left").with_columns(
        pl.col("fh_carrier").fill_null(0)
    )


def capacity_k(settings: Settings, weeks: int) -> int:
    return weeks * sum(c.weekly_capacity for c in settings.clinics if not c.paediatric)


def comparison_models(truth_region: Path | None, seed: int) -> dict:
    """The baseline artefact, and (when a synthetic training region is given) the boosted
    model trained on that region's ground truth instead of practice labels."""

    models = {}
    try:
        models["baseline_probability"] = artefact.load("models/fh_baseline")
    except Exception as exc:  # evaluation still runs without the baseline artefact
        models["baseline_probability"] = None
        print(f"baseline model not evaluated: {exc}")
    if truth_region is not None:
        table = train.training_table(truth_region / "train.duckdb", HELDOUT_AS_OF,
                                     truth=truth_region / "region" / "ground_truth" / "truth.parquet")
        table = table.with_columns(pl.col("fh_carrier").fill_null(0))
        models["truth_trained_probability"] = train.fit(table, "fh_gbm", seed, target="fh_carrier", pu=False)
    return {k: v for k, v in models.items() if v is not None}


def other_model_scores(db_path: Path, models: dict) -> pl.DataFrame:

    con = db.connect(db_path, read_only=True)
    try:
        features = con.execute("SELECT * FROM patient_features").pl()
    finally:
        con.close()
    out = features.select("patient_id")
    for column, (estimator, meta) in models.items():
        meta = dict(meta, version=meta.get("version", "comparison"))
        scored = score_frame(features, estimator, meta).select("patient_id", pl.col("probability").alias(column))
        out = out.join(scored, on="patient_id", how="left")
    return out


def subgroups(pool: pl.DataFrame) -> list[dict]:
    """Model discrimination and calibration by sex and age band (equity check)."""
    banded = pool.with_columns(
        pl.when(pl.col("age_years") < 40).then(pl.lit("18-39"))
        .when(pl.col("age_years") < 60).then(pl.lit("40-59")).otherwise(pl.lit("60+")).alias("age_band")
    )
    rows = []
    for column, values in (("sex", ["F", "M"]), ("age_band", ["18-39", "40-59", "60+"])):
        for value in values:
            part = banded.filter(pl.col(column) == value)
            rows.append({"group": f"{column}={value}", **discrimination(part, "probability")})
    return rows


def evaluate(out: Path, settings: Settings, n_patients: int, seed: int, weeks: int = 4,
             truth_region: Path | None = None) -> dict:
    """Generate the held-out region, run the nightly job up to scoring, compare rankings."""

    out = Path(out).resolve()
    db_path = out / "heldout.duckdb"
    truth_file = out / "heldout" / "ground_truth" / "truth.parquet"
    steps = EVALUATED_STEPS
    if db_path.exists() and truth_file.exists():
        steps = ("score",)  # same region again: only the model under test is re-applied
    else:
        generate(out=out / "heldout", n_patients=n_patients, seed=seed, as_of=HELDOUT_AS_OF,
                 fmt="parquet", dialect="plain", nights=1, params_file=SHIFT_FILE)
    extract = out / "heldout" / "extracts" / HELDOUT_AS_OF.isoformat()
    ctx = prepare(extract, db_path, out / "heldout-run", HELDOUT_AS_OF, settings)
    for step in steps:
        execute_step(ctx, step)
    pool = heldout_pool(db_path, truth_file)
    pool = pool.join(other_model_scores(db_path, comparison_models(truth_region, seed=7)), on="patient_id", how="left")
    k = capacity_k(settings, weeks)
    result = {
        "heldout": {"patients": n_patients, "seed": seed, "shift": SHIFT_FILE.name,
                    "eligible": pool.height, "carriers_in_pool": int(pool["fh_carrier"].sum())},
        "k": k,
        "k_definition": f"{weeks} weeks of the adult lipid clinics' weekly capacity",
        "table": compare(pool, k),
        "ece": round(expected_calibration_error(pool["probability"].to_numpy(), pool["fh_carrier"].to_numpy()), 4),
        "discrimination": {c: discrimination(pool, c) for c in
                           ("probability", "baseline_probability", "truth_trained_probability") if c in pool.columns},
        "subgroups": subgroups(pool.filter(pl.col("age_years") >= 18)),
    }
    files.write_text(out / "evaluation.json", json.dumps(result, indent=2))
    files.write_text(out / "evaluation.md", markdown_table(result))
    return result


def markdown_table(result: dict) -> str:
    k = result["k"]
    lines = [
        f"Held-out region: {result['heldout']['patients']:,} people (seed {result['heldout']['seed']}, "
        f"shifted parameters), {result['heldout']['eligible']:,} eligible, "
        f"{result['heldout']['carriers_in_pool']} true carriers among them. K = {k} ({result['k_definition']}).",
        "",
        f"| ranking | found@K/2 ({k // 2}) | PPV@K/2 | found@K ({k}) | PPV@K | sens@K | found@2K ({2 * k}) | PPV@2K |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["table"]:
        lines.append(
            f"| {r['ranking']} | {r['found@K/2']} | {r['ppv@K/2']:.3f} | {r['found@K']} | {r['ppv@K']:.3f} | "
            f"{r['sensitivity@K']:.3f} | {r['found@2K']} | {r['ppv@2K']:.3f} |"
        )
    lines += ["", f"Expected calibration error of the model probability (10 bins): {result['ece']:.4f}", "",
              "| model | ROC-AUC | PR-AUC | ECE |", "|---|---|---|---|"]
    for name, d in result.get("discrimination", {}).items():
        lines.append(f"| {name} | {d['roc_auc']} | {d['pr_auc']} | {d['ece']} |")
    lines += ["", "| group (adults) | people | carriers | ROC-AUC | PR-AUC | ECE |", "|---|---|---|---|---|---|"]
    for g in result.get("subgroups", []):
        lines.append(f"| {g['group']} | {g['n']:,} | {g['carriers']} | {g['roc_auc']} | {g['pr_auc']} | {g['ece']} |")
    return "\n".join(lines) + "\n"
