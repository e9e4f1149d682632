"""Disclosure control by rounding (OpenSAFELY's default: counts <= 7 withheld, others rounded
to the nearest 5): the exact-elimination check, now over the rounded figures.

What a reader knows is modelled independently of the implementation, as linear programming:
every published rounded figure r stands for a count in [r - 2, r + 2] (and above the
small-cell limit unless it is 0), withheld counts and hidden differences are >= 0, and every
additive line holds. For each withheld count >= 1 and each hidden difference of 1..7 the test
minimises and maximises it. It must not be narrowed below the width of a published rounded
figure (4 for base 5): a small count is never known more precisely than any published count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.optimize import linprog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metrics_fake import AS_OF, make_region_db  # noqa: E402
from disclosure_tables import funnels, nested_funnels, table_with_margins  # noqa: E402

from fh_screen.app.run import prepare  # noqa: E402
from fh_screen.stages.metrics import derive, federated, pilot, step  # noqa: E402
from fh_screen.stages.metrics.disclosure import round_count, rounding_interval, suppress_rounded  # noqa: E402

K, BASE = 7, 5


def reader_bounds(values, hidden, withheld) -> dict:
    bounds = {}
    for c, v in values.items():
        if c in hidden or c in withheld:
            bounds[c] = (0, None)
        else:
            r = round_count(v, BASE)
            lo, hi = rounding_interval(r, BASE)
            bounds[c] = (0, 0) if r == 0 else (max(lo, K + 1), hi)
    return bounds


def _system(lines, bounds):
    order = sorted(bounds, key=repr)
    index = {c: k for k, c in enumerate(order)}
    rows, cols, data = [], [], []
    for i, (total, parts) in enumerate(lines):
        for cell, sign in [(total, -1)] + [(p, 1) for p in parts]:
            rows.append(i)
            cols.append(index[cell])
            data.append(sign)
    a_eq = sparse.csr_matrix((data, (rows, cols)), shape=(len(lines), len(order)))
    box = [bounds[c] for c in order]
    return index, a_eq, box


def _extreme(index, a_eq, box, cell, sense):
    objective = np.zeros(len(index))
    objective[index[cell]] = sense
    result = linprog(objective, A_eq=a_eq, b_eq=np.zeros(a_eq.shape[0]), bounds=box, method="highs")
    if sense < 0 and result.status == 3:
        return np.inf, None
    assert result.status == 0, "the true counts must be feasible"
    return sense * result.fun, result.x


def narrowed(values, lines, hidden, withheld, cells) -> list:
    """Every cell of ``cells`` whose feasible range is narrower than a rounded figure's.

    Each minimum and maximum is a table the reader cannot rule out; a cell whose values
    across those tables (the true one first) already span the width needs no program of its
    own, which keeps checking every cell of a region affordable.
    """
    index, a_eq, box = _system(lines, reader_bounds(values, hidden, withheld))
    seen_lo = np.array([values[c] for c in sorted(values, key=repr)], dtype=float)
    seen_hi = seen_lo.copy()
    found = []
    for cell in cells:
        k = index[cell]
        ends = []
        for sense in (1, -1):
            if seen_hi[k] - seen_lo[k] >= BASE - 1 - 1e-7:
                break
            value, x = _extreme(index, a_eq, box, cell, sense)
            ends.append(value)
            if x is not None:
                seen_lo, seen_hi = np.minimum(seen_lo, x), np.maximum(seen_hi, x)
        else:
            if ends[1] - ends[0] < BASE - 1 - 1e-7:
                found.append((cell, values[cell], ends[0], ends[1]))
    return found


def assert_protected(values, lines, hidden, withheld, cells=None):
    published = [c for c in values if c not in hidden and c not in withheld]
    assert not [c for c in published if 1 <= values[c] <= K], "a small count is published"
    sensitive = [c for c in withheld if values[c] >= 1] + [c for c in hidden if 1 <= values[c] <= K]
    sensitive = sorted(sensitive if cells is None else [c for c in sensitive if c in cells], key=repr)
    exposed = narrowed(values, lines, hidden, withheld, sensitive)
    assert not exposed, f"{len(exposed)} of {len(sensitive)} protected cells narrowed (cell, true, low, high): {exposed[:5]}"


@pytest.mark.parametrize("value, shown", [(0, 0), (8, 10), (12, 10), (13, 15), (17, 15), (18, 20), (1002, 1000)])
def test_rounding_to_the_nearest_five(value, shown):
    assert round_count(value, BASE) == shown
    lo, hi = rounding_interval(shown, BASE)
    assert lo <= value <= hi and hi - lo == (0 if shown == 0 else BASE - 1)


grids = st.integers(1, 4).flatmap(lambda rows: st.integers(1, 4).flatmap(
    lambda cols: st.lists(st.lists(st.one_of(st.just(0), st.integers(1, 7), st.integers(8, 40)),
                                   min_size=cols, max_size=cols), min_size=rows, max_size=rows)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids)
def test_random_tables_have_no_small_or_recoverable_cell(grid):
    values, lines = table_with_margins(grid)
    withheld = suppress_rounded(values, lines, small_cell_max=K, rounding_base=BASE,
                                keep={c: int("T" in c) for c in values})
    assert_protected(values, lines, set(), withheld)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(funnels(60))
def test_nested_funnels_protect_small_differences(levels):
    values, lines, hidden = nested_funnels(levels)
    withheld = suppress_rounded(values, lines, hidden, K, BASE, keep={c: 3 * int(c[0] == "all") for c in values})
    assert_protected(values, lines, hidden, withheld)


def test_rounding_withholds_fewer_complements_than_exact_suppression():
    """The demo's complaint: one small outcome next to the referred count hid the referred count."""
    values = {"referred": 52, "fh": 3, "not_fh": 20, "dna": 29}
    lines = [("referred", ["fh", "not_fh", "dna"])]
    exact = suppress_rounded(values, lines, small_cell_max=K, rounding_base=1)
    rounded = suppress_rounded(values, lines, small_cell_max=K, rounding_base=BASE, keep={"referred": 3})
    assert len(exact) == 2                       # the small cell and one complement
    assert rounded == {"fh"}                     # rounding alone protects it
    assert_protected(values, lines, set(), rounded)


