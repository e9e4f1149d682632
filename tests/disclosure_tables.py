"""Additive tables for the disclosure-control tests (exact suppression in
test_metrics_disclosure.py, rounding in test_metrics_rounding.py): the cells, the lines a
reader knows (a total is the sum of its parts), and Hypothesis strategies that draw them."""

from __future__ import annotations

from hypothesis import strategies as st


def table_with_margins(grid: list[list[int]]):
    """Cells (i, j), row totals (i, 'T'), column totals ('T', j), grand total ('T', 'T')."""
    rows, cols = len(grid), len(grid[0])
    values, lines = {}, []
    for i in range(rows):
        for j in range(cols):
            values[(i, j)] = grid[i][j]
    for i in range(rows):
        values[(i, "T")] = sum(grid[i])
        lines.append(((i, "T"), [(i, j) for j in range(cols)]))
    for j in range(cols):
        values[("T", j)] = sum(grid[i][j] for i in range(rows))
        lines.append((("T", j), [(i, j) for i in range(rows)]))
    values[("T", "T")] = sum(values[(i, "T")] for i in range(rows))
    lines.append((("T", "T"), [(i, "T") for i in range(rows)]))
    lines.append((("T", "T"), [("T", j) for j in range(cols)]))
    return values, lines


def funnels(max_count: int):
    """2-4 levels (e.g. practices), each a funnel of 2-5 nested counts (population >= tested
    >= ...) of the same length, every count at most ``max_count``."""
    chain = st.lists(st.integers(0, max_count), min_size=2, max_size=5).map(lambda xs: sorted(xs, reverse=True))
    return st.lists(chain, min_size=2, max_size=4).filter(lambda cs: len({len(c) for c in cs}) == 1)


def nested_funnels(levels: list[list[int]]):
    """(values, lines, hidden) of funnels by level plus their total ('all'): each step's
    difference to the next is a hidden cell, and each count is the sum over the levels."""
    values, lines, hidden = {}, [], set()
    steps = len(levels[0])
    for level, funnel in enumerate(levels + [[sum(f[s] for f in levels) for s in range(steps)]]):
        name = "all" if level == len(levels) else level
        for s, v in enumerate(funnel):
            values[(name, s)] = v
        for s in range(steps - 1):
            values[(name, f"d{s}")] = funnel[s] - funnel[s + 1]
            hidden.add((name, f"d{s}"))
            lines.append(((name, s), [(name, s + 1), (name, f"d{s}")]))
    for metric in list(range(steps)) + [f"d{s}" for s in range(steps - 1)]:
        lines.append((("all", metric), [(level, metric) for level in range(len(levels))]))
    return values, lines, hidden
