"""Selection policy, exclusions, routes, the unassigned list and the ranking."""

import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.stages.referrals import step as r# noqa: E402

AS_OF = f.AS_OF


def plan(rows, scores=None, patients=None, cfg=None, prior=None, outcomes=None, as_of=AS_OF):
    cfg = cfg or f.settings()
    planned, report = r.plan_referrals(
        f.rules_frame(rows),
        scores,
        patients if patients is not None else f.patients_frame(rows),
        outcomes if outcomes is not None else f.outcomes_frame(),
        prior if prior is not None else r.empty_events(),
        cfg,
        as_of,
    )
    return planned, report


def scores_frame(pairs):
    return pl.DataFrame(
        [{"patient_id": p, "probability": v, "model_name": "fh_gbm", "model_version": "1.0.0",
          "reasons": "", "reason_items": "[]"} for p, v in pairs],
        schema=f.SCORE_SCHEMA, orient="row",
    )


def big_clinics():
    return f.settings(clinics=[])


def ids(frame, event=None):
    if event:
        frame = frame.filter(pl.col("event") == event)
    return set(frame["patient_id"].to_list())


@pytest.mark.parametrize("points, selected", [(5, False), (6, True), (7, True)])
def test_dlcn_cut_off_at_six_points(points, selected):
    planned, _ = plan([f.rule("a", dlcn_points=points, lab_flag=False, simon_broome="not_met")], cfg=big_clinics())
    assert (ids(planned) == {"a"}) is selected


@pytest.mark.parametrize("probability, selected", [(0.19, False), (0.20, True), (0.21, True)])
def test_probability_cut_off(probability, selected):
    # DLCN 3 (possible) is a clinical criterion: the model may add the patient.
    rows = [f.rule("a", dlcn_points=3, dlcn_category="possible", lab_flag=False, simon_broome="not_met")]
    planned, _ = plan(rows, scores=scores_frame([("a", probability)]), cfg=big_clinics())
    assert (ids(planned) == {"a"}) is selected


def test_lab_flag_selects_only_when_the_policy_uses_it():
    rows = [f.rule("a", dlcn_points=1, lab_flag=True, simon_broome="not_met")]
    assert ids(plan(rows, cfg=big_clinics())[0]) == {"a"}
    off = f.settings(clinics=[], use_lab_flag=False)
    assert ids(plan(rows, cfg=off)[0]) == set()


def test_selected_by_names_every_trigger():
    rows = [f.rule("a", dlcn_points=8, lab_flag=True)]
    planned, _ = plan(rows, scores=scores_frame([("a", 0.9)]), cfg=big_clinics())
    assert planned["selected_by"].to_list() == ["dlcn+lab_flag+simon_broome+probability"]


@pytest.mark.parametrize("reason", ["already_diagnosed", "under_clinic_care", "deceased", "moved_out"])
def test_rules_exclusions_are_never_listed(reason):
    rows = [f.rule("a", excluded_reason=reason), f.rule("b")]
    planned, report = plan(rows, cfg=big_clinics())
    assert ids(planned) == {"b"}
    assert report["excluded"] == {reason: 1}


@pytest.mark.parametrize(
    "column, days_after_run, listed",
    [("deceased_date", -1, False), ("deceased_date", 0, False), ("deceased_date", 1, True),
     ("moved_out_date", -1, False), ("moved_out_date", 0, False), ("moved_out_date", 1, True)],
)
def test_death_or_move_in_patients_table_excludes_even_without_a_rules_reason(column, days_after_run, listed):
    rows = [f.rule("a")]
    people = f.patients_frame(rows, a={column: AS_OF + timedelta(days=days_after_run)})
    planned, _ = plan(rows, patients=people, cfg=big_clinics())
    assert (ids(planned) == {"a"}) is listed


