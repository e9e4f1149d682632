"""The yardsticks page: published figures with their sources, pilot figures normalised the
same way from the published (rounded, suppressed) counts."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metrics_fake import AS_OF, make_region_db  # noqa: E402

from fh_screen.app.run import prepare  # noqa: E402
from fh_screen.outputs import metrics_report  # noqa: E402
from fh_screen.outputs import yardsticks  # noqa: E402
from fh_screen.stages.metrics import pilot, step  # noqa: E402


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    folder = tmp_path_factory.mktemp("yardsticks")
    ctx = prepare(None, make_region_db(folder / "r.duckdb", "Y", 1500, 5), folder / "out", AS_OF)
    return pilot.pilot_document(step.region_aggregates(ctx))


def by_id(rows):
    return {r["id"]: r for r in rows}


def test_every_yardstick_has_a_source_and_a_pilot_figure(document):
    rows = yardsticks.rows(document)
    assert len(rows) == len(yardsticks.reference()["yardsticks"]) >= 10
    for r in rows:
        assert r["source"] and r["note"] and r["published"] is not None
        assert r["pilot"]["status"] in ("ok", "suppressed", "not_applicable")


def test_pilot_figures_are_normalised_from_the_published_counts(document):
    head = document["headline"]
    figures = yardsticks.pilot_figures(document)
    assert figures["flagged_per_1000_tested"]["value"] == pytest.approx(
        round(head["flagged"]["value"] / head["tested"]["value"] * 1000, 1))
    none = next(r for r in document["counts"] if r["dimension"] == "all" and r["metric"] == "outcome_none")
    if none["status"] == "ok":
        assert figures["referred_on_by_gp"]["value"] == pytest.approx(
            round((head["referred"]["value"] - none["value"]) / head["referred"]["value"], 3))
    assert figures["cost_per_new_case"] == head["cost_per_new_case_dkk"]


def test_published_costs_in_dkk_and_national_need_scaled_to_the_region(document):
    rows = by_id(yardsticks.rows(document))
    rate = yardsticks.reference()["gbp_to_dkk"]["value"]
    assert rows["cost_family_tracing"]["published"] == round(133 * rate)
    assert rows["cost_universal"]["published"] == round(9754 * rate)
    population = document["headline"]["population"]["value"]
    assert rows["denmark_need"]["published"] == pytest.approx(2400 * population / 5_961_000, abs=0.05)


def test_withheld_inputs_withhold_the_pilot_figure(document):
    hidden = copy.deepcopy(document)
    for r in hidden["counts"]:
        if r["dimension"] == "all" and r["metric"] == "cascade_positive":
            r.update(value=None, status="suppressed")
    assert yardsticks.pilot_figures(hidden)["new_relatives_per_index"] == {"value": None, "status": "suppressed"}


def test_the_report_has_a_yardsticks_page(document):
    html = metrics_report.build_report(document)
    page = html[html.index('<section id="yardsticks">'):]
    page = page[:page.index("</section>")]
    assert "Marks D et al., BMJ 2002;324:1303" in page and "Arrobas Velilla" in page and "Lee C et al." in page
    assert f"{round(133 * yardsticks.reference()['gbp_to_dkk']['value']):,} DKK" in page
    assert page.count("<tr>") == len(yardsticks.reference()["yardsticks"]) + 1
