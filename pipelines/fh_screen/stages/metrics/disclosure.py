"""Statistical disclosure control for evaluator outputs: primary and secondary suppression,
with counts published exactly or rounded.

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
3. Non-negativity can pin a cell the equations leave free; linear programming (minimise and
   maximise each protected cell subject to the lines and the published figures) finds it.
4. If a protected cell (a withheld published cell >= 1, or a hidden cell in 1..max) is
   determined, withhold one more published cell from one of its lines: the smallest
   non-zero one, preferring ordinary cells over totals so totals stay visible.

With rounding (``suppress_rounded``) a published figure is an interval, and the same linear
programs give the exact range a reader can work out for each protected cell; a range
narrower than a rounded figure's is exposed and handled as in 4.

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

import numpy as np
from scipy import sparse
# HiGHS as scipy bundles it (scipy is pinned): ``linprog`` rebuilds and re-solves every
# program from nothing, while this keeps one solver per component and re-solves from the
# last basis when only the objective changes (4.3 CPU s -> well under 1 s on a 1M region).
from scipy.optimize._highspy import _core as highs


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
    cell_lines = _cell_lines(members)

    def protected(c: Hashable) -> bool:
        v = values[c]
        return (1 <= v <= small_cell_max) if c in hidden else v >= 1

    def exposed(determined: set) -> list:
        return sorted((c for c in determined if protected(c)), key=repr)

    reader = _Reader(values, members)

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
            found = _pinned_by_bounds(reader, values, hidden, withheld, small_cell_max, protected)
        if not found:
            return withheld
        _protect(found, withheld, hidden, values, members, cell_lines, keep)


def _pinned_by_bounds(reader: "_Reader", values, hidden: set, withheld: set, small_cell_max: int,
                      protected) -> list:
    """Protected cells that the lines pin to one value once counts are known to be >= 0.

    The equations alone can leave a cell free while non-negativity fixes it: with
    ``a + z = 5``, ``b + y = 5`` and ``a + b = 10`` a reader knows ``a = b = 5`` although
    no single line has one unknown. Linear programming over the exact published figures
    finds such cells.
    """
    cells = [c for c in set(withheld) | hidden if protected(c)]
    return reader.exposed(_prior(values, hidden, withheld, small_cell_max, 1), cells, 1)


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


def _cell_lines(members: list[tuple[Hashable, ...]]) -> dict[Hashable, list[int]]:
    """cell -> the indexes of the lines it is in."""
    cell_lines: dict[Hashable, list[int]] = defaultdict(list)
    for i, cells in enumerate(members):
        for c in cells:
            cell_lines[c].append(i)
    return cell_lines


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
# What a reader can still work out is computed exactly, by linear programming over the same
# lines the exact method uses (``_Reader``): every published rounded cell is an interval, a
# published 0 is exactly 0, a withheld cell or a hidden difference is at least 0, every line
# holds, and each protected cell is minimised and maximised. A withheld count, or a hidden
# difference from 1 to ``small_cell_max``, whose range (in whole numbers) is narrower than a
# published rounded figure's (``rounding_base - 1``) is exposed, and one more cell of its
# lines is withheld (the same choice of complement as the exact method), to a fixed point.
# Interval propagation line by line is not enough: in a level of 13 people it left a
# referred count of 1 at 0..6 while the rounded figures of all lines together pin it to 0..3.

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
    hidden, keep = set(hidden), keep or {}
    withheld = primary(values, [c for c in values if c not in hidden], small_cell_max)
    members = _line_members(lines)
    cell_lines = _cell_lines(members)
    reader = _Reader(values, members)
    headline = headline_cells(keep, never_withhold)
    # Withholding only widens what a reader must allow: a cell once wide enough stays so, and
    # only the cells exposed last round and the complements just withheld need checking again.
    to_check = rounded_protected(values, hidden, withheld, small_cell_max)
    while True:
        prior = _prior(values, hidden, withheld, small_cell_max, rounding_base)
        found = reader.exposed(prior, to_check, narrowest_range(rounding_base))
        if not found:
            return withheld
        to_check = list(found)
        for extra in _withhold_complements(found, values, members, cell_lines, withheld, hidden, headline, keep):
            if values[extra] >= 1:
                to_check.append(extra)


def headline_cells(keep: Mapping[Hashable, int], never_withhold: int) -> set:
    """Cells ranked ``never_withhold`` or higher (the headline funnel): complements only when
    nothing else can protect a count."""
    return {c for c, r in keep.items() if r >= never_withhold}


def rounded_protected(values: Mapping[Hashable, float], hidden: set, withheld: set, small_cell_max: int) -> list:
    """The cells a reader must not narrow, to check first: every withheld count of 1 or more
    (a withheld 0 reveals nothing), then every hidden difference from 1 to ``small_cell_max``."""
    return ([c for c in withheld if values[c] >= 1]
            + [c for c in values if (c in hidden and 1 <= values[c] <= small_cell_max)])


def narrowest_range(rounding_base: int) -> int:
    """The narrowest range (highest minus lowest whole count) a reader may be left with for a
    protected cell: that of one published rounded figure (4 for base 5: 10 stands for 8..12),
    so a small count is never known more precisely than any published count."""
    return rounding_base - 1


def _withhold_complements(found: list, values, members, cell_lines, withheld: set, hidden: set, headline: set,
                          keep) -> list:
    """Withhold one complement for each exposed cell whose lines no complement of this round
    touches yet, and return them. A complement is a cell other than a headline one when one
    can protect the cell; otherwise a headline cell, since only a headline count can protect
    it (a very small region): withheld rather than published, as the exact method would."""
    touched: set[int] = set()
    added = []
    for cell in found:
        if touched.intersection(cell_lines[cell]):
            continue
        try:
            extra = _complement(cell, values, members, cell_lines, withheld | hidden | headline, keep)
        except DisclosureError:
            extra = _complement(cell, values, members, cell_lines, withheld | hidden, keep)
        withheld.add(extra)
        touched.update(cell_lines[extra])
        added.append(extra)
    return added


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


class _Reader:
    """What a reader can work out about each cell: exact linear-programming bounds.

    Minimising and maximising a cell subject to every line and to what each cell is known
    to be (``_prior``) gives the tightest interval any combination of the published figures
    yields; a reader knows counts are whole numbers, so the interval is rounded inwards.
    Interval propagation line by line is weaker: it misses what only a combination of lines
    reveals, e.g. that ``referred`` of a small level is 0..3 while each line alone allows 0..6.

    Each program covers only the connected component of the cell (cells linked through
    lines by cells that are not fixed). Every solution is a table the reader cannot rule
    out; the range of values seen in those tables (the true table first) proves a cell wide
    enough without solving for it. Withholding more only widens what the reader must allow,
    so these witnesses stay valid while ``withheld`` grows.
    """

    def __init__(self, values: Mapping[Hashable, float], members) -> None:
        self.cells = list(values)
        self.index = {c: k for k, c in enumerate(self.cells)}
        self.members = members
        rows, cols, data = [], [], []
        for i, line in enumerate(members):
            for sign, c in zip(_signs(line), line):
                rows.append(i)
                cols.append(self.index[c])
                data.append(sign)
        self.matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(members), len(self.cells)))
        truth = np.array([values[c] for c in self.cells], dtype=float)
        self._random = np.random.default_rng(0)   # reproducible: the same table, the same result
        self.seen_lo, self.seen_hi = truth.copy(), truth.copy()
        self._solvers: dict = {}

    def exposed(self, prior: Mapping[Hashable, tuple[float, float]], cells: Iterable[Hashable],
                min_width: int) -> list:
        """The cells among ``cells`` that a reader can pin to fewer than ``min_width + 1`` values."""
        lo = np.array([prior[c][0] for c in self.cells], dtype=float)
        hi = np.array([prior[c][1] for c in self.cells], dtype=float)
        component = self._components(lo, hi)
        self._solvers = {}   # a new prior: the components' programs change
        pending = [c for c in sorted(set(cells), key=repr)
                   if _width(self.seen_lo[self.index[c]], self.seen_hi[self.index[c]]) < min_width]
        self._spread(pending, component, lo, hi, min_width)
        found = []
        for cell in pending:
            k = self.index[cell]
            if _width(self.seen_lo[k], self.seen_hi[k]) >= min_width:
                continue
            cols, rows = component[k]
            low = self._solve(k, cols, rows, lo, hi, 1.0)
            if _width(self.seen_lo[k], self.seen_hi[k]) >= min_width:
                continue
            high = self._solve(k, cols, rows, lo, hi, -1.0)
            if _width(low, high) < min_width:
                found.append(cell)
        return found

    def _spread(self, pending: list, component, lo: np.ndarray, hi: np.ndarray, min_width: int) -> None:
        """Two programs per component push all pending cells down, then up, at once: their
        solutions are witnesses that settle most cells without a program of their own.
        Unbounded cells are capped for this, which only shrinks the set of tables allowed."""
        by_component: dict[int, list[int]] = defaultdict(list)
        for c in pending:
            k = self.index[c]
            by_component[id(component[k][0])].append(k)
        capped = np.where(hi == INF, np.maximum(self.seen_hi, lo) + 2 * min_width + 2, hi)
        for ks in by_component.values():
            cols, rows = component[ks[0]]
            for sense in (1.0, -1.0):
                self._program(ks, cols, rows, lo, capped, sense)
            # Then random halves down and up: each cell is pushed one way or the other.
            for _ in range(_SPREADS):
                ks = [k for k in ks if _width(self.seen_lo[k], self.seen_hi[k]) < min_width]
                if len(ks) < 2:
                    break
                down = self._random.random(len(ks)) < 0.5
                self._program(ks, cols, rows, lo, capped, np.where(down, 1.0, -1.0))

    def _components(self, lo: np.ndarray, hi: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Cell index -> (columns, rows) of its connected component; fixed cells link nothing."""
        parent = list(range(len(self.cells)))

        def root(k: int) -> int:
            while parent[k] != k:
                parent[k] = parent[parent[k]]
                k = parent[k]
            return k

        free = lo < hi
        line_free = []
        for line in self.members:
            ks = [self.index[c] for c in line if free[self.index[c]]]
            line_free.append(ks)
            for k in ks[1:]:
                parent[root(k)] = root(ks[0])
        rows_of: dict[int, list[int]] = defaultdict(list)
        for i, ks in enumerate(line_free):
            if ks:
                rows_of[root(ks[0])].append(i)
        result: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for r, rows in rows_of.items():
            rows_arr = np.array(rows)
            cols = np.unique(self.matrix[rows_arr].indices)
            for k in cols:
                if free[k]:
                    result[int(k)] = (cols, rows_arr)
        for k in np.flatnonzero(free):
            result.setdefault(int(k), (np.array([k]), np.array([], dtype=int)))
        return result

    def _solve(self, k: int, cols: np.ndarray, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray,
               sense: float) -> float:
        """min (sense 1) or max (sense -1) of cell ``k``."""
        return self._program([k], cols, rows, lo, hi, sense)

    def _program(self, ks: list[int], cols: np.ndarray, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 sense: float) -> float:
        """min (sense 1) or max (sense -1) of the sum of cells ``ks``; records the solution as a
        witness and fails closed on anything but an answer (an unbounded maximum is INF).

        The answer is the program's optimum whichever basis the solver starts from, so the
        cells found exposed do not depend on the order programs are solved in."""
        objective = np.zeros(len(cols))
        objective[np.searchsorted(cols, ks)] = sense
        if not np.isscalar(sense):
            sense = 0.0   # a mixed objective serves only as a witness
        solver = self._solver(cols, rows, lo, hi)
        solver.changeColsCost(len(cols), np.arange(len(cols), dtype=np.int32), objective)
        solver.run()
        status = solver.getModelStatus()
        # The true table satisfies every line and prior, so the program is never infeasible:
        # "unbounded or infeasible" is an unbounded maximum.
        if status in _UNBOUNDED and np.any(objective < 0):
            return INF
        if status != highs.HighsModelStatus.kOptimal:
            raise DisclosureError("what a reader can work out could not be computed "
                                  f"({solver.modelStatusToString(status)})")
        x = np.asarray(solver.getSolution().col_value)
        self.seen_lo[cols] = np.minimum(self.seen_lo[cols], x)
        self.seen_hi[cols] = np.maximum(self.seen_hi[cols], x)
        return sense * solver.getInfo().objective_function_value

    def _solver(self, cols: np.ndarray, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray):
        """One HiGHS model per component and prior (``exposed`` empties the cache): the lines
        of the component, each cell boxed by what a reader knows, objective set per program."""
        key = (cols.tobytes(), lo[cols].tobytes(), hi[cols].tobytes())
        if key not in self._solvers:
            solver = highs._Highs()
            solver.setOptionValue("output_flag", False)
            n = len(cols)
            solver.addCols(n, np.zeros(n), lo[cols], np.minimum(hi[cols], highs.kHighsInf), 0,
                           np.zeros(n, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
            if len(rows):
                lines = self.matrix[rows][:, cols].tocsr()
                solver.addRows(len(rows), np.zeros(len(rows)), np.zeros(len(rows)), lines.nnz,
                               lines.indptr[:-1].astype(np.int32), lines.indices.astype(np.int32),
                               lines.data.astype(float))
            self._solvers[key] = solver
        return self._solvers[key]


_UNBOUNDED = (highs.HighsModelStatus.kUnbounded, highs.HighsModelStatus.kUnboundedOrInfeasible)
_SPREADS = 6   # random witness programs per component before one program per cell
_EPS = 1e-6   # solver tolerance when rounding a bound to the whole numbers it allows


def _width(lo: float, hi: float) -> float:
    """How many steps of whole numbers lie in [lo, hi]."""
    if hi == INF:
        return INF
    return math.floor(hi + _EPS) - math.ceil(lo - _EPS)
