"""Disclosure control with rounded counts (``stages.metrics.disclosure.suppress_rounded``): which
cells are checked, how narrow a reader's range for a protected count may be, and which cells
are taken as complements last (the headline funnel). One table row per case.

The tables are tiny: two lines through one small count ``a`` (2), whose rounded neighbours
(42 and 40 both shown as 40; 23 and 21 shown as 25 and 20) tell a reader ``a`` is 0..4 from
the first line alone but 1..4 from both together.
"""

from __future__ import annotations

import pytest

from fh_screen.stages.metrics.disclosure import (
    headline_cells,
    narrowest_range,
    rounded_protected,
    suppress_rounded,
)

K, BASE = 7, 5
ONE_LINE = ({"a": 2, "T1": 42, "b1": 40}, [("T1", ["a", "b1"])])
TWO_LINES = ({"a": 2, "T1": 42, "b1": 40, "T2": 23, "b2": 21}, [("T1", ["a", "b1"]), ("T2", ["a", "b2"])])
# A third line reaches an ordinary cell ``c`` only through the headline total T1.
THREE_LINES = ({**TWO_LINES[0], "G": 72, "c": 30}, [*TWO_LINES[1], ("G", ["T1", "c"])])
HEADLINE = {"T1": 3, "b1": 3, "T2": 3, "b2": 3}


@pytest.mark.parametrize("base, width", [(5, 4), (10, 9), (3, 2), (2, 1)])
def test_a_reader_may_narrow_a_protected_count_no_more_than_one_rounded_figure(base, width):
    assert narrowest_range(base) == width


@pytest.mark.parametrize(
    "keep, never_withhold, headline",
    [
        ({"x": 3, "y": 2, "z": 4}, 3, {"x", "z"}),   # at and above the rank
        ({"x": 3, "y": 2, "z": 4}, 4, {"z"}),
        ({"x": 3, "y": 2, "z": 4}, 2, {"x", "y", "z"}),
        ({"x": 0}, 1, set()),
        ({}, 3, set()),
    ],
)
def test_headline_cells_are_those_ranked_at_least_never_withhold(keep, never_withhold, headline):
    assert headline_cells(keep, never_withhold) == headline


@pytest.mark.parametrize(
    "values, hidden, withheld, checked",
    [
        ({"w0": 0, "w1": 1}, set(), {"w0", "w1"}, ["w1"]),          # a withheld 0 reveals nothing
        ({"h0": 0, "h1": 1, "h7": K, "h8": K + 1}, {"h0", "h1", "h7", "h8"}, set(), ["h1", "h7"]),  # hidden 1..K
        ({"p": 3}, set(), set(), []),                               # published and not withheld: nothing to check
        ({"w": 9, "h": 2}, {"h"}, {"w"}, ["w", "h"]),               # withheld first, then hidden
    ],
)
def test_the_cells_checked_first_are_withheld_counts_and_small_hidden_differences(values, hidden, withheld,
                                                                                  checked):
    assert rounded_protected(values, hidden, withheld, K) == checked


@pytest.mark.parametrize(
    "table, keep, never_withhold, base, withheld",
    [
        (ONE_LINE, {}, 3, BASE, {"a"}),                     # 0..4: as wide as a rounded figure, rounding protects it
        (TWO_LINES, {}, 3, BASE, {"a", "b2"}),              # 1..4: too narrow, the smaller complement is withheld
        (ONE_LINE, {}, 3, 1, {"a", "b1"}),                  # no rounding: the exact method, a complement always
        (TWO_LINES, {"b1": 0, **{c: 3 for c in ("T1", "T2", "b2")}}, 3, BASE, {"a", "b1"}),   # ordinary before headline
        (TWO_LINES, HEADLINE, 3, BASE, {"a", "b2"}),        # only headline cells can protect it: one is withheld
        (THREE_LINES, HEADLINE, 3, BASE, {"a", "b2", "c", "G"}),   # ordinary cells beyond the headline are tried first
        (THREE_LINES, HEADLINE, 4, BASE, {"a", "b2"}),      # rank 3 below never_withhold 4: not headline
    ],
)
def test_complements_spare_the_headline_funnel_until_nothing_else_protects(table, keep, never_withhold, base,
                                                                           withheld):
    values, lines = table
    assert suppress_rounded(values, lines, small_cell_max=K, rounding_base=base, keep=keep,
                            never_withhold=never_withhold) == withheld
