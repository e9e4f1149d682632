"""From the model's score to a probability for the region the scorer runs in.

The boosted model learns P(labelled | x): how likely a person is to be an already known FH
case. That is a ranking, not a probability of FH, and the share of carriers a region has
already found differs from region to region. The probability shown is therefore

    p(x) = expit(a + b * logit(g(x)))

where g is the model's score, b (the slope) was estimated on the synthetic training
worlds' ground truth, and a (the intercept) is set in each region, every night, from what
the region itself has (``docs/model-calibration.md``):

* **Before local outcomes: a prior-shift (intercept) update.** ``a`` is chosen so that the
  expected carriers among the scored people who are not yet known cases (no FH diagnosis
  code, no confirmed clinic outcome) equal ``metrics.expected_prevalence`` x their number.
  Known cases are left out of both sides: they are carriers the region has found (or
  believes it has), and their probability is not a forecast. That tested people not yet
  known carry FH at about the population rate is an assumption: carriers are more often
  tested, and the known cases removed are mostly carriers; on the synthetic training and
  selection worlds the two offset to observed/expected 0.69-1.29 (model card). For a known
  new prior the label-shift correction of Saerens, Latinne & Decaestecker (Neural
  Computation 2002) is exactly such a shift of the log-odds; their EM variant estimates the
  new prior from the score distribution instead, which needs posteriors calibrated in the
  source population. Scores learnt from labelled-vs-unlabelled are not, so the prior is
  taken from the region's configured prevalence rather than estimated.
* **As clinic outcomes accrue: the slope from outcomes, the intercept still from the
  prevalence.** Logistic recalibration (intercept and slope, Steyerberg 2019 ch. 15) is fitted
  on the patients this product listed whose assessment followed the listing
  (``fh_genetic``/``fh_clinical`` = 1, ``not_fh`` = 0; did-not-attend, declined and pending are
  not outcomes; ``outcomes.assessed_referrals``), each with the model's score *at that
  listing* (``referral_events.model_logit``): tonight's score of a patient assessed months
  ago is no forecast, since diagnosis and treatment have changed the inputs since. The score
  at listing goes through tonight's prior-shift mapping, so the fit is of the outcome on the
  linear predictor the region would use tonight. Its slope is used; its intercept is not:
  the intercept is set again, as before outcomes, so that expected carriers among the not yet
  known equal the configured prevalence. Why: the assessed are the top of the clinics' order,
  and an intercept fitted there extrapolates to the 99% of people below it. Measured on a
  200,000-person synthetic world where the clinics assessed the first 209 patients of the
  order (109 confirmed): the full fit moved O/E among the eligible people nobody assessed
  from 0.88 to 2.45; the slope with the prevalence-anchored intercept gave 1.09, and 0.92
  among those shown p >= 0.5 (model card, "Outcome recalibration"). The fit is only used
  from ``MIN_EVENTS`` confirmed and ``MIN_NON_EVENTS`` ruled-out people (Collins, Ogundimu
  & Altman, Stat Med 2016: at least 100 events for a validation) and is otherwise logged
  but not used.

The result is bounded to ``PROBABILITY_BOUNDS`` so that no stored probability is 0 or 1: at
the top, no validation set of this project has the thousands of people that a claim above
99.9% would need; at the bottom the bound only keeps the value positive (worklists print
anything below 1% as "< 1 %"), and is small enough not to add expected carriers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

PROBABILITY_BOUNDS = (1e-6, 0.999)
SCORE_EPSILON = 1e-9       # keeps logit(g) finite when a calibrated score rounds to 0 or 1
MIN_EVENTS = 100           # confirmed FH among assessed referrals before the outcome fit is used
MIN_NON_EVENTS = 100       # ruled-out among assessed referrals, likewise
OUTCOME_METHOD = "outcome_slope_prevalence_intercept"


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), SCORE_EPSILON, 1.0 - SCORE_EPSILON)
    return np.log(p) - np.log1p(-p)


def expit(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def bounded(p: np.ndarray) -> np.ndarray:
    return np.clip(p, *PROBABILITY_BOUNDS)


@dataclass(frozen=True)
class Mapping:
    """p = expit(intercept + slope * logit(score)), bounded."""

    intercept: float
    slope: float

    def apply(self, score: np.ndarray) -> np.ndarray:
        return bounded(expit(self.intercept + self.slope * logit(score)))


def intercept_for_expected(z: np.ndarray, slope: float, expected: float) -> float:
    """The intercept a with sum of the bounded expit(a + slope * z) = expected (monotone in a:
    bisection)."""
    if z.size == 0 or expected <= 0:
        return float("nan")
    expected = min(expected, 0.999 * z.size)
    lo, hi = -60.0, 60.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if bounded(expit(mid + slope * z)).sum() < expected:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


def expected_unknown_carriers(unknown: int, prevalence: float) -> float:
    """Expected carriers among ``unknown`` scored people not yet known as FH cases."""
    return prevalence * unknown


def outcome_fit(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Logistic recalibration: intercept and slope of y on the linear predictor z
    (Newton-Raphson, unpenalised; two parameters need no library)."""
    X = np.column_stack([np.ones_like(z), z])
    beta = np.zeros(2)
    for _ in range(50):
        p = expit(X @ beta)
        w = np.maximum(p * (1 - p), 1e-12)
        step = np.linalg.solve(X.T @ (X * w[:, None]) + 1e-9 * np.eye(2), X.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


@dataclass(frozen=True)
class RegionCalibration:
    """What the score step did to turn scores into probabilities tonight (run manifest)."""

    method: str
    intercept: float
    slope: float
    model_intercept: float
    model_slope: float
    expected_prevalence: float
    scored: int
    known_cases: int
    expected_unknown_target: float
    expected_carriers_after: float
    assessed: int
    assessed_confirmed: int
    outcome_fit: dict | None

    def mapping(self) -> Mapping:
        return Mapping(self.intercept, self.slope)

    def record(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def calibrate_region(score: np.ndarray, known: np.ndarray, assessed_y: np.ndarray, assessed_logit: np.ndarray,
                     model: Mapping, prevalence: float) -> RegionCalibration:
    """The mapping for this region tonight.

    Args:
        score: model score g(x) of every scored person.
        known: True for a scored person who is already an FH-coded or clinic-confirmed case.
        assessed_y, assessed_logit: clinic outcome (1 confirmed, 0 ruled out) of every
            assessed referral and logit of the model's score when it was listed.
        model: the artefact's own mapping (its slope is kept by the prior-shift update).
        prevalence: the region's ``metrics.expected_prevalence``.
    """
    z = logit(score)
    unknown = ~np.asarray(known, dtype=bool)
    target = expected_unknown_carriers(int(unknown.sum()), prevalence)
    intercept = intercept_for_expected(z[unknown], model.slope, target)
    method, slope, fit = "prior_shift_intercept", model.slope, None
    if not np.isfinite(intercept):
        method, intercept = "model_default", model.intercept
    events, non_events = int(assessed_y.sum()), int((1 - assessed_y).sum())
    if assessed_y.size:
        current = intercept + slope * np.asarray(assessed_logit, dtype=np.float64)
        a, b = outcome_fit(current, assessed_y.astype(np.float64))
        trusted = events >= MIN_EVENTS and non_events >= MIN_NON_EVENTS
        fit = {"intercept": round(a, 6), "slope": round(b, 6), "events": events, "non_events": non_events,
               "used": trusted}
        if trusted:  # the outcome slope on tonight's scale; the intercept anchored to the prevalence again
            anchored = intercept_for_expected(z[unknown], b * slope, target)
            if np.isfinite(anchored):
                method, intercept, slope = OUTCOME_METHOD, anchored, b * slope
    after = float(Mapping(intercept, slope).apply(score[unknown]).sum()) if unknown.any() else 0.0
    return RegionCalibration(
        method=method, intercept=float(intercept), slope=float(slope), model_intercept=model.intercept,
        model_slope=model.slope, expected_prevalence=prevalence, scored=int(score.size),
        known_cases=int((~unknown).sum()), expected_unknown_target=float(target), expected_carriers_after=after,
        assessed=int(assessed_y.size), assessed_confirmed=events, outcome_fit=fit,
    )
