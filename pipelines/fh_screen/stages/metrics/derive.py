"""From the additive federated table to what evaluators see: suppressed counts and the
rates, means, medians, shares and costs derived from them.

Every derived value carries a status: ``ok``; ``suppressed`` (an input count is withheld,
so the value could reveal it); ``not_applicable`` (its denominator is 0). A suppressed or
not-applicable value is ``None``, never 0 or NaN.
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial

import polars as pl

from fh_screen.stages.metrics import compute, disclosure
from fh_screen.outputs import metrics_schema as S

Cell = tuple[str, str, str]   # (dimension, level, metric)

# (name, numerator, denominator): shares published next to the counts.
RATES: tuple[tuple[str, str, str], ...] = (
    ("tested_share", "tested", "population"),
    ("flagged_share", "flagged", "tested"),
    ("referred_share", "referred", "flagged"),
    ("attended_share", "attended", "referred"),
    ("confirmed_share_of_attended", "confirmed", "attended"),
    ("confirmed_share_of_referred", "confirmed", "referred"),
    ("treatment_changed_share", "treatment_changed", "referred"),
    ("cascade_contacted_share", "cascade_contacted", "cascade_identified"),
    ("cascade_tested_share", "cascade_tested", "cascade_contacted"),
    ("cascade_positive_share", "cascade_positive", "cascade_tested"),
) + tuple((f"ppv_{r}", f"rule_pos_confirmed_{r}", f"rule_pos_{r}") for r in S.RULES)

COST_UNITS = ("referred", "attended", "cascade_tested", "cascade_contacted")


def _hidden_names(dimension: str) -> list[str]:
    return sorted({p for _, parts in S.lines_for(dimension) for p in parts if p.startswith("_")})


def _count_names(dimension: str) -> list[str]:
    return [m for m in S.COUNT_METRICS if dimension in S.METRICS[m].dims]


def levels(aggregates: pl.DataFrame) -> dict[str, list[str]]:
    """The levels of each dimension present in the table ("all" always has "all")."""
    out = {d: sorted(aggregates.filter(pl.col("dimension") == d)["level"].unique().to_list()) for d in S.DIMENSIONS}
    out["all"] = [S.ALL]
    return out


def _system_levels(aggregates: pl.DataFrame) -> dict[str, list[str]]:
    """Levels that take part in suppression. A dimension with one level (the region of a
    single-region run) repeats the totals cell for cell, so it is left out and shown as
    a copy of the totals; otherwise withholding one of its cells would force the total out."""
    return {d: lvls for d, lvls in levels(aggregates).items() if d == "all" or len(lvls) > 1}


def _effective(dimension: str, level: str, lvls: dict[str, list[str]]) -> tuple[str, str]:
    return (dimension, level) if dimension in lvls else (S.ALL, S.ALL)


def cell_system(aggregates: pl.DataFrame) -> tuple[dict[Cell, float], list, set[Cell]]:
    """The count cells (hidden differences included) and the additive lines between them."""
    raw = {(d, lv, m): v for d, lv, m, v in aggregates.select("dimension", "level", "metric", "value").iter_rows()}
    lv_by_dim = _system_levels(aggregates)
    values: dict[Cell, float] = {}
    lines: list = []
    hidden: set[Cell] = set()
    for dim, lvls in lv_by_dim.items():
        for level in lvls:
            for m in _count_names(dim):
                values[(dim, level, m)] = raw.get((dim, level, m), 0.0)
            for total, parts in S.lines_for(dim):
                for p in parts:
                    if p.startswith("_"):
                        known = sum(values[(dim, level, q)] for q in parts if q != p)
                        values[(dim, level, p)] = values[(dim, level, total)] - known
                        hidden.add((dim, level, p))
                lines.append(((dim, level, total), [(dim, level, p) for p in parts]))
    negative = [c for c in hidden if values[c] < 0]
    if negative:
        raise ValueError(f"inconsistent aggregates: {len(negative)} negative differences, e.g. {negative[0][2]}")
    for dim, lvls in lv_by_dim.items():
        if dim == "all" or not lvls:
            continue
        for m in _count_names(dim) + _hidden_names(dim):
            lines.append(((S.ALL, S.ALL, m), [(dim, level, m) for level in lvls]))
    return values, lines, hidden


HEADLINE_RANK = 3   # the headline funnel: never withheld as a complement when counts are rounded


def suppressed_counts(aggregates: pl.DataFrame, small_cell_max: int,
                      rounding_base: int = 1) -> tuple[dict[Cell, float], set[Cell]]:
    """Published count cells (rounded to ``rounding_base``) and the set of them to withhold.

    With rounding, the headline funnel (the funnel steps of the grand total) is never taken
    as a complement, so it always shows unless it is itself a small count.
    """
    values, lines, hidden = cell_system(aggregates)
    # The headline funnel first, then other grand totals, then the funnel steps of each level.
    keep = {c: (HEADLINE_RANK if c[2] in S.FUNNEL else 2) if c[0] == S.ALL else 1 if c[2] in S.FUNNEL else 0
            for c in values}
    if rounding_base > 1:
        withheld = disclosure.suppress_rounded(values, lines, hidden, small_cell_max, rounding_base, keep=keep,
                                               never_withhold=HEADLINE_RANK)
    else:
        withheld = disclosure.suppress(values, lines, hidden, small_cell_max, keep=keep)
    published = {c: float(disclosure.round_count(v, rounding_base)) for c, v in values.items() if c not in hidden}
    return published, withheld


def _get(table: dict, key: tuple[str, str], metric: str) -> float:
    return table.get((*key, metric), 0.0)


def _result(value, status: str) -> dict:
    return {"value": value, "status": status}


def _ratio(num: float, den: float, blocked: bool, digits: int = 4) -> dict:
    if blocked:
        return _result(None, "suppressed")
    if den == 0:
        return _result(None, "not_applicable")
    return _result(round(num / den, digits), "ok")


def _median_from_hist(bins: dict[int, float]) -> float | None:
    """Median days from weekly bins, interpolated within the bin (the same from any merge)."""
    n = sum(bins.values())
    if n == 0:
        return None
    target, cumulative = n / 2, 0.0
    for week in sorted(bins):
        if cumulative + bins[week] >= target:
            return round(7 * week + 7 * (target - cumulative) / bins[week], 1)
        cumulative += bins[week]
    return None


def evaluator_tables(aggregates: pl.DataFrame, small_cell_max: int, rounding_base: int = 1,
                     unit_costs_dkk: dict[str, float] | None = None,
                     expected_prevalence: float | None = None) -> dict[str, list[dict]]:
    """Counts (suppressed, rounded) and derived values, each row a dict with dimension, level,
    metric, value, status.

    Rates, costs and expected cases are computed from the published (rounded) counts when
    counts are rounded, so that no derived figure gives an exact count back: the cost from
    ``unit_costs_dkk`` times the rounded units, expected cases from the rounded population
    times ``expected_prevalence``.
    """
    counts, withheld = suppressed_counts(aggregates, small_cell_max, rounding_base)
    rounded = rounding_base > 1 and unit_costs_dkk is not None and expected_prevalence is not None
    sums = {(d, lv, m): v for d, lv, m, v in aggregates.filter(pl.col("metric").is_in(S.SUM_METRICS))
            .select("dimension", "level", "metric", "value").iter_rows()}
    hists: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for d, lv, m, v in aggregates.filter(pl.col("metric").str.starts_with("hist_")).iter_rows():
        duration, week = m[len("hist_"):].rsplit("_w", 1)
        hists[(d, lv, duration)][int(week)] = v

    in_system = _system_levels(aggregates)
    count_rows, derived_rows = [], []

    def blocked(d, lv, *names) -> bool:
        return any((*_effective(d, lv, in_system), n) in withheld for n in names)

    for dim, lvls in levels(aggregates).items():
        for lv in lvls:
            key = _effective(dim, lv, in_system)
            for m in _count_names(dim):
                hidden = (*key, m) in withheld
                count_rows.append({"dimension": dim, "level": lv, "metric": m, "status": "suppressed" if hidden else "ok",
                                   "value": None if hidden else int(counts[(*key, m)])})
            c = partial(_get, counts, key)
            s = partial(_get, sums, (dim, lv))
            block = partial(blocked, dim, lv)
            out = rate_values(c, s, block, lambda duration: hists.get((dim, lv, duration), {}))
            expected = c("population") * expected_prevalence if rounded else s("expected_cases")
            cost = compute.programme_cost(c, unit_costs_dkk) if rounded else s("cost_dkk")
            out |= yield_and_cost_values(c, block, expected, cost)
            if dim in S.COARSE_DIMENSIONS:
                out |= selection_values(c, s, block)
                out |= calibration_values(c, s, block)
            derived_rows += [{"dimension": dim, "level": lv, "metric": k, **r} for k, r in out.items()]
    return {"counts": count_rows, "derived": derived_rows}


def rate_values(c, s, blocked, hist) -> dict[str, dict]:
    """The rates of ``RATES``, the mean LDL-C change and the median durations of one level;
    suppressed when a count they are computed from is withheld."""
    out: dict[str, dict] = {}
    for name, num, den in RATES:
        out[name] = _ratio(c(num), c(den), blocked(num, den))
    out["ldl_change_mean_mmol"] = _ratio(s("ldl_change_sum_mmol"), c("ldl_change_n"), blocked("ldl_change_n"), 2)
    for duration in S.DURATIONS:
        if blocked(S.DURATION_N[duration]):
            out[f"median_{duration}"] = _result(None, "suppressed")
        else:
            median = _median_from_hist(hist(duration))
            out[f"median_{duration}"] = _result(median, "ok" if median is not None else "not_applicable")
    return out


def yield_and_cost_values(c, blocked, expected: float, cost: float) -> dict[str, dict]:
    """Expected cases and the share found, the programme's cost and the cost per new and per
    confirmed case of one level."""
    out: dict[str, dict] = {}
    out["expected_cases"] = (_result(None, "suppressed") if blocked("population")
                             else _result(round(expected, 1), "ok"))
    out["share_of_expected_found"] = _ratio(c("confirmed") + c("already_diagnosed"), expected,
                                            blocked("confirmed", "already_diagnosed", "population"))
    cost_blocked = blocked(*COST_UNITS)
    out["cost_dkk"] = _result(None, "suppressed") if cost_blocked else _result(round(cost, 2), "ok")
    out["cost_per_new_case_dkk"] = _ratio(cost, c("new_cases"), cost_blocked or blocked("new_cases"), 2)
    out["cost_per_confirmed_case_dkk"] = _ratio(cost, c("confirmed"), cost_blocked or blocked("confirmed"), 2)
    return out


def calibration_values(c, s, blocked) -> dict[str, dict]:
    """Observed and mean predicted probability per calibration bin."""
    out: dict[str, dict] = {}
    for b in S.CALIBRATION_BINS:
        out[f"calib_observed_{b}"] = _ratio(c(f"calib_confirmed_{b}"), c(f"calib_n_{b}"),
                                            blocked(f"calib_confirmed_{b}", f"calib_n_{b}"))
        out[f"calib_predicted_{b}"] = _ratio(s(f"calib_prob_sum_{b}"), c(f"calib_n_{b}"), blocked(f"calib_n_{b}"))
    return out


# (name, numerator): tonight's selections per 1,000 people with a lipid result, read against
# ARIAN's laboratory flags (metrics_benchmarks.yaml, id arian_flags_per_1000_tested).
PER_1000_TESTED = (
    ("selected_per_1000_tested", "sel_candidates"),
    ("prospective_per_1000_tested", "sel_prospective"),
    ("backlog_per_1000_tested", "sel_backlog"),
)


def selection_values(c, s, blocked) -> dict[str, dict]:
    """Rates per 1,000 tested, weeks to clear the backlog and expected carriers (one level)."""
    out = {name: _ratio(1000 * c(num), c("tested"), blocked(num, "tested"), 2) for name, num in PER_1000_TESTED}
    out["weeks_to_clear"] = _ratio(c("backlog_size"), s("backlog_weekly_places"), blocked("backlog_size"), 1)
    out["below_line_expected_carriers"] = (_result(None, "suppressed") if blocked("backlog_below_line")
                                           else _result(round(s("below_line_expected_carriers"), 1), "ok"))
    out["horizon_expected_carriers"] = (_result(None, "suppressed") if blocked("queue_horizon")
                                        else _result(round(s("horizon_expected_carriers"), 1), "ok"))
    return out


def lookup(rows: list[dict], dimension: str = S.ALL, level: str = S.ALL) -> dict[str, dict]:
    """``{metric: {value, status}}`` for one level of one dimension."""
    return {r["metric"]: {"value": r["value"], "status": r["status"]}
            for r in rows if r["dimension"] == dimension and r["level"] == level}
