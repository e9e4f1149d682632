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

from fh_screen import db, files
from fh_screen.config import Settings
from fh_screen.ml import labels

SHIFT_FILE = Path(__file__).resolve().parents[1] / "synth" / "shifted_region.yaml"
HELDOUT_AS_OF = date(2026, 11, 23)


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


def rankings(pool: pl.DataFrame) -> dict[str, pl.Series]:
    """Patient ids in ranked order for each strategy (best first)."""
    from fh_screen.referrals import rank_order

    def by(*keys: str) -> pl.Series:
        return pool.sort(list(keys), descending=True, nulls_last=True)["patient_id"]

    return {
        "top-K by highest LDL-C": by("ldl_max_mmol"),
        "lab flag (then LDL-C)": pool.with_columns(pl.col("lab_flag").fill_null(False).cast(pl.Int8))
        .sort(["lab_flag", "ldl_max_mmol"], descending=True, nulls_last=True)["patient_id"],
        "DLCN points (>= 6 first)": by("dlcn_points", "ldl_untreated_estimate_mmol"),
        "ML model probability": by("probability"),
        "worklist ranking": rank_order(pool),
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


def evaluate(out: Path, settings: Settings, n_patients: int, seed: int, weeks: int = 4) -> dict:
    """Generate the held-out region, run the nightly job on it, compare rankings."""
    from fh_screen.run import run
    from fh_screen.synth import generate

    out = Path(out).resolve()
    synth = generate(out=out / "heldout", n_patients=n_patients, seed=seed, as_of=HELDOUT_AS_OF,
                     fmt="parquet", dialect="plain", nights=1, params_file=SHIFT_FILE)
    db_path = out / "heldout.duckdb"
    run(Path(synth["extract_dirs"][0]), db_path, out / "heldout-run", HELDOUT_AS_OF, settings)
    truth = Path(synth["ground_truth"])
    truth_file = truth / "truth.parquet" if truth.is_dir() else truth
    pool = heldout_pool(db_path, truth_file)
    k = capacity_k(settings, weeks)
    result = {
        "heldout": {"patients": n_patients, "seed": seed, "shift": SHIFT_FILE.name,
                    "eligible": pool.height, "carriers_in_pool": int(pool["fh_carrier"].sum())},
        "k": k,
        "k_definition": f"{weeks} weeks of the adult lipid clinics' weekly capacity",
        "table": compare(pool, k),
        "ece": round(expected_calibration_error(pool["probability"].to_numpy(), pool["fh_carrier"].to_numpy()), 4),
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
    lines += ["", f"Expected calibration error of the model probability (10 bins): {result['ece']:.4f}", ""]
    return "\n".join(lines)
