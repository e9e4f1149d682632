"""Assessed referrals: what the region's lipid clinics concluded about the patients this
product listed, next to what the product forecast for them when it listed them.

A calibration check or fit needs forecast-outcome pairs: the forecast made *before* the
outcome was known. Tonight's probability of a patient the clinic assessed years ago is no
such forecast: since the assessment the patient is a known case (or ruled out), usually
treated, and the earlier referrals were made by other hands on other grounds. On the demo
region, O/E of clinic outcomes against tonight's probabilities of the 103 historically
assessed patients was 4.0: the features had moved after the outcome (a confirmed
patient's LDL-C is on treatment), not the model's calibration. Only assessments that
follow a listing by this product count here, each with the linear predictor of the
probability shown at that listing (``referral_events.model_logit``, Steyerberg, *Clinical
Prediction Models*, 2nd ed. 2019, ch. 15: validation on the forecasts actually issued).
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference

# Clinic outcomes that are an assessment: confirmed (the rules' confirmed outcomes) or ruled out.
RULED_OUT = "not_fh"
LISTING_EVENTS = ("listed", "reminder")
SCHEMA = {"patient_id": pl.Utf8, "confirmed": pl.Int8, "probability": pl.Float64, "model_logit": pl.Float64}


def _tables(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                      [table]).fetchall()}


def assessed_referrals(con) -> pl.DataFrame:
    """patient_id, confirmed (1/0), probability and model_logit for every patient this product
    listed (a ``listed`` or ``reminder`` event with a model forecast) whose clinic assessment
    (the rules' confirmed outcomes, or ruled out) is dated on or after that listing: the
    first such assessment, with the forecast of the latest listing before it. Did-not-attend,
    declined and pending are not assessments. Empty before any listing has an outcome."""
    if not {"clinic_outcomes", "referral_events"} <= _tables(con) or "model_logit" not in _columns(
            con, "referral_events"):
        return pl.DataFrame(schema=SCHEMA)
    confirmed = reference.load("exclusions_v2")["confirmed_outcomes"]
    marks = ", ".join("?" for _ in confirmed)
    frame = con.execute(
        f"""
        WITH outcome AS (
            SELECT patient_id, outcome_date,
                   CASE WHEN outcome IN ({marks}) THEN 1 ELSE 0 END AS confirmed
            FROM clinic_outcomes WHERE outcome IN ({marks}, ?) AND outcome_date IS NOT NULL),
        listing AS (
            SELECT patient_id, as_of, probability, model_logit FROM referral_events
            WHERE event IN (?, ?) AND probability IS NOT NULL AND model_logit IS NOT NULL),
        paired AS (
            SELECT o.patient_id, o.outcome_date, o.confirmed,
                   arg_max(l.probability, l.as_of) AS probability, arg_max(l.model_logit, l.as_of) AS model_logit
            FROM outcome o JOIN listing l ON l.patient_id = o.patient_id AND l.as_of <= o.outcome_date
            GROUP BY o.patient_id, o.outcome_date, o.confirmed)
        SELECT patient_id, CAST(max(confirmed) AS TINYINT) AS confirmed, any_value(probability) AS probability,
               any_value(model_logit) AS model_logit
        FROM paired
        WHERE outcome_date = (SELECT min(outcome_date) FROM paired q WHERE q.patient_id = paired.patient_id)
        GROUP BY patient_id ORDER BY patient_id
        """,
        [*confirmed, *confirmed, RULED_OUT, *LISTING_EVENTS],
    ).pl()
    return frame.select([pl.col(c).cast(t) for c, t in SCHEMA.items()])