def test_secondary_cause_route_is_kept_and_model_only_patients_get_one_from_the_finding():
    rows = [
        f.rule("rules_check", route="check_secondary_cause_first", secondary_cause="TSH 14 mIU/L on 2025-03-02"),
        f.rule("model_only_cause", dlcn_points=3, lab_flag=False, simon_broome="not_met", route="none",
               secondary_cause="HbA1c 80 mmol/mol"),
        f.rule("model_only_clean", dlcn_points=3, lab_flag=False, simon_broome="not_met", route="none"),
    ]
    scores = scores_frame([("model_only_cause", 0.5), ("model_only_clean", 0.5)])
    planned, _ = plan(rows, scores=scores, cfg=big_clinics())
    routes = dict(zip(planned["patient_id"], planned["route"]))
    assert routes == {
        "rules_check": r.ROUTE_CHECK,
        "model_only_cause": r.ROUTE_CHECK,
        "model_only_clean": r.ROUTE_CLINIC,
    }


@pytest.mark.parametrize("practice", [None, "", "  "])
def test_patients_without_a_gp_go_to_the_regional_list(practice):
    rows = [f.rule("a", practice_id=practice)]
    people = f.patients_frame(rows, a={"practice_id": None})
    planned, report = plan(rows, patients=people, cfg=f.settings(clinics=[], unassigned_practice_id="REGION"))
    assert planned["practice_id"].to_list() == ["REGION"]
    assert report["unassigned_listed"] == 1


def test_registered_practice_fills_in_when_rules_have_none():
    rows = [f.rule("a", practice_id=None)]
    people = f.patients_frame(rows, a={"practice_id": "P7"})
    assert plan(rows, patients=people, cfg=big_clinics())[0]["practice_id"].to_list() == ["P7"]


def test_rank_by_probability_then_dlcn_then_untreated_ldl():
    rows = [
        f.rule("low_p", dlcn_points=9),
        f.rule("high_p", dlcn_points=6),
        f.rule("tie_more_points", dlcn_points=8, ldl_untreated_estimate_mmol=6.0),
        f.rule("tie_fewer_points", dlcn_points=7, ldl_untreated_estimate_mmol=9.0),
        f.rule("unscored", dlcn_points=10),
    ]
    scores = scores_frame([("low_p", 0.3), ("high_p", 0.9), ("tie_more_points", 0.5), ("tie_fewer_points", 0.5)])
    planned, _ = plan(rows, scores=scores, cfg=big_clinics())
    order = planned.sort("rank")["patient_id"].to_list()
    assert order == ["high_p", "tie_more_points", "tie_fewer_points", "low_p", "unscored"]
    assert planned.sort("rank")["rank"].to_list() == [1, 2, 3, 4, 5]


def test_without_a_model_rank_falls_back_to_points_then_untreated_ldl():
    rows = [
        f.rule("a", dlcn_points=7, ldl_untreated_estimate_mmol=7.0),
        f.rule("b", dlcn_points=7, ldl_untreated_estimate_mmol=8.0),
        f.rule("c", dlcn_points=9, ldl_untreated_estimate_mmol=5.0),
        f.rule("d", dlcn_points=None, ldl_untreated_estimate_mmol=12.0),
    ]
    planned, _ = plan(rows, cfg=big_clinics())
    assert planned["probability"].null_count() == 4
    assert planned.sort("rank")["patient_id"].to_list() == ["c", "b", "a", "d"]


def test_empty_model_scores_count_as_no_model():
    rows = [f.rule("a")]
    planned, _ = plan(rows, scores=scores_frame([]), cfg=big_clinics())
    assert planned["probability"].to_list() == [None]


def test_referrals_csv_has_the_contract_columns_in_rank_order():
    rows = [f.rule("a", dlcn_points=7), f.rule("b", dlcn_points=9)]
    planned, _ = plan(rows, cfg=big_clinics())
    table = r.referrals_table(planned)
    assert table.columns[:14] == [
        "patient_id", "practice_id", "clinic_id", "rank", "probability", "dlcn_points", "dlcn_category",
        "simon_broome", "medped", "ldl_max_mmol", "ldl_untreated_estimate_mmol", "route", "reasons",
        "missing_information",
    ]
    assert table["patient_id"].to_list() == ["b", "a"]


def test_nobody_when_nothing_triggers():
    planned, report = plan([f.rule("a", dlcn_points=0, lab_flag=False, simon_broome="not_met")], cfg=big_clinics())
    assert planned.height == 0 and report["triggered"] == 0
    assert r.referrals_table(planned).height == 0

