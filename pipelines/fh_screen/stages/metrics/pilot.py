"""The evaluator document ``pilot_metrics.json``: headline figures, the suppressed count
table, derived values and published benchmarks, built from an aggregates document (one
region's or a national merge), so a region and the nation get exactly the same treatment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

import fh_screen
from fh_screen.reference import REFERENCE_DIR
from fh_screen.stages.metrics import derive, federated
from fh_screen.outputs import metrics_schema as S

BENCHMARKS = REFERENCE_DIR / "metrics_benchmarks.yaml"

FUNNEL = S.FUNNEL
HEADLINE = FUNNEL + (
    "outcome_fh_genetic", "outcome_fh_clinical", "already_diagnosed", "treatment_changed",
    "cascade_identified", "cascade_contacted", "cascade_tested", "cascade_positive", "new_cases",
)
HEADLINE_DERIVED = (
    "attended_share", "confirmed_share_of_referred", "confirmed_share_of_attended", "treatment_changed_share",
    "ldl_change_mean_mmol", "median_days_flag_to_listed", "median_days_listed_to_visit",
    "expected_cases", "share_of_expected_found", "cost_dkk", "cost_per_confirmed_case_dkk", "cost_per_new_case_dkk",
    "cascade_positive_share",
) + tuple(f"ppv_{r}" for r in S.RULES)

# Tonight's selection: what was flagged, what was queued, and what waits below the line
# (docs/selection-and-waiting.md).
SELECTION = tuple(S.SELECTION_COUNTS)
SELECTION_DERIVED = tuple(name for name, _ in derive.PER_1000_TESTED) + (
    "weeks_to_clear", "below_line_expected_carriers", "horizon_expected_carriers",
)

NOTICE = (
    "Aggregate pilot metrics for evaluators. Counts from 1 to {k} are withheld{rounding}, with further "
    "cells withheld only where a withheld count could otherwise be worked out from totals; no "
    "patient-level data. Flags and referrals are decision support for clinicians, not diagnoses."
)
ROUNDING = " and every other count is rounded to the nearest {base}"
METHOD = (
    "Primary suppression of counts 1..{k}{rounding}. Secondary suppression to a fixed point over every "
    "additive identity (levels add up to totals, funnel steps and their differences, outcome "
    "breakdowns), {check}; the headline funnel is never withheld as a complement. Rates, costs and "
    "expected cases are computed from the published counts, and withheld when any input count is withheld."
)
CHECK_EXACT = "checked by exact elimination so no withheld count is determined by published ones"
CHECK_ROUNDED = ("checked by interval propagation over the rounded figures so no withheld count, and no "
                 "hidden difference of 1..{k}, can be narrowed below the {width}-wide range of a rounded figure")


@lru_cache(maxsize=1)
def benchmarks() -> list[dict]:
    return yaml.safe_load(BENCHMARKS.read_text(encoding="utf-8"))["benchmarks"]


def _unit_costs(regions: list[dict]) -> dict[str, float] | None:
    """Unit costs for costs derived from rounded counts: the regions' own when they agree,
    else the mean of each unit's cost (a national view of regions with different prices)."""
    costs = [r.get("unit_costs_dkk") or {} for r in regions]
    keys = set(costs[0])
    if not keys or any(set(c) != keys for c in costs):
        return None
    return {k: sum(c[k] for c in costs) / len(costs) for k in keys}


def pilot_document(aggregates: dict) -> dict:
    """Suppressed evaluator document from an aggregates document."""
    federated.check(aggregates)
    regions = aggregates["regions"]
    k = max(int(r["small_cell_max"]) for r in regions)
    base = max(int(r.get("rounding_base", 1)) for r in regions)
    tables = derive.evaluator_tables(federated.table_of(aggregates), k, base, _unit_costs(regions),
                                     sum(r["expected_prevalence"] for r in regions) / len(regions))
    counts = derive.lookup(tables["counts"])
    derived = derive.lookup(tables["derived"])
    withheld = sum(r["status"] == "suppressed" for r in tables["counts"])
    marks = []
    for b in benchmarks():
        mark = dict(b)
        if b.get("compare_with"):
            mark["pilot"] = derived.get(b["compare_with"], {"value": None, "status": "not_applicable"})
        marks.append(mark)
    return {
        "schema": S.PILOT_SCHEMA,
        "schema_version": S.SCHEMA_VERSION,
        "release": "evaluators",
        "notice": NOTICE.format(k=k, rounding=ROUNDING.format(base=base) if base > 1 else ""),
        "code_version": fh_screen.__version__,
        "regions": regions,
        "as_of": max(r["as_of"] for r in regions),
        "disclosure": {
            "small_cell_max": k,
            "rounding_base": base,
            "method": METHOD.format(k=k, rounding=ROUNDING.format(base=base) if base > 1 else "",
                                    check=CHECK_ROUNDED.format(k=k, width=base) if base > 1 else CHECK_EXACT),
            "counts_published": len(tables["counts"]) - withheld,
            "counts_withheld": withheld,
        },
        "headline": {m: counts.get(m, {"value": 0, "status": "ok"}) for m in HEADLINE}
        | {m: derived[m] for m in HEADLINE_DERIVED},
        "selection": {m: counts.get(m, {"value": 0, "status": "ok"}) for m in SELECTION}
        | {m: derived.get(m, {"value": None, "status": "not_applicable"}) for m in SELECTION_DERIVED},
        "definitions": {name: metric.label for name, metric in S.METRICS.items() if metric.kind == "count"},
        "benchmarks": marks,
        "counts": tables["counts"],
        "derived": tables["derived"],
    }
