"""The nightly job's data flow (``run.STEPS``): every table is written before it is read.

The declarations are checked against a real run in ``tests/integration/test_data_flow.py``.
"""

from __future__ import annotations

import pytest

from fh_screen import schemas
from fh_screen.app import run


def flow_problems(steps: list[run.Step]) -> list[str]:
    """What is wrong with a list of steps as a data flow (empty when nothing is)."""
    problems, written = [], set(run.DELIVERED)
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        problems.append(f"step names repeat: {names}")
    everything = {t for s in steps for t in s.writes}
    for step in steps:
        problems += [f"{step.name} reads {t}, which no earlier step writes" for t in step.reads if t not in written]
        problems += [f"{step.name} reads {t} from earlier nights, which no step writes"
                     for t in step.history if t not in everything]
        problems += [f"{step.name} writes the delivered {t}" for t in step.writes if t in run.DELIVERED]
        written |= set(step.writes)
    return problems


def test_every_table_a_step_reads_is_delivered_or_written_by_an_earlier_step():
    assert flow_problems(run.STEPS) == []


def test_the_checker_finds_a_table_read_before_it_is_written():
    by_name = {s.name: s for s in run.STEPS}
    swapped = [s for s in run.STEPS if s.name not in ("features", "rules")]
    swapped[3:3] = [by_name["rules"], by_name["features"]]
    assert flow_problems(swapped) == [f"rules reads {t}, which no earlier step writes"
                                      for t in ("patient_features", "incr_steps", "incr_recompute")]
    ghost = run.Step("ghost", lambda ctx: {}, history=("nobody_writes_this",))
    assert flow_problems([*run.STEPS, ghost]) == [
        "ghost reads nobody_writes_this from earlier nights, which no step writes"]


def test_the_first_step_reads_exactly_the_delivered_tables():
    assert run.STEPS[0].reads == tuple(f"delivery/{t}" for t in schemas.TABLES)
    assert all(not set(s.reads) & set(run.DELIVERED) for s in run.STEPS[1:])


def test_a_step_is_found_by_name_and_an_unknown_name_says_which_exist():
    assert run.step_named("rules").run is run.rules.rules_step
    with pytest.raises(KeyError, match="no step named 'ruels'; the steps are stage, validate"):
        run.step_named("ruels")


def test_the_task_documentation_shows_the_data_flow():
    assert run.step_named("rules").doc() == (
        "Reads: `patient_features`, `incr_steps`, `incr_recompute`; reads from earlier nights: `rule_results`; "
        "writes: `rule_results`, `incr_steps`.")
    assert run.step_named("metrics").doc().endswith("files: `metrics`.")
