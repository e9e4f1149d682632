"""A nightly run keeps, with every listing, the model score behind the probability shown, so
that clinic outcomes reported later pair with the forecast made before them."""

from __future__ import annotations

from datetime import date

import pytest

from fh_screen.app import run
from fh_screen.config import load_settings
from fh_screen.stages.score.calibration import expit
from fh_screen.stages.score.outcomes import assessed_referrals
from fh_screen.store import db
from fh_screen.synth import generate

AS_OF = date(2026, 11, 23)


def test_listings_carry_the_forecast_and_later_outcomes_pair_with_it(tmp_path):
    generate(out=tmp_path / "region", n_patients=3000, seed=16, as_of=AS_OF, fmt="parquet", nights=1)
    store = tmp_path / "store.duckdb"
    run.run(tmp_path / "region" / "extracts" / AS_OF.isoformat(), store, tmp_path / "out", AS_OF,
            settings=load_settings())
    con = db.connect(store)
    try:
        listed = con.execute("""SELECT e.patient_id, e.probability, e.model_logit, s.model_logit AS scored_logit
                                FROM referral_events e JOIN model_scores s USING (patient_id)
                                WHERE e.event = 'listed' AND e.probability IS NOT NULL""").fetchall()
        assert listed, "the run lists somebody with a model probability"
        for _, probability, logit, scored in listed:
            assert logit == pytest.approx(scored)          # the score behind tonight's probability
        # the clinic assesses the first two listed patients a month later
        for i, (patient, *_rest) in enumerate(listed[:2]):
            con.execute("INSERT INTO clinic_outcomes (patient_id, outcome_date, outcome, delivery_id) "
                        "VALUES (?, ?, ?, 'later')", [patient, date(2026, 12, 23), "fh_genetic" if i else "not_fh"])
        pairs = assessed_referrals(con)
    finally:
        con.close()
    assert pairs["patient_id"].to_list() == sorted(p for p, *_ in listed[:2])
    by_id = {p: (prob, logit) for p, prob, logit, _ in listed}
    for row in pairs.iter_rows(named=True):
        assert (row["probability"], row["model_logit"]) == by_id[row["patient_id"]]
        assert 0 < expit(row["model_logit"]) < 1
