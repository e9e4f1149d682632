"""A relative's LDL-C: one value, one rule, on every output (decision relative_ldl_one_value).

Before, the worklist used the highest estimate, the rule text said "measured, not corrected"
and the cascade the latest value, treated or not, so one person was "likely FH" on one output
and "unlikely" on another."""

from datetime import date, datetime

import polars as pl

from fh_screen.stages.cascade.step import relative_ldl, relative_status
from fh_screen.stages.features.build import build_features, make_inputs
from fh_screen.stages.rules import relatives_cutoffs_v1

AS_OF = date(2026, 11, 23)
PATIENTS = pl.DataFrame([{"patient_id": "R", "birth_date": date(1981, 2, 1), "sex": "M", "postcode": "5000",
                          "deceased_date": None, "moved_out_date": None}],
                        schema_overrides={"deceased_date": pl.Date, "moved_out_date": pl.Date})
# Untreated 5.6 at 40 (likely for a man 35-44: >= 4.8); later 2.4 on atorvastatin 40 (unlikely as measured).
LABS = pl.DataFrame([
    {"patient_id": "R", "result_id": "1", "sampled_at": datetime(2021, 3, 1, 8), "sample_date": date(2021, 3, 1),
     "analyte": "ldl", "method": "measured", "value": 5.6, "censored": None, "arrived_on": date(2021, 3, 2)},
    {"patient_id": "R", "result_id": "2", "sampled_at": datetime(2025, 3, 1, 8), "sample_date": date(2025, 3, 1),
     "analyte": "ldl", "method": "measured", "value": 2.4, "censored": None, "arrived_on": date(2025, 3, 2)},
], schema_overrides={"censored": pl.Utf8})
MEDS = pl.DataFrame([{"patient_id": "R", "atc_code": "C10AA05", "dispensed_on": date(2024, 12, 1 + k),
                      "strength_mg": 40.0} for k in range(2)])


def test_cascade_and_features_judge_a_relative_on_the_same_ldl():
    ldl = relative_ldl(LABS, MEDS, PATIENTS)
    assert ldl.select("ldl_mmol", "ldl_basis", "ldl_date").row(0) == (5.6, "measured_untreated", date(2021, 3, 1))
    rel = pl.DataFrame({"index_patient_id": ["I"], "relative_id": ["R"], "relationship": ["sibling"],
                        "degree": [1], "via_id": [None]}, schema_overrides={"via_id": pl.Utf8, "degree": pl.Int32})
    empty_out = pl.DataFrame(schema={"patient_id": pl.Utf8, "outcome": pl.Utf8, "outcome_date": pl.Date,
                                     "outcome_arrived_on": pl.Date})
    empty_dx = pl.DataFrame(schema={"patient_id": pl.Utf8, "fh_diagnosed_on": pl.Date, "dx_arrived_on": pl.Date})
    row = relative_status(rel, PATIENTS, empty_out, empty_dx, ldl, AS_OF).row(0, named=True)
    assert (row["status"], row["result"], row["result_date"]) == ("tested", "likely", date(2021, 3, 1))
    assert "measured untreated" in row["status_detail"]

    inputs = make_inputs(patients=PATIENTS.select("patient_id", "birth_date", "sex"),
                         lab_results=LABS.drop("censored", "arrived_on"), medications=MEDS)
    f = build_features(inputs, AS_OF).row(0, named=True)
    assert f["ldl_untreated_estimate_mmol"] == 5.6
    category = pl.select(relatives_cutoffs_v1.category(pl.lit(f["ldl_untreated_estimate_mmol"]),
                                                       pl.lit(f["ldl_estimate_age"]), pl.lit("M"))).item()
    assert category == row["result"] == "likely"
