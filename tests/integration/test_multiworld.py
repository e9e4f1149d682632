"""Multi-world training and external validation, end to end on tiny worlds: every scorer
is fitted and saved with its mapping, the production scorer carries the observed band rates,
and ``evaluate`` re-validates the saved artefacts on the same external worlds."""

from __future__ import annotations

import json

import pytest

from fh_screen.config import load_settings
from fh_screen.stages.score import artefact
from fh_screen.app import evaluate
from fh_screen.training import multiworld

TINY = {"train": (2, 1500), "select": (1, 1500), "external": (1, 1500)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worlds")
    result = evaluate.train_on_worlds(tmp / "w", tmp / "models", load_settings(), plan=TINY, seed=3,
                                        log=lambda _: None)
    return tmp, result


def test_every_scorer_is_saved_with_its_mapping_and_the_production_one_with_bands(trained):
    tmp, result = trained
    production = result["selection"]["production"]
    assert production in ("fh_gbm", "fh_baseline")
    for name in multiworld.SCORERS:
        _, meta = artefact.load(tmp / "models" / name)
        assert meta["mapping"]["slope"] > 0
        assert meta["worlds"]["worlds"]["external"] == ["external-4000"]
    _, meta = artefact.load(tmp / "models" / production)
    assert [b["name"] for b in meta["bands"]] == ["very_high", "high", "moderate", "low"]
    assert sum(b["people"] for b in meta["bands"]) == result["external_table"][0]["people"]


def test_validation_table_has_every_figure_for_every_scorer(trained):
    tmp, result = trained
    rows = result["external_table"]
    assert {r["scorer"] for r in rows} == set(multiworld.SCORERS)
    for r in rows:
        assert set(r["found"]) == {100, 250, 500} and set(r["best_rule"]) == {100, 250, 500}
        assert {"auc", "oe", "oe_high", "slope", "citl", "ece_equal_mass", "net_benefit", "targets"} <= set(r)
    text = (tmp / "w" / "validation.md").read_text(encoding="utf-8")
    assert "FAMCAT-like (refit)" in text and "found@500" in text


def test_evaluate_revalidates_the_saved_artefacts_on_the_same_worlds(trained):
    tmp, result = trained
    again = evaluate.evaluate(tmp / "w", load_settings(), tmp / "models", TINY["external"], log=lambda _: None)
    key = lambda r: (r["world"], r["scorer"])  # noqa: E731
    before = {key(r): r for r in result["external_table"]}
    for r in again["external_table"]:
        assert r["found"] == before[key(r)]["found"] and r["auc"] == before[key(r)]["auc"]
    assert json.loads((tmp / "w" / "evaluation.json").read_text(encoding="utf-8"))["production"] == \
        result["selection"]["production"]


def test_outcome_recalibration_is_used_once_enough_listed_patients_are_assessed(trained, monkeypatch):
    # A small world holds a handful of carriers, so the minimum counts are lowered here;
    # ``fhscreen evaluate`` runs the same check on a 200,000-person world with the real ones.
    from fh_screen.stages.score import calibration

    tmp, result = trained
    monkeypatch.setattr(calibration, "MIN_EVENTS", 1)
    monkeypatch.setattr(calibration, "MIN_NON_EVENTS", 20)
    out = evaluate.evaluate(tmp / "w", load_settings(), tmp / "models", TINY["external"], log=lambda _: None,
                            outcome_patients=4000)
    check = out["outcome_recalibration"]
    assert check["world"] == "outcomes-5000" and check["triggered"], check
    assert check["method"] == calibration.OUTCOME_METHOD and check["outcome_fit"]["used"] is True
    assert check["assessed_confirmed"] >= 1 and check["assessed"] - check["assessed_confirmed"] >= 20
    assert check["not_assessed"]["measurable"] and {"before", "after"} <= set(check["not_assessed"])
    assert check["mapping_after"] != check["mapping_before"]
    assert "Outcome recalibration (outcomes-5000" in (tmp / "w" / "evaluation.md").read_text(encoding="utf-8")
