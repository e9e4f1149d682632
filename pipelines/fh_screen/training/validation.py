"""External validation of a scorer on one held-out world: discrimination, what the clinics'
order finds at fixed capacities against the rules, calibration and clinical usefulness.

Figures (TRIPOD+AI; Steyerberg, *Clinical Prediction Models*, 2nd ed. 2019):
* AUC (ROC);
* carriers found among the first K people of each ordering, K = 100, 250, 500;
* observed/expected (O/E) carriers overall and among people shown p >= 0.5;
* calibration slope (logistic regression of truth on logit p) and calibration-in-the-large
  (its intercept with the slope fixed at 1);
* expected calibration error over equal-mass bins (each bin the same number of people, so the
  few high probabilities are not averaged away by the many low ones);
* net benefit at the clinics' probability threshold (decision curve analysis, Vickers &
  Elkin, Med Decis Making 2006): TP/n - FP/n x pt/(1 - pt), against referring everyone.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from fh_screen.stages.referrals.step import rank_candidates
from fh_screen.stages.score.calibration import expit, logit, outcome_fit

KS = (100, 250, 500)
HIGH = 0.5
ECE_BINS = 10
OE_RANGE = (0.67, 1.5)
CARRIER_RATIO = 1.5


def calibration_in_the_large(p: np.ndarray, y: np.ndarray) -> float:
    """Intercept a of logit P(y) = a + logit(p) (slope fixed at 1); 0 is perfect."""
    z, a = logit(p), 0.0
    for _ in range(100):
        q = expit(a + z)
        step = (y - q).sum() / max((q * (1 - q)).sum(), 1e-12)
        a += step
        if abs(step) < 1e-10:
            break
    return float(a)


def equal_mass_ece(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Weighted mean |observed - predicted| over bins of equal size after sorting by p."""
    order = np.argsort(p, kind="stable")
    parts = np.array_split(order, bins)
    return float(sum(len(b) * abs(y[b].mean() - p[b].mean()) for b in parts if len(b)) / max(len(p), 1))


def net_benefit(p: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    n = max(len(p), 1)
    refer = p >= threshold
    weight = threshold / (1 - threshold)
    tp, fp = int((refer & (y == 1)).sum()), int((refer & (y == 0)).sum())
    everyone = y.sum() / n - (n - y.sum()) / n * weight
    return {"threshold": threshold, "model": round(tp / n - fp / n * weight, 6),
            "refer_everyone": round(float(everyone), 6), "refer_none": 0.0}


def observed_expected(p: np.ndarray, y: np.ndarray) -> float | None:
    return round(float(y.sum() / p.sum()), 3) if p.sum() > 0 else None


def found_at(order: pl.Series, carriers: set, k: int) -> int:
    return len(carriers.intersection(order.head(k).to_list()))


def world_figures(pool: pl.DataFrame, column: str, rule_orders: dict[str, pl.Series], model_order: pl.Series,
                  threshold: float) -> dict:
    """All figures for one scorer's probability ``column`` on one world's ``pool``
    (columns patient_id, fh_carrier, ``column``); ``model_order`` is the clinics' order."""
    y = pool["fh_carrier"].to_numpy().astype(float)
    p = pool[column].to_numpy()
    carriers = set(pool.filter(pl.col("fh_carrier") == 1)["patient_id"].to_list())
    high = p >= HIGH
    slope = outcome_fit(logit(p), y)[1] if 0 < y.sum() < len(y) else None
    found = {k: found_at(model_order, carriers, k) for k in KS}
    rules = {name: {k: found_at(order, carriers, k) for k in KS} for name, order in rule_orders.items()}
    best = {k: max(r[k] for r in rules.values()) for k in KS}
    return {
        "people": int(len(y)), "carriers": int(y.sum()),
        "auc": round(float(roc_auc_score(y, p)), 3) if 0 < y.sum() < len(y) else None,
        "found": found, "rules": rules, "best_rule": best,
        "ratio": {k: round(found[k] / best[k], 2) if best[k] else None for k in KS},
        "expected": round(float(p.sum()), 1), "observed": int(y.sum()),
        "oe": observed_expected(p, y),
        "high_n": int(high.sum()), "high_observed": int(y[high].sum()), "high_expected": round(float(p[high].sum()), 1),
        "oe_high": observed_expected(p[high], y[high]),
        "citl": round(calibration_in_the_large(p, y), 3), "slope": round(slope, 3) if slope is not None else None,
        "ece_equal_mass": round(equal_mass_ece(p, y), 4),
        "net_benefit": net_benefit(p, y, threshold),
    }


def meets_targets(fig: dict) -> dict:
    """Whether one world's figures meet the acceptance targets (O/E in range overall and
    among p >= 0.5, the clinics' order at least 1.5x the best rule at every K)."""
    lo, hi = OE_RANGE
    in_range = lambda v: v is not None and lo <= v <= hi  # noqa: E731
    return {"oe": in_range(fig["oe"]), "oe_high": in_range(fig["oe_high"]),
            **{f"ratio@{k}": fig["ratio"][k] is not None and fig["ratio"][k] >= CARRIER_RATIO for k in KS}}


def clinic_order(pool: pl.DataFrame, threshold: float, adult_age: int = 18) -> pl.Series:
    """Patient ids in the order the lipid clinics would take them: the candidates the referrals
    step selects (the rules' one selection rule, or probability >= ``threshold`` together with
    a clinical criterion: the model never refers alone), adults only (the adult model does not
    score children), in the worklist ranking; tonight's list and then the waiting queue follow
    this order. Nobody outside the candidates is ever referred, so at a K above their number
    the order finds no more carriers."""
    candidates = pool.filter(
        (pl.col("selected_by_rules").is_not_null()
         | ((pl.col("probability") >= threshold).fill_null(False) & pl.col("clinical_criterion").fill_null(False)))
        & (pl.col("age_years") >= adult_age).fill_null(True))
    return rank_candidates(candidates)["patient_id"]


def rankings(pool: pl.DataFrame) -> dict[str, pl.Series]:
    """Patient ids in ranked order for each strategy (best first). Rule-based rankings get
    their best case: each orders the whole pool by its own key (e.g. DLCN points, then
    estimated untreated LDL-C), not only those above its cut-off, so they always fill K."""

    def by(*keys: str) -> pl.Series:
        return pool.sort(list(keys), descending=True, nulls_last=True)["patient_id"]

    return {
        "top-K by highest LDL-C": by("ldl_max_mmol"),
        "lab flag (then LDL-C)": pool.with_columns(pl.col("lab_flag").fill_null(False).cast(pl.Int8))
        .sort(["lab_flag", "ldl_max_mmol"], descending=True, nulls_last=True)["patient_id"],
        "DLCN points (>= 6 first)": by("dlcn_points", "ldl_untreated_estimate_mmol"),
    }
