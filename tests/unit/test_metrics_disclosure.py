"""Disclosure control: no published count from 1 to 4, and no withheld count (nor a small
hidden difference) can be worked out from the published cells and the totals.

"Worked out" is checked independently of the implementation with linear programming: for
every withheld cell, minimise and maximise it subject to every additive line, the published
values and non-negativity. A cell is recoverable when that interval is narrower than 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from disclosure_tables import funnels, nested_funnels, table_with_margins  # noqa: E402

from fh_screen.stages.metrics.disclosure import suppress  # noqa: E402

K = 4


def feasible_range(values, lines, unknown: set, cell) -> tuple[float, float]:
    order = sorted(unknown, key=repr)
    index = {c: k for k, c in enumerate(order)}
    a_eq, b_eq = [], []
    for total, parts in lines:
        row, constant = np.zeros(len(order)), 0.0
        for sign, c in [(-1, total)] + [(1, p) for p in parts]:
            if c in index:
                row[index[c]] += sign
            else:
                constant += sign * values[c]
        if row.any():
            a_eq.append(row)
            b_eq.append(-constant)
    objective = np.zeros(len(order))
    objective[index[cell]] = 1
    kwargs = {"A_eq": np.array(a_eq), "b_eq": np.array(b_eq)} if a_eq else {}
    low = linprog(objective, bounds=(0, None), **kwargs)
    high = linprog(-objective, bounds=(0, None), **kwargs)
    assert low.status == 0
    return low.fun, (np.inf if high.status == 3 else -high.fun)


def assert_protected(values, lines, hidden, withheld):
    published = [c for c in values if c not in hidden and c not in withheld]
    assert not [c for c in published if 1 <= values[c] <= K], "a small count is published"
    unknown = set(withheld) | set(hidden)
    sensitive = [c for c in withheld if values[c] >= 1] + [c for c in hidden if 1 <= values[c] <= K]
    for cell in sensitive:
        low, high = feasible_range(values, lines, unknown, cell)
        assert high - low >= 1 - 1e-7, f"{cell} recoverable: range {low}..{high}"


grids = st.integers(1, 5).flatmap(lambda rows: st.integers(1, 5).flatmap(
    lambda cols: st.lists(st.lists(st.one_of(st.just(0), st.integers(1, 4), st.integers(5, 30)),
                                   min_size=cols, max_size=cols), min_size=rows, max_size=rows)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids)
def test_random_tables_have_no_small_or_recoverable_cell(grid):
    values, lines = table_with_margins(grid)
    withheld = suppress(values, lines, small_cell_max=K, keep={c: int("T" in c) for c in values})
    assert_protected(values, lines, set(), withheld)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(funnels(40))
def test_nested_funnels_protect_small_differences(levels):
    """Funnels (population >= tested >= ...) by level, with hidden step differences and level totals."""
    values, lines, hidden = nested_funnels(levels)
    withheld = suppress(values, lines, hidden, K, keep={c: int(c[0] == "all") for c in values})
    assert_protected(values, lines, hidden, withheld)


def test_single_small_cell_in_two_by_two_takes_three_complements():
    values, lines = table_with_margins([[2, 10], [10, 10]])
    withheld = suppress(values, lines, small_cell_max=K, keep={c: int("T" in c) for c in values})
    assert withheld == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert_protected(values, lines, set(), withheld)


@pytest.mark.parametrize("small", [1, 4])
def test_boundary_counts_are_withheld(small):
    values, lines = table_with_margins([[small, 20], [30, 40]])
    assert (0, 0) in suppress(values, lines, small_cell_max=K)


def test_five_and_zero_are_published():
    values, lines = table_with_margins([[5, 0], [30, 40]])
    assert suppress(values, lines, small_cell_max=K) == set()


def test_hidden_small_difference_forces_suppression():
    """population 100, tested 97: the 3 untested would be revealed by subtraction."""
    values = {"population": 100, "tested": 97, "_untested": 3}
    lines = [("population", ["tested", "_untested"])]
    withheld = suppress(values, lines, {"_untested"}, K)
    assert withheld & {"population", "tested"}
    assert_protected(values, lines, {"_untested"}, withheld)


def test_chain_through_rows_and_columns_is_caught():
    """Every row and column has two withheld cells, yet a cell is fixed through a chain.

    The withheld pattern forms a "bridge" between two 2x2 blocks; the textbook rule (no line
    with exactly one withheld cell) accepts it, the exact check does not.
    """
    grid = [[1, 20, 0, 0], [20, 20, 30, 0], [0, 30, 1, 20], [0, 0, 20, 20]]
    values, lines = table_with_margins(grid)
    withheld = suppress(values, lines, small_cell_max=K, keep={c: int("T" in c) for c in values})
    assert_protected(values, lines, set(), withheld)
