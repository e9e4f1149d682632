"""Outcome recalibration as ``fhscreen evaluate`` exercises it (``training.multiworld``): how
far down the clinic order the clinics assess, and among whom calibration is measured before
and after. One table row per case."""

from __future__ import annotations

import numpy as np
import pytest

from fh_screen.training.multiworld import assessed_until_enough, high_band, measured_among
from fh_screen.training.validation import HIGH


@pytest.mark.parametrize(
    "carriers_in_order, min_events, min_non_events, assessed",
    [
        ([1, 0, 0], 1, 2, 3),             # the third patient brings the second ruled out
        ([1, 0, 0, 1], 1, 2, 3),          # and the clinics stop there
        ([0, 0, 1, 1], 1, 2, 3),          # confirmed reached last
        ([1, 0], 1, 2, None),             # one ruled out short: never enough
        ([0, 0, 0, 0], 1, 2, None),       # no confirmed case at all
        ([1, 1, 0, 0], 2, 2, 4),          # exactly the minimum of each
        ([1, 1, 0, 0], 3, 2, None),       # one confirmed short
        ([], 1, 1, None),                 # an empty order
    ],
)
def test_the_clinics_assess_until_enough_are_confirmed_and_ruled_out(carriers_in_order, min_events,
                                                                      min_non_events, assessed):
    assert assessed_until_enough(np.array(carriers_in_order, dtype=float), min_events, min_non_events) == assessed


@pytest.mark.parametrize(
    "pool_rows, carriers, assessed_rows, known, y, rest, was_assessed",
    [
        # in the pool, not known, not assessed: the people a probability is for
        ([0, 1, 2], [1, 0, 0], [], [0, 0, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]),
        ([0, 1, 2], [1, 0, 0], [1], [0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 1, 0]),   # assessed: out
        ([0, 1, 2], [1, 0, 0], [], [1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 0, 0]),    # a known case: out
        ([1, 2], [0, 1], [], [0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 0, 0]),          # not in the rules' pool: out, truth 0
    ],
)
def test_calibration_is_measured_among_the_pool_not_known_and_not_assessed(pool_rows, carriers, assessed_rows,
                                                                           known, y, rest, was_assessed):
    got_y, got_rest, got_assessed = measured_among(3, np.array(pool_rows, dtype=int), np.array(carriers),
                                                   np.array(assessed_rows, dtype=int), np.array(known, dtype=bool))
    assert got_y.tolist() == y
    assert got_rest.astype(int).tolist() == rest
    assert got_assessed.astype(int).tolist() == was_assessed


@pytest.mark.parametrize(
    "p, y, mask, people, oe",
    [
        ([HIGH - 0.01, HIGH, HIGH + 0.25], [1, 1, 0], [1, 1, 1], 2, round(1 / (HIGH + HIGH + 0.25), 3)),  # at and above
        ([HIGH - 0.01], [1], [1], 0, None),                  # just below: nobody, no O/E
        ([HIGH, 0.8], [1, 1], [0, 1], 1, round(1 / 0.8, 3)),  # outside the mask: not counted
    ],
)
def test_the_high_band_starts_at_the_validation_threshold(p, y, mask, people, oe):
    assert high_band(np.array(p), np.array(y, dtype=float), np.array(mask, dtype=bool)) == {"people": people, "oe": oe}
