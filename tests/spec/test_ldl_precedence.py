"""Which LDL-C scores (ldl_estimation_v2: ldl_precedence, ldl_time_to_effect, ldl_factor_cap,
ldl_provenance_shown), end to end from curated rows through the features to the DLCN and its
reasons. Cut-offs are tested at, below and above."""

from datetime import date, datetime, timedelta

import pytest

from fh_screen.stages.features.build import build_features, make_inputs
from fh_screen.stages.rules.results import score

AS_OF = date(2026, 11, 23)
_ids = iter(range(10**6))


def ldl(day: date, value: float) -> dict:
    return {"patient_id": "A", "result_id": f"r{next(_ids)}", "analyte": "ldl", "method": "measured",
            "value": value, "sampled_at": datetime(day.year, day.month, day.day, 8)}


def disp(day: date, atc: str, mg: float | None) -> dict:
    return {"patient_id": "A", "atc_code": atc, "dispensed_on": day, "strength_mg": mg}


def run(labs, meds=()) -> tuple[dict, dict]:
    inputs = make_inputs(patients=[{"patient_id": "A", "birth_date": date(1970, 3, 1), "sex": "F"}],
                         lab_results=labs, medications=list(meds))
    features = build_features(inputs, AS_OF)
    return features.row(0, named=True), score(features).row(0, named=True)


def test_measured_untreated_value_scores_not_a_later_on_treatment_estimate():
    # The demo's rank-1 patient: untreated 6.3, later 5.3 on atorvastatin 20 mg (x1.764 = 9.35).
    start = date(2022, 1, 10)
    f, r = run([ldl(date(2021, 6, 1), 6.3), ldl(date(2022, 6, 1), 5.3)],
               [disp(start + timedelta(days=90 * k), "C10AA05", 20) for k in range(3)])
    assert (f["ldl_untreated_estimate_mmol"], f["ldl_estimate_basis"]) == (6.3, "measured_untreated")
    assert (r["dlcn_ldl_points"], r["dlcn_points"], r["dlcn_category"]) == (3, 3, "possible")
    assert "LDL-C used for scoring: 6.3 mmol/L measured untreated on 2021-06-01" in r["reasons"]
    assert "Measured untreated LDL-C 6.3 mmol/L is in the band 5.0 to under 6.5 mmol/L (+3)".lower() in \
        r["reasons"].lower()


def test_without_an_untreated_value_the_estimate_scores_with_its_factor_and_table():
    start = date(2022, 1, 10)
    f, r = run([ldl(date(2022, 6, 1), 5.3)], [disp(start + timedelta(days=90 * k), "C10AA05", 20) for k in range(3)])
    assert f["ldl_estimate_basis"] == "estimated_from_treated"
    assert f["ldl_untreated_estimate_mmol"] == pytest.approx(5.3 * 1.763668)
    assert ("estimated untreated 9.35 mmol/L from 5.3 mmol/L on 2022-06-01 at age 52 on atorvastatin 20 mg "
            "(x1.764, rdrf table)") in r["reasons"]


@pytest.mark.parametrize("days, basis, factor", [
    (27, "measured_early_treatment", 1.0),      # below: the statin has not acted yet
    (28, "estimated_from_treated", 1.763668),   # at
    (29, "estimated_from_treated", 1.763668),   # above
])
def test_time_to_effect_28_days_after_the_episode_began(days, basis, factor):
    first = date(2024, 3, 1)
    f, r = run([ldl(first + timedelta(days=days), 5.0)], [disp(first, "C10AA05", 20)])
    assert (f["ldl_estimate_basis"], f["ldl_correction_factor"]) == (basis, pytest.approx(factor))
    assert f["ldl_untreated_estimate_mmol"] == pytest.approx(5.0 * factor)
    if basis == "measured_early_treatment":
        assert f"{days} days after starting atorvastatin 20 mg: too early for the drug to act" in r["reasons"]


def test_a_restart_after_a_gap_is_a_new_episode():
    # Treated in 2020, stopped; restarted 3 days before the sample: not corrected.
    f, _ = run([ldl(date(2024, 3, 4), 5.0)], [disp(date(2020, 1, 1), "C10AA05", 20), disp(date(2024, 3, 1), "C10AA05", 20)])
    assert (f["ldl_estimate_basis"], f["ldl_correction_factor"]) == ("measured_early_treatment", 1.0)


@pytest.mark.parametrize("atc, mg, factor, capped", [
    ("C10AA07", 40, 2.314815, False),   # below the cap
    ("C10BA05", 80, 2.5, False),        # at the cap (atorvastatin 80 + ezetimibe, rdrf 2.5)
    ("C10AA07", 80, 2.5, True),         # above: rosuvastatin 80, rdrf 2.625
    ("C10BA06", 40, 2.5, True),         # above: rosuvastatin 40 + ezetimibe, rdrf 3.333
])
def test_correction_factor_is_capped_at_2_5(atc, mg, factor, capped):
    first = date(2023, 1, 1)
    f, r = run([ldl(date(2024, 1, 1), 3.0)], [disp(first + timedelta(days=90 * k), atc, mg) for k in range(5)])
    assert f["ldl_correction_factor"] == pytest.approx(factor)
    assert ("capped at 2.5" in f["ldl_correction_source"]) is capped
    assert ("capped at 2.5" in r["reasons"]) is capped
