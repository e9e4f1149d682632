"""Nightly calibration monitoring, the worklists' wording of a probability and the report's
calibration intervals."""

import math

import polars as pl
import pytest

from fh_screen.outputs import metrics_report, worklists
from fh_screen.stages.metrics import monitoring


def scores(p: list[float], known: list[bool]) -> pl.DataFrame:
    return pl.DataFrame({"patient_id": [f"P{i}" for i in range(len(p))], "probability": p, "known_case": known})


def test_expected_carriers_are_set_against_the_prevalence_expectation():
    # 1,001 scored, 1 known: 4 expected at 1/250 among the 1,000 not yet known
    s = scores([0.004] * 1000 + [0.9], [False] * 1000 + [True])
    none = pl.DataFrame(schema={"patient_id": pl.Utf8, "confirmed": pl.Int8})
    out = monitoring.monitor(s, none, 1 / 250)
    assert out["prevalence_expected_unknown"] == pytest.approx(4.0)
    assert out["model_expected_unknown"] == pytest.approx(4.0)
    assert out["expected_ratio"] == pytest.approx(1.0) and out["alerts"] == []
    # the same scores where 1 in 100 is expected: expected carriers 4 against 10
    assert monitoring.monitor(s, none, 1 / 100)["alerts"] == ["expected carriers 4.0 vs prevalence expectation 10.0"]
    assert "assessed" not in out


@pytest.mark.parametrize("assessed_n,confirmed,alert", [
    # 200 assessed at p = 0.5: 100 expected; outside 0.67-1.5 with an interval excluding 1 alerts
    (200, 66, True), (200, 67, False), (200, 150, False), (200, 151, True), (200, 40, True),
    # 20 assessed: 10 expected; 0.6 or 1.6 is within chance (interval spans 1), so no alarm
    (20, 6, False), (20, 16, False), (20, 2, True),
])
def test_alert_fires_when_oe_among_assessed_is_out_of_range_beyond_chance(assessed_n, confirmed, alert):
    s = scores([0.5] * assessed_n + [0.004] * 980, [False] * (assessed_n + 980))
    assessed = pl.DataFrame({"patient_id": [f"P{i}" for i in range(assessed_n)],
                             "confirmed": [1] * confirmed + [0] * (assessed_n - confirmed),
                             "probability": [0.5] * assessed_n}, schema_overrides={"confirmed": pl.Int8})
    out = monitoring.monitor(s, assessed, 1 / 50)
    oe = out["assessed"]["oe"]
    assert oe == pytest.approx(confirmed / (assessed_n / 2))
    assert any("assessed" in a for a in out["alerts"]) is alert
    lo, hi = out["assessed"]["oe_95ci"]
    assert lo < oe < hi


def test_poisson_interval_matches_the_exact_interval():
    lo, hi = monitoring.poisson_interval(10)
    assert lo == pytest.approx(4.795, abs=1e-3) and hi == pytest.approx(18.390, abs=1e-3)
    assert monitoring.poisson_interval(0)[0] == 0.0


@pytest.mark.parametrize("p,en,da", [
    (0.0, "< 1 %", "< 1 %"), (0.004, "< 1 %", "< 1 %"), (0.01, "1 %", "1 %"), (0.274, "27 %", "27 %"),
    (0.99, "99 %", "99 %"), (0.995, "> 99 %", "> 99 %"), (1.0, "> 99 %", "> 99 %"),
])
def test_a_probability_is_never_printed_as_zero_or_hundred_percent(p, en, da):
    assert worklists.percent(p, "en") == en and worklists.percent(p, "da") == da


def test_probability_text_names_the_band_and_its_observed_rate():
    rates = {"high": 0.37, "moderate": 0.062, "low": 0.0004}
    assert worklists.probability_text(0.274, "en", rates) == \
        "27 % (high: about 4 in 10 people like this had FH in validation)"
    assert worklists.probability_text(0.08, "en", rates) == \
        "8 % (moderate: about 6 in 100 people like this had FH in validation)"
    assert worklists.probability_text(0.002, "en", rates) == \
        "< 1 % (low: fewer than 1 in 100 people like this had FH in validation)"
    assert worklists.probability_text(0.7, "da", rates) == "70 % (meget høj)"   # no validated rate: no claim


def test_wilson_interval():
    lo, hi = metrics_report.wilson_interval(0.5, 20)
    assert lo == pytest.approx(0.2993, abs=1e-3) and hi == pytest.approx(0.7007, abs=1e-3)
    assert all(math.isnan(v) for v in metrics_report.wilson_interval(math.nan, 20))