def region_aggregates(folder, people, seed):
    path = make_region_db(folder / "r.duckdb", "R", people, seed)
    return step.region_aggregates(prepare(None, path, folder / "out", AS_OF))


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    return region_aggregates(tmp_path_factory.mktemp("rounded-region"), 1500, 5)


def test_headline_funnel_always_shows_rounded(region):
    document = pilot.pilot_document(region)
    assert document["disclosure"]["rounding_base"] == BASE
    for metric in pilot.FUNNEL:
        cell = document["headline"][metric]
        assert cell["status"] == "ok" and cell["value"] % BASE == 0, metric
    published = [r["value"] for r in document["counts"] if r["status"] == "ok"]
    assert all(v % BASE == 0 for v in published)
    assert not [v for v in published if 1 <= v <= K]


def assert_region_safe(region):
    """Exact elimination on the whole cell system of a region: every withheld count and every
    small hidden difference, none sampled."""
    values, lines, hidden = derive.cell_system(federated.table_of(region))
    _, withheld = derive.suppressed_counts(federated.table_of(region), K, BASE)
    sensitive = [c for c in withheld if values[c] >= 1] + [c for c in hidden if 1 <= values[c] <= K]
    assert len(sensitive) > 50
    assert_protected(values, lines, hidden, withheld)


def test_a_real_pilot_table_is_safe_over_the_rounded_figures(region):
    """This region has a level of 13 people (sex unknown) whose referred and attended count
    of 1 a reader could narrow to 0..3 by combining its lines with the other levels' rounded
    figures, while each line alone leaves 0..6."""
    values, _, _ = derive.cell_system(federated.table_of(region))
    assert values[("sex", "U", "population")] == 13 and values[("sex", "U", "referred")] == 1
    assert_region_safe(region)


@pytest.mark.parametrize("people, seed", [(600, 3), (900, 17)])
def test_other_regions_are_safe_over_the_rounded_figures(tmp_path, people, seed):
    assert_region_safe(region_aggregates(tmp_path, people, seed))


def test_cost_per_case_found_shows_when_few_relatives_are_found():
    """A pilot year at the cited cascade rates finds few relatives (2 here): that count is
    withheld, but the cost per case found counts every new case (confirmed index cases plus
    relatives found, as Marks et al. 2002) and is published from the rounded new-case count,
    while the 2 stays protected over the rounded figures (linear programming, as above)."""
    import polars as pl

    rows = {"population": 30_000, "tested": 15_000, "flagged": 900, "referred": 805, "attended": 170,
            "confirmed": 40, "outcome_fh_genetic": 25, "outcome_fh_clinical": 15, "outcome_not_fh": 130,
            "outcome_did_not_attend": 60, "outcome_declined": 30, "outcome_pending": 20, "outcome_none": 525,
            "treatment_changed": 100, "treatment_started": 60, "treatment_intensified": 40, "ldl_change_n": 90,
            "already_diagnosed": 150, "cascade_identified": 400, "cascade_contacted": 300, "cascade_tested": 20,
            "cascade_positive": 2, "new_cases": 42, "cost_dkk": 3_000_000.0, "expected_cases": 120.0}
    for r in ("dlcn", "simon_broome", "medped", "lab_flag", "model"):
        rows[f"rule_pos_{r}"], rows[f"rule_pos_confirmed_{r}"] = 150, 30
    frame = pl.DataFrame({"dimension": "all", "level": "all", "metric": list(rows),
                          "value": [float(v) for v in rows.values()]})
    costs = {"gp_review": 300.0, "lab_test": 100.0, "clinic_visit": 2000.0, "genetic_test": 4000.0, "letter": 20.0}
    tables = derive.evaluator_tables(frame, K, BASE, costs, 1 / 250)
    counts, derived = derive.lookup(tables["counts"]), derive.lookup(tables["derived"])
    assert counts["cascade_positive"]["status"] == "suppressed"
    assert counts["new_cases"] == {"value": 40, "status": "ok"}
    # the rounded units: referred 805 -> 805, attended 170, relatives tested 20, letters 300
    cost = 300 * 805 + 100 * (805 + 20) + 2000 * (170 + 20) + 4000 * (170 + 20) + 20 * 300
    assert derived["cost_per_new_case_dkk"] == {"value": round(cost / 40, 2), "status": "ok"}
    values, lines, hidden = derive.cell_system(frame)
    _, withheld = derive.suppressed_counts(frame, K, BASE)
    assert ("all", "all", "cascade_positive") in withheld
    assert_protected(values, lines, hidden, withheld)
