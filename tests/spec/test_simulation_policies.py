"""The pilot simulator's calendar (``synth.simulate``): how many nights a number of months
is, and after which nights a delivery is written and the job runs. One table row per case."""

from __future__ import annotations

import pytest

from fh_screen.synth.simulate import delivery_due, simulated_nights


@pytest.mark.parametrize(
    "months, every_nights, nights",
    [
        (1, 7, 35),        # 30.44 days -> 30 -> five whole weeks
        (1, 1, 30),        # every night: no rounding up
        (12, 7, 371),      # 365.25 -> 365 -> 53 weeks
        (12, 1, 365),
        (0.25, 7, 14),     # 7.6 days -> 8 -> two weeks, so the last delivery is a whole week too
        (0.23, 7, 7),      # 7.0 days: exactly one week
        (1, 30, 30),
        (1, 31, 31),       # one interval longer than the period
    ],
)
def test_the_pilot_lasts_whole_delivery_intervals(months, every_nights, nights):
    assert simulated_nights(months, every_nights) == nights


@pytest.mark.parametrize(
    "night, last_delivery, every_nights, nights, has_labs, due",
    [
        (5, 0, 7, 35, True, False),    # six nights since the last delivery
        (6, 0, 7, 35, True, True),     # seven: deliver
        (7, 0, 7, 35, True, True),     # later (a night without lab results held it back): deliver
        (6, 0, 7, 35, False, False),   # no lab result tonight: wait for the next night
        (12, 7, 7, 35, True, False),
        (13, 7, 7, 35, True, True),
        (30, 28, 7, 31, True, True),   # the last night always delivers
        (30, 28, 7, 31, False, False),  # ... if it has a lab result
        (0, 0, 1, 30, True, True),     # every night
    ],
)
def test_a_delivery_is_due_every_interval_and_on_the_last_night(night, last_delivery, every_nights, nights,
                                                                 has_labs, due):
    assert delivery_due(night, last_delivery, every_nights, nights, has_labs) is due
