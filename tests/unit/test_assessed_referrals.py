"""Forecast-outcome pairs for calibration: only assessments that follow a listing by this
product count, each with the forecast shown at that listing (never tonight's probability)."""

import math
from datetime import date

import polars as pl
import pytest

from fh_screen.stages.metrics import monitoring
from fh_screen.stages.score.outcomes import assessed_referrals
from fh_screen.store import db


def store(tmp_path, outcomes, events, with_logit=True):
    """A store (the product's own schema) holding these clinic outcomes and listing events."""
    con = db.connect(tmp_path / "s.duckdb")
    con.execute(db.sql("referrals_schema"))
    for patient, outcome, on in outcomes:
        con.execute("INSERT INTO clinic_outcomes (patient_id, outcome, outcome_date, delivery_id) VALUES (?, ?, ?, 'd1')",
                    [patient, outcome, on])
    for as_of, patient, event, probability, logit in events:
        con.execute("INSERT INTO referral_events (as_of, patient_id, event, practice_id, rank, probability, route, "
                    "model_logit) VALUES (?, ?, ?, 'GP1', 1, ?, 'refer_lipid_clinic', ?)",
                    [as_of, patient, event, probability, logit])
    if not with_logit:  # a store whose listings predate the forecast column
        con.execute("ALTER TABLE referral_events DROP COLUMN model_logit")
    return con


def test_only_assessments_after_a_listing_count_with_the_forecast_of_that_listing(tmp_path):
    con = store(tmp_path, outcomes=[
        ("A", "fh_genetic", date(2026, 3, 1)),     # listed twice before: the later forecast counts
        ("B", "not_fh", date(2020, 5, 1)),         # assessed long before the product listed anyone
        ("C", "fh_clinical", date(2025, 1, 1)),    # listed only after the assessment
        ("D", "did_not_attend", date(2026, 3, 1)),  # not an assessment
        ("E", "not_fh", date(2026, 4, 1)),
        ("E", "fh_genetic", date(2026, 9, 1)),     # the first assessment after the listing counts
        ("F", "pending", date(2026, 3, 1)),
    ], events=[
        (date(2026, 1, 5), "A", "listed", 0.30, -0.8), (date(2026, 2, 5), "A", "queued", 0.90, 2.0),
        (date(2026, 2, 1), "A", "reminder", 0.40, -0.4), (date(2026, 6, 1), "A", "listed", 0.99, 4.0),
        (date(2026, 1, 1), "C", "listed", 0.50, 0.0), (date(2026, 1, 1), "D", "listed", 0.20, -1.4),
        (date(2026, 1, 1), "E", "listed", 0.25, -1.1), (date(2026, 1, 1), "F", "listed", 0.60, 0.4),
    ])
    try:
        out = assessed_referrals(con)
    finally:
        con.close()
    assert out.to_dicts() == [
        {"patient_id": "A", "confirmed": 1, "probability": 0.40, "model_logit": -0.4},
        {"patient_id": "E", "confirmed": 0, "probability": 0.25, "model_logit": -1.1},
    ]


def test_a_store_without_listings_or_without_the_forecast_column_has_no_pairs(tmp_path):
    con = store(tmp_path, outcomes=[("A", "fh_genetic", date(2026, 3, 1))],
                events=[(date(2026, 1, 1), "A", "listed", 0.3, 0.0)], with_logit=False)
    try:
        assert assessed_referrals(con).height == 0
    finally:
        con.close()


def test_historical_assessments_raise_no_calibration_alert(tmp_path):
    # The demo's situation: clinic outcomes from before the product, none of a listing. The
    # old monitor set them against tonight's probabilities and raised "O/E 4.0".
    con = store(tmp_path, outcomes=[(f"P{i}", "fh_clinical" if i < 40 else "not_fh", date(2015, 1, 1))
                                    for i in range(100)], events=[])
    try:
        assessed = assessed_referrals(con)
    finally:
        con.close()
    scores = pl.DataFrame({"patient_id": [f"P{i}" for i in range(1000)], "probability": [0.004] * 1000,
                           "known_case": [False] * 1000})
    out = monitoring.monitor(scores, assessed, 1 / 250)
    assert "assessed" not in out and out["alerts"] == []


def test_oe_among_assessed_uses_the_probability_shown_at_listing():
    scores = pl.DataFrame({"patient_id": ["A", "B"], "probability": [0.001, 0.001], "known_case": [True, False]})
    assessed = pl.DataFrame({"patient_id": ["A", "B"], "confirmed": [1, 0], "probability": [0.6, 0.4],
                             "model_logit": [0.4, -0.4]}, schema_overrides={"confirmed": pl.Int8})
    out = monitoring.monitor(scores, assessed, 1 / 250)
    assert out["assessed"]["expected"] == pytest.approx(1.0)
    assert out["assessed"]["oe"] == pytest.approx(1.0) and not math.isnan(out["assessed"]["oe"])
