"""Statistical disclosure control for evaluator outputs: primary and secondary suppression.

Primary: a published count from 1 to ``small_cell_max`` (default 4) is withheld.

Secondary: a withheld count must not be recoverable from what is published. Counts are
linked by additive *lines* (``total = part1 + part2 + ...``): the levels of a dimension add
up to the total, and inside one level ``referred`` is the sum of the referral outcomes, and
so on. Some lines contain *hidden* cells that are never published but are sensitive too:
``population - tested`` is the number of people never tested, and publishing both
``population = 1000`` and ``tested = 997`` would tell a reader that 3 people were never
tested. Hidden cells holding 1..small_cell_max are protected like published small counts.

A withheld cell can be worked out exactly from the published ones iff it is fixed by the
linear system the lines form (plus "counts are >= 0", which pins cells in a line whose
unknowns must sum to 0). So the algorithm is, to a fixed point:

1. Peel: a line with one unknown cell determines that cell; a line whose unknowns sum to 0
   determines them all (all are 0). Repeat with the determined cells treated as known.
2. For the cells that remain unknown, compute the null space of the line equations per
   connected component: a cell is determined iff it is 0 in every null-space vector.
3. If a protected cell (a withheld published cell >= 1, or a hidden cell in 1..max) is
   determined, withhold one more published cell from one of its lines: the smallest
   non-zero one, preferring ordinary cells over totals so totals stay visible.

This is stronger than the textbook "no row or column with exactly one suppressed cell"
rule, which misses cells recoverable through chains of rows and columns (a bridge in the
graph of suppressed cells). It fails closed: if a protected cell cannot be protected, it
raises rather than publish.

The same function runs in a region and on the national merge, on the same numbers, so the
two agree cell for cell.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence


Line = tuple[Hashable, Sequence[Hashable]]   # (total, parts)


class DisclosureError(RuntimeError):
    """A small cell could not be protected; nothing may be published."""


def primary(values: Mapping[Hashable, float], cells: Iterable[Hashable], small_cell_max: int) -> set:
    """Cells holding 1..small_cell_max."""
    return {c for c in cells if 1 <= values[c] <= small_cell_max}


def suppress(
    values: Mapping[Hashable, float],
    lines: Sequence[Line],
    hidden: Iterable[Hashable] = (),
    small_cell_max: int = 4,
    keep: Mapping[Hashable, int] | None = None,
) -> set:
    """Return the published cells to withhold (primary plus secondary).

    Args:
        values: every cell's true count, hidden cells included.
        lines: additive identities ``values[total] == sum(values[p] for p in parts)``.
        hidden: cells never published (differences); protected when 1..small_cell_max.
        small_cell_max: counts from 1 to this are withheld.
        keep: how much each cell should stay visible (0 = not special, the default; higher
            ranks, e.g. funnel counts and grand totals, are withheld as complements last).
    """
    hidden = set(hidden)
    keep = keep or {}
    published = [c for c in values if c not in hidden]
    withheld = primary(values, published, small_cell_max)
    members = _line_members(lines)
    cell_lines: dict[Hashable, list[int]] = defaultdict(list)
    for i, cells in enumerate(members):
        for c in cells:
            cell_lines[c].append(i)

    def protected(c: Hashable) -> bool:
        v = values[c]
        return (1 <= v <= small_cell_max) if c in hidden else v >= 1

    def exposed(determined: set) -> list:
        return sorted((c for c in determined if protected(c)), key=repr)

    # Cheap peeling to a fixed point first, protecting every exposed cell in one batch per
    # round; the null-space check then catches what only chains of lines reveal.
    while True:
        while True:
            found = exposed(_peel(values, members, cell_lines, withheld | hidden)[0])
            if not found:
                break
            _protect(found, withheld, hidden, values, members, cell_lines, keep)
        found = exposed(_determined(values, members, cell_lines, withheld | hidden))
        if not found:
            found = _pinned_by_bounds(values, members, cell_lines, hidden, withheld, small_cell_max, protected)
        if not found:
            return withheld
        _protect(found, withheld, hidden, values, members, cell_lines, keep)


def _pinned_by_bounds(values, members, cell_lines, hidden: set, withheld: set, small_cell_max: int,
                      protected) -> list:
    """Protected cells that the lines pin to one value once counts are known to be >= 0.

    The equations alone can leave a cell free while non-negativity fixes it: with
    ``a + z = 5``, ``b + y = 5`` and ``a + b = 10`` a reader knows ``a = b = 5`` although
    no single line has one unknown. Interval propagation over the exact published figures
    finds such cells.
    """
    bounds = propagate(_prior(values, hidden, withheld, small_cell_max, 1), members, cell_lines)
    cells = set(withheld) | hidden
    return sorted((c for c in cells if protected(c) and bounds[c][1] - bounds[c][0] < 1), key=repr)


def _protect(cells: list, withheld: set, hidden: set, values, members, cell_lines, keep) -> None:
    """Withhold one complement per exposed cell, skipping cells whose lines just got one."""
    touched: set[int] = set()
    for cell in cells:
        if touched.intersection(cell_lines[cell]):
            continue
        extra = _complement(cell, values, members, cell_lines, withheld | hidden, keep)
        withheld.add(extra)
        touched.update(cell_lines[extra])


def _line_members(lines: Sequence[Line]) -> list[tuple[Hashable, ...]]:
    return [(total, *parts) for total, parts in lines]


def _signs(line: tuple[Hashable, ...]) -> list[int]:
    return [-1] + [1] * (len(line) - 1)


def _determined(values, members, cell_lines, unknown: set) -> set:
    """Unknown cells whose value follows from the known cells and the lines."""
    determined, remaining = _peel(values, members, cell_lines, unknown)
    return determined | _determined_by_rank(members, cell_lines, remaining)


def _peel(values, members, cell_lines, unknown: set) -> tuple[set, set]:
    """(determined, still unknown) using lines with one unknown or unknown parts summing to 0."""
    remaining = set(unknown)
    determined: set = set()
    todo = set(range(len(members)))
    while todo:
        i = todo.pop()
        left = [c for c in members[i] if c in remaining]
        if not left:
            continue
        # One unknown is fixed by the others; unknown parts (all >= 0) that must sum to 0 are 0.
        if len(left) == 1 or (members[i][0] not in left and sum(values[c] for c in left) == 0):
            for c in left:
                remaining.discard(c)
                determined.add(c)
                todo.update(cell_lines[c])
    return determined, remaining


# Exact arithmetic modulo a large prime: the rank of these small-integer systems over the
# rationals equals their rank modulo P except for astronomically unlikely P.
_P = (1 << 61) - 1


def _determined_by_rank(members, cell_lines, remaining: set) -> set:
    """Cells fixed by the line equations: sparse reduced row echelon form, exact.

    In RREF a variable is determined iff it is a pivot whose row has no other entry.
    """
    index = {c: k for k, c in enumerate(sorted(remaining, key=repr))}
    pivots: dict[int, dict[int, int]] = {}
    holders: dict[int, set[int]] = defaultdict(set)   # column -> pivots whose row holds it
    for i in sorted({i for c in remaining for i in cell_lines[c]}):
        row: dict[int, int] = {}
        for sign, c in zip(_signs(members[i]), members[i]):
            if c in index:
                row[index[c]] = (row.get(index[c], 0) + sign) % _P
        for col in [k for k in row if k in pivots]:
            _axpy(row, -row[col], pivots[col])
        row = {k: v for k, v in row.items() if v}
        if not row:
            continue
        pivot = min(row, key=lambda k: (len(holders[k]), k))
        inverse = pow(row[pivot], _P - 2, _P)
        row = {k: v * inverse % _P for k, v in row.items()}
        for other in list(holders.pop(pivot, ())):
            target = pivots[other]
            touched = set(target) | set(row)
            _axpy(target, -target[pivot], row)
            for k in touched - {other, pivot}:
                if k in target:
                    holders[k].add(other)
                else:
                    holders[k].discard(other)
        pivots[pivot] = row
        for k in row:
            if k != pivot:
                holders[k].add(pivot)
    return {c for c, k in index.items() if k in pivots and len(pivots[k]) == 1}


def _axpy(target: dict[int, int], factor: int, row: dict[int, int]) -> None:
    """target += factor * row (mod P), dropping zeros."""
    for k, v in row.items():
        value = (target.get(k, 0) + factor * v) % _P
        if value:
            target[k] = value
        else:
            target.pop(k, None)


def _complement(cell, values, members, cell_lines, unknown: set, keep) -> Hashable:
    """The published cell to withhold next to protect ``cell``.

    The smallest non-zero ordinary cell (``keep`` rank 0) in a line through ``cell``; when
    there is none, the search moves outwards through the lines of the unknown cells met so
    far. Only when no ordinary cell is reachable does it take, from the nearest lines with
    a published cell, the one of the lowest rank (then non-zero, then smallest).
    """
    seen_cells, frontier, nearest = {cell}, [cell], []
    while frontier:
        line_ids = {i for c in frontier for i in cell_lines[c]}
        cells = {c for i in line_ids for c in members[i]}
        candidates = [c for c in cells if c not in unknown]
        ordinary = [c for c in candidates if values[c] > 0 and not keep.get(c, 0)]
        if ordinary:
            return min(ordinary, key=lambda c: (values[c], repr(c)))
        nearest = nearest or candidates
        frontier = [c for c in cells if c not in seen_cells and c in unknown]
        seen_cells.update(frontier)
    if not nearest:
        raise DisclosureError("a small count cannot be protected by withholding more cells")
    return min(nearest, key=lambda c: (int(keep.get(c, 0)), values[c] == 0, values[c], repr(c)))


# --- rounding (preferred to withholding) --------------------------------------------------
#
# OpenSAFELY's default output rule: counts of 7 or fewer are withheld and every other count
# is rounded to the nearest 5 (OpenSAFELY documentation, "Updated disclosure control
# guidance"; ehrQL measures apply it by default, opensafely-core/ehrql PR #1746). A rounded
# figure r tells a reader only that the count lies in [r - 2, r + 2], so a withheld count can
# rarely be worked out by subtraction and far fewer cells need withholding as complements.
#
# What a reader can still work out is checked by interval propagation over the same lines
# the exact method uses: every published rounded cell is an interval, a published 0 is
# exactly 0, a withheld cell or a hidden difference is at least 0; each line
# (total = sum of parts) narrows the intervals of its members, to a fixed point. A withheld
# count, or a hidden difference from 1 to ``small_cell_max``, whose interval becomes
# narrower than a published rounded figure's (``rounding_base - 1``) is exposed, and one
# more cell of its lines is withheld (the same choice of complement as the exact method).

INF = float("inf")


def round_count(value: float, base: int) -> int:
    """``value`` rounded to the nearest multiple of ``base`` (halves up); base <= 1: unchanged."""
    if base <= 1:
        return int(value)
    return int((int(value) + base // 2) // base * base)


def rounding_interval(published: int, base: int) -> tuple[float, float]:
    """The counts that a published rounded figure can stand for."""
    if base <= 1 or published == 0:
        return float(published), float(published)
    half_down, half_up = base // 2, (base - 1) // 2   # 10 (base 5) stands for 8..12
    return float(published - half_down), float(published + half_up)


def suppress_rounded(
    values: Mapping[Hashable, float],
    lines: Sequence[Line],
    hidden: Iterable[Hashable] = (),
    small_cell_max: int = 7,
    rounding_base: int = 5,
    keep: Mapping[Hashable, int] | None = None,
    never_withhold: int = 3,
) -> set:
    """Published cells to withhold when every other published count is rounded.

    Args:
        values: every cell's true count, hidden cells included.
        lines: additive identities ``values[total] == sum(values[p] for p in parts)``.
        hidden: cells never published (differences); protected when 1..small_cell_max.
        small_cell_max: counts from 1 to this are withheld (primary suppression).
        rounding_base: other counts are published rounded to a multiple of this.
        keep: visibility rank per cell, as for ``suppress``; cells ranked ``never_withhold``
            or higher (the headline funnel) are taken as complements only when no other cell
            can protect a count (which happens only in very small regions).
    """
    if rounding_base <= 1:
        return suppress(values, lines, hidden, small_cell_max, keep)
    hidden = set(hidden)
    keep = keep or {}
    withheld = primary(values, [c for c in values if c not in hidden], small_cell_max)
    members = _line_members(lines)
    cell_lines: dict[Hashable, list[int]] = defaultdict(list)
    for i, cells in enumerate(members):
        for c in cells:
            cell_lines[c].append(i)
    min_width = rounding_base - 1
    protected = [c for c in values if (c in hidden and 1 <= values[c] <= small_cell_max)]

    def exposed() -> list:
        bounds = propagate(_prior(values, hidden, withheld, small_cell_max, rounding_base), members, cell_lines)
        cells = [c for c in withheld if values[c] >= 1] + protected
        return sorted((c for c in cells if bounds[c][1] - bounds[c][0] < min_width), key=repr)

    headline = {c for c, r in keep.items() if r >= never_withhold}
    while True:
        found = exposed()
        if not found:
            return withheld
        touched: set[int] = set()
        for cell in found:
            if touched.intersection(cell_lines[cell]):
                continue
            try:
                extra = _complement(cell, values, members, cell_lines, withheld | hidden | set(headline), keep)
            except DisclosureError:
                # Only a headline count can protect it (a very small region): withhold that
                # rather than publish, as the exact method would.
                extra = _complement(cell, values, members, cell_lines, withheld | hidden, keep)
            withheld.add(extra)
            touched.update(cell_lines[extra])


def _prior(values, hidden: set, withheld: set, small_cell_max: int, base: int) -> dict:
    """What a reader knows about each cell before combining lines."""
    prior = {}
    for c, v in values.items():
        if c in hidden or c in withheld:
            # Counts are >= 0: the same knowledge the exact method grants a reader.
            prior[c] = (0.0, INF)
        else:
            lo, hi = rounding_interval(round_count(v, base), base)
            prior[c] = (max(lo, small_cell_max + 1.0) if hi > 0 else 0.0, hi)
    return prior


def propagate(bounds: dict, members, cell_lines) -> dict:
    """Narrow integer intervals by every line (total = sum of parts) to a fixed point."""
    bounds = dict(bounds)
    todo = set(range(len(members)))
    while todo:
        i = todo.pop()
        total, *parts = members[i]
        changed = []
        t_lo, t_hi = bounds[total]
        new_total = (max(t_lo, sum(bounds[p][0] for p in parts)), min(t_hi, sum(bounds[p][1] for p in parts)))
        if new_total != (t_lo, t_hi):
            bounds[total] = new_total
            changed.append(total)
        t_lo, t_hi = bounds[total]
        lo_sum = sum(bounds[p][0] for p in parts)
        finite_hi = sum(bounds[p][1] for p in parts if bounds[p][1] < INF)
        unbounded = sum(1 for p in parts if bounds[p][1] == INF)
        for p in parts:
            p_lo, p_hi = bounds[p]
            others_lo = lo_sum - p_lo
            # others' upper sum is finite only if no other part is unbounded
            others_unbounded = unbounded - (p_hi == INF)
            lo = p_lo if others_unbounded else max(p_lo, float(math.ceil(t_lo - (finite_hi - (p_hi if p_hi < INF else 0)))))
            hi = p_hi if t_hi == INF else min(p_hi, float(math.floor(t_hi - others_lo)))
            if lo > hi:
                raise DisclosureError("inconsistent counts: an additive identity does not hold")
            if (lo, hi) != (p_lo, p_hi):
                bounds[p] = (lo, hi)
                changed.append(p)
        for c in changed:
            todo.update(cell_lines[c])
    return bounds
