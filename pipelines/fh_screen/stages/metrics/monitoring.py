"""Nightly monitoring of the model's calibration in the region (the metrics step).

Two checks, both observed/expected (O/E) ratios that should stay near 1:
* **expected carriers vs the prevalence expectation**: the sum of tonight's probabilities
  among scored people not yet known as FH cases, against ``metrics.expected_prevalence`` x
  their number (the target of the score step's prior-shift update,
  ``stages.score.calibration``); a gap means the scores came from another calibration (an
  outcome fit, or a model switched without the update);
* **O/E among assessed referrals**, once clinic outcomes of this product's listings exist:
  confirmed FH against the sum of the probabilities shown when those patients were listed
  (``stages.score.outcomes.assessed_referrals``), with an exact Poisson 95% interval for the
  observed count (Garwood 1936). Tonight's probability of a patient assessed earlier is not
  a forecast of that assessment (the patient has since been diagnosed or ruled out and is
  often treated), and clinic outcomes of referrals made before the product are not
  forecasts of the product at all; comparing them raised "O/E 4.0" on the demo region,
  whose 103 historical assessments date from 1994 to 2026.
An alert (a warning in the run log and an entry under ``alerts`` in the run manifest) fires
when the expected-carriers ratio leaves ``ALERT_RANGE``, and when O/E among assessed referrals
leaves it while its 95% interval excludes 1: with a handful of assessed patients (a pilot's
first weeks) a ratio of 0.5 or 2 is chance as often as not, and an alarm a clinic learns to
ignore is worse than none. The ratio and its interval are recorded every night regardless.
"""

from __future__ import annotations

import polars as pl
from scipy.stats import chi2

from fh_screen.stages.score.calibration import expected_unknown_carriers

ALERT_RANGE = (0.67, 1.5)


def poisson_interval(observed: int, level: float = 0.95) -> tuple[float, float]:
    a = 1 - level
    lower = chi2.ppf(a / 2, 2 * observed) / 2 if observed > 0 else 0.0
    return float(lower), float(chi2.ppf(1 - a / 2, 2 * (observed + 1)) / 2)


def _ratio(observed: float, expected: float) -> float | None:
    return round(observed / expected, 3) if expected > 0 else None


def monitor(scores: pl.DataFrame, assessed: pl.DataFrame, prevalence: float) -> dict:
    """``scores``: model_scores (probability, known_case); ``assessed``: patient_id, confirmed and
    the probability shown at listing (``assessed_referrals``)."""
    lo, hi = ALERT_RANGE
    known = int(scores["known_case"].sum()) if scores.height else 0
    target = expected_unknown_carriers(scores.height - known, prevalence)
    expected = float(scores.filter(~pl.col("known_case"))["probability"].sum()) if scores.height else 0.0
    out = {"scored": scores.height, "known_cases": known, "expected_prevalence": prevalence,
           "prevalence_expected_unknown": round(target, 1),
           "model_expected_unknown": round(expected, 1), "expected_ratio": _ratio(expected, target),
           "alert_range": list(ALERT_RANGE), "alerts": []}
    if out["expected_ratio"] is not None and not lo <= out["expected_ratio"] <= hi:
        out["alerts"].append(f"expected carriers {expected:.1f} vs prevalence expectation {target:.1f}")
    if assessed.height:
        observed, expected_seen = int(assessed["confirmed"].sum()), float(assessed["probability"].sum())
        ci = poisson_interval(observed)
        out["assessed"] = {"people": assessed.height, "observed": observed, "expected": round(expected_seen, 1),
                           "oe": _ratio(observed, expected_seen),
                           "oe_95ci": [_ratio(ci[0], expected_seen), _ratio(ci[1], expected_seen)]}
        oe, (ci_lo, ci_hi) = out["assessed"]["oe"], out["assessed"]["oe_95ci"]
        if oe is not None and not lo <= oe <= hi and not ci_lo <= 1 <= ci_hi:
            out["alerts"].append(f"O/E among assessed referrals {oe} outside {lo}-{hi}")
    return out
