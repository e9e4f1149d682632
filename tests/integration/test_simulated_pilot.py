"""A simulated pilot, end to end: the evaluator report of its last run has every page filled
and agrees with what happened in the synthetic world.

Kept small for the suite: 2,500 people, three months, a delivery every 31 nights (four runs),
with faster and more willing GPs, patients and relatives than the cited defaults, and FH
twenty times as common among the region's founders, so that referrals of carriers, clinic
results and cascade tests all happen within the three months.

Tolerances (stated here, checked below):
* referred: the report's rounded count is within 2 of the truth (rounding to the nearest 5);
* attended and confirmed: within 2 + 10% (rounding, and the rare person whose latest clinic
  outcome comes from another pathway, e.g. a listed patient who is also a tested relative);
* family letters, relatives tested and relatives found to have FH, all per (index case,
  relative) pair as the report counts them: tested = any result after the letter of a
  relative not yet diagnosed when it went out (as the pipeline counts a closed loop);
  found = the carriers among them (the pipeline counts a genetic result or an LDL-C
  "likely" by the relatives' cut-offs, so a carrier with a low LDL-C is missed and a
  non-carrier with a high one counted): within 2 + 20%;
* new cases (confirmed + relatives found): within 2 + 20%;
* cost per new case: within 25% of the cost computed from the truth's units.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml

from fh_screen.app.run import run
from fh_screen.config import load_settings
from fh_screen.synth.simulate import simulate

FAST = {
    "gp": {"acts_on_list": 0.9},
    "patient": {"responds": 0.8},
    "clinic": {"visit_days_after_referral": [5, 15], "genetic_result_days_after_visit": [5, 10]},
    "cascade": {"tested_within_6_months": {"unaided": 0.8, "digital": 0.8, "direct": 0.8},
                "test_days_after_letter": [3, 20], "genetic_result_days_after_test": [5, 10]},
}


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pilot")
    params = folder / "fast.yaml"
    params.write_text(yaml.safe_dump(FAST))
    region = folder / "region.yaml"
    region.write_text(yaml.safe_dump({"genotype": {"founder_fh_prevalence": 0.08}}))
    result = simulate(folder / "sim", months=3, n_patients=2500, seed=7, start=date(2026, 1, 5), runner=run,
                      every_nights=31, params_file=params, settings=load_settings(), region_params=region)
    document = json.loads((Path(result["latest_run"]) / "metrics" / "pilot_metrics.json").read_text())
    return result, document, folder / "sim"


def near(value, truth, absolute, relative=0.0) -> bool:
    return abs(value - truth) <= absolute + relative * truth


def test_the_pipeline_never_reads_the_truth(pilot):
    result, _, folder = pilot
    assert result["runs"] == 4
    truth_dir = folder / "region" / "ground_truth"
    assert (truth_dir / "truth.parquet").exists()
    for extract in (folder / "region" / "extracts").iterdir():
        assert {p.stem for p in extract.iterdir()} <= {"patients", "lab_results", "medications", "diagnoses",
                                                      "relations", "family_history", "clinic_outcomes", "contacts"}


def test_every_headline_is_filled_and_rounded(pilot):
    _, document, _ = pilot
    head = document["headline"]
    for metric in ("population", "tested", "flagged", "referred", "attended", "confirmed",
                   "cascade_contacted", "cascade_tested", "cascade_positive", "new_cases"):
        assert head[metric]["status"] == "ok" and head[metric]["value"] > 0, metric
        assert head[metric]["value"] % 5 == 0, metric
    for metric in ("cost_per_new_case_dkk", "attended_share", "cascade_positive_share", "median_days_listed_to_visit"):
        assert head[metric]["status"] == "ok" and head[metric]["value"], metric


def test_report_agrees_with_the_synthetic_world(pilot):
    result, document, _ = pilot
    truth, head = result["truth"], document["headline"]
    assert near(head["referred"]["value"], truth["referred"], 2)
    assert near(head["attended"]["value"], truth["attended"], 2, 0.10)
    assert near(head["confirmed"]["value"], truth["confirmed"], 2, 0.10)
    assert near(head["cascade_contacted"]["value"], truth["family_letters"], 2, 0.20)
    assert near(head["cascade_tested"]["value"], truth["relatives_tested_any_reason"], 2, 0.20)
    assert near(head["cascade_positive"]["value"], truth["relatives_positive"], 2, 0.20)
    assert near(head["new_cases"]["value"], truth["confirmed"] + truth["relatives_positive"], 2, 0.20)
    costs = document["regions"][0]["unit_costs_dkk"]
    units = {"referred": truth["referred"], "attended": truth["attended"],
             "cascade_tested": truth["relatives_tested_any_reason"], "cascade_contacted": truth["family_letters"]}
    from fh_screen.stages.metrics.compute import programme_cost

    cost = programme_cost(units.__getitem__, costs)
    new_cases = truth["confirmed"] + truth["relatives_positive"]
    assert new_cases > 0
    assert near(head["cost_per_new_case_dkk"]["value"], cost / new_cases, 0, 0.25)


def test_report_has_no_empty_page(pilot):
    result, _, _ = pilot
    html = Path(result["report"]).read_text()
    for empty in ("No referrals yet.", "calibration not shown"):
        assert empty not in html
    assert html.count("<svg") >= 4
