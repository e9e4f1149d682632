"""Region calibration of the score: prior shift to the configured prevalence, logistic
recalibration on assessed referrals only from a minimum count, never certainty."""

import numpy as np
import pytest

from fh_screen.stages.score import calibration as cal


def scores(n: int, seed: int = 0) -> np.ndarray:
    return cal.expit(np.random.default_rng(seed).normal(-6, 2, size=n))


def test_mapping_never_reaches_zero_or_one_even_for_extreme_scores():
    extreme = np.array([0.0, 1e-300, 1e-12, 0.5, 1 - 1e-12, 1.0])
    for slope in (0.1, 1.0, 5.0, 50.0):
        p = cal.Mapping(intercept=3.0, slope=slope).apply(extreme)
        assert np.all(p > 0) and np.all(p < 1)
        assert p.min() >= cal.PROBABILITY_BOUNDS[0] and p.max() <= cal.PROBABILITY_BOUNDS[1]


def test_scores_above_the_old_labelling_rate_keep_their_order():
    # The old model divided by c = 0.224 and clipped at 1: every score above c became 100 %.
    g = np.array([0.25, 0.4, 0.6, 0.9])
    p = cal.Mapping(intercept=-0.5, slope=1.0).apply(g)
    assert np.all(np.diff(p) > 0) and p.max() < 1


def test_prior_shift_makes_expected_unknown_carriers_match_the_prevalence_target():
    g = scores(20_000)
    known = np.zeros(g.size, bool)
    known[:30] = True
    record = cal.calibrate_region(g, known, np.zeros(0), np.zeros(0), cal.Mapping(0.0, 0.8), prevalence=1 / 250)
    assert record.method == "prior_shift_intercept"
    assert record.known_cases == 30
    assert record.expected_unknown_target == pytest.approx(19_970 / 250)   # the 30 known are left out
    assert record.expected_carriers_after == pytest.approx(19_970 / 250, rel=1e-3)
    assert record.slope == 0.8                                           # the prior shift keeps the slope


def test_prior_shift_follows_the_configured_prevalence():
    g = scores(10_000, seed=1)
    none = np.zeros(g.size, bool)
    low = cal.calibrate_region(g, none, np.zeros(0), np.zeros(0), cal.Mapping(0.0, 1.0), prevalence=1 / 500)
    high = cal.calibrate_region(g, none, np.zeros(0), np.zeros(0), cal.Mapping(0.0, 1.0), prevalence=1 / 200)
    assert high.intercept > low.intercept
    assert high.expected_carriers_after / low.expected_carriers_after == pytest.approx(2.5, rel=1e-3)


def test_known_cases_do_not_count_towards_the_expected_unknown_carriers():
    g = scores(10_000, seed=3)
    known = np.zeros(g.size, bool)
    known[np.argsort(-g)[:40]] = True                 # the highest scores are already known
    record = cal.calibrate_region(g, known, np.zeros(0), np.zeros(0), cal.Mapping(0.0, 1.0), prevalence=1 / 250)
    p = record.mapping().apply(g)
    assert p[~known].sum() == pytest.approx(9_960 / 250, rel=1e-3)
    assert p[known].min() > p[~known].max()           # known cases keep their place at the top


def test_outcome_fit_recovers_intercept_and_slope():
    rng = np.random.default_rng(3)
    z = rng.normal(-1, 1.5, size=20_000)
    y = (rng.random(z.size) < cal.expit(0.7 + 0.6 * z)).astype(float)
    a, b = cal.outcome_fit(z, y)
    assert a == pytest.approx(0.7, abs=0.08) and b == pytest.approx(0.6, abs=0.05)


@pytest.mark.parametrize("events,non_events,used", [
    (cal.MIN_EVENTS - 1, cal.MIN_NON_EVENTS, False),
    (cal.MIN_EVENTS, cal.MIN_NON_EVENTS - 1, False),
    (cal.MIN_EVENTS, cal.MIN_NON_EVENTS, True),
    (cal.MIN_EVENTS + 50, cal.MIN_NON_EVENTS + 50, True),
])
def test_outcome_recalibration_is_used_only_from_the_minimum_count(events, non_events, used):
    g = scores(5_000, seed=2)
    rng = np.random.default_rng(4)
    assessed_score = cal.expit(rng.normal(-1, 1, size=events + non_events))
    y = np.r_[np.ones(events), np.zeros(non_events)]
    record = cal.calibrate_region(g, np.zeros(g.size, bool), y, cal.logit(assessed_score), cal.Mapping(0.0, 1.0),
                                  1 / 250)
    assert record.outcome_fit["used"] is used
    assert record.method == (cal.OUTCOME_METHOD if used else "prior_shift_intercept")
    assert record.assessed == events + non_events and record.assessed_confirmed == events


def test_outcome_recalibration_takes_the_slope_from_outcomes_and_keeps_the_prevalence_anchor():
    # assessed referrals whose true risk is expit(1 + 0.5 * z) under tonight's mapping: the
    # slope halves; the intercept fitted among the assessed (the top of the order) would
    # have added 1 to everybody's log-odds, so it is set again from the prevalence
    rng = np.random.default_rng(5)
    g = scores(5_000, seed=6)
    assessed_score = cal.expit(rng.normal(-2, 1.5, size=3_000))
    base = cal.calibrate_region(g, np.zeros(g.size, bool), np.zeros(0), np.zeros(0), cal.Mapping(0, 1), 1 / 250)
    z = base.intercept + base.slope * cal.logit(assessed_score)
    y = (rng.random(z.size) < cal.expit(1 + 0.5 * z)).astype(float)
    record = cal.calibrate_region(g, np.zeros(g.size, bool), y, cal.logit(assessed_score), cal.Mapping(0, 1), 1 / 250)
    assert record.method == cal.OUTCOME_METHOD
    assert record.outcome_fit["intercept"] == pytest.approx(1.0, abs=0.15)
    assert record.slope == pytest.approx(0.5 * base.slope, abs=0.06)
    assert record.expected_carriers_after == pytest.approx(5_000 / 250, rel=1e-3)
    full_fit = cal.Mapping(record.outcome_fit["intercept"] + record.outcome_fit["slope"] * base.intercept,
                           record.outcome_fit["slope"] * base.slope)
    assert full_fit.apply(g).sum() > 1.5 * record.mapping().apply(g).sum()   # what the fitted intercept would do
