"""The metric catalogue: every exported statistic, how it adds up, and the schema version.

Two kinds of file share this catalogue:

* ``aggregates.json`` (the federated export) holds only ADDITIVE statistics: person counts,
  sums and histogram bins, per (dimension, level, metric). Adding two regions' files cell by
  cell gives exactly what one run over both regions would give, so the national view is a
  sum followed by disclosure control.
* ``pilot_metrics.json`` (for evaluators) holds the same counts after disclosure control plus
  rates, means and medians derived from them.

The ``LINES`` below are the additive identities that hold inside one level (``referred`` is
the sum of the referral outcomes, ...). Disclosure control uses them, together with the
"levels of a dimension add up to the total" identities, to make sure no suppressed count can
be worked out from published ones. Cells named ``_...`` are never published (they are the
differences that an evaluator could otherwise compute by subtraction) but are protected like
published cells when they hold 1..small_cell_max people.

Bump ``SCHEMA_VERSION``'s major number when a metric changes meaning; ``merge`` refuses to
add files of different major versions.
"""

from __future__ import annotations

from dataclasses import dataclass

# 2.0: new_cases is a count with its own identity (new_cases = confirmed + cascade_positive).
SCHEMA_VERSION = "2.0"
AGGREGATES_SCHEMA = "fh-screen.metrics.aggregates"
PILOT_SCHEMA = "fh-screen.metrics.pilot"

ALL = "all"
# Levels for people without a value, so that the levels of each dimension partition everyone.
NO_CLINIC = "not_referred"
NO_PRACTICE = "no_practice"
NOT_REFERRED_MONTH = "not_referred"

# "month" is the referral cohort month (month first listed on a worklist): the funnel of
# everyone referred in a month, followed up to the run date.
DIMENSIONS = ("all", "region", "clinic", "practice", "sex", "age_band", "month")
# Dimensions with few levels: calibration bins are only broken down by these.
COARSE_DIMENSIONS = ("all", "region")

# Age at the run date; bands close on the left. Under 18 = the paediatric pathway.
AGE_BANDS = ((0, "0-17"), (18, "18-39"), (40, "40-59"), (60, "60-79"), (80, "80+"))

# The funnel steps: kept visible where possible, other cells are withheld first as complements.
FUNNEL = ("population", "tested", "flagged", "referred", "attended", "confirmed")

RULES = ("dlcn", "simon_broome", "medped", "lab_flag", "model")

OUTCOMES = ("fh_genetic", "fh_clinical", "not_fh", "did_not_attend", "declined", "pending")
ATTENDED_OUTCOMES = ("fh_genetic", "fh_clinical", "not_fh")
CONFIRMED_OUTCOMES = ("fh_genetic", "fh_clinical")

# Model probability bins for calibration (upper edges; the last bin includes 1.0).
CALIBRATION_EDGES = (0.2, 0.4, 0.6, 0.8, 1.0)
CALIBRATION_BINS = tuple(f"p{i}" for i in range(len(CALIBRATION_EDGES)))

# Time-to-event histograms: weekly bins, the last one open-ended; exported as metrics named
# hist_<duration>_w<week, 3 digits>, so medians can be computed after a merge.
HIST_WEEKS = 104
DURATIONS = ("days_flag_to_listed", "days_listed_to_visit")
# The people each duration is measured on (the n of its median).
DURATION_N = {"days_flag_to_listed": "referred", "days_listed_to_visit": "attended"}


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str            # count | sum | hist
    label: str
    dims: tuple[str, ...] = DIMENSIONS


def _counts() -> list[Metric]:
    m = [
        Metric("population", "count", "People in the population (alive and resident, or ever referred)"),
        Metric("tested", "count", "People with any lipid result"),
        Metric("flagged", "count",
               "People the worklists select (a rule, or the model with a clinical criterion), or ever referred"),
        Metric("referred", "count", "People listed on a GP worklist for lipid-clinic referral"),
        Metric("attended", "count", "Referred people seen in a lipid clinic"),
        Metric("confirmed", "count", "Referred people with FH confirmed (genetic or clinical)"),
    ]
    m += [Metric(f"outcome_{o}", "count", f"Referred people whose latest clinic outcome is {o}") for o in OUTCOMES]
    m += [
        Metric("outcome_none", "count", "Referred people with no clinic outcome yet"),
        Metric("treatment_changed", "count", "Referred people whose lipid-lowering treatment started or intensified after referral"),
        Metric("treatment_started", "count", "Referred people who started lipid-lowering treatment after referral"),
        Metric("treatment_intensified", "count", "Referred people whose treatment was intensified after referral"),
        Metric("ldl_change_n", "count", "Referred people with an LDL-C before and at least 28 days after referral"),
        Metric("already_diagnosed", "count", "People with an FH diagnosis before screening"),
        Metric("cascade_identified", "count", "Relatives of index cases identified for cascade testing"),
        Metric("cascade_contacted", "count", "Relatives sent a family letter"),
        Metric("cascade_tested", "count", "Contacted relatives tested"),
        Metric("cascade_positive", "count", "Tested relatives found to have FH"),
    ]
    for rule in RULES:
        m.append(Metric(f"rule_pos_{rule}", "count", f"Attended people positive on {rule} at referral"))
        m.append(Metric(f"rule_pos_confirmed_{rule}", "count", f"Attended people positive on {rule} and confirmed FH"))
    # The cases a programme is judged by (Marks et al., BMJ 2002: cost per case found),
    # published as one rounded count so that it shows even when the relatives' part is a
    # withheld small count; region totals only, as the cost per case found is.
    m.append(Metric("new_cases", "count", "New FH cases found: referred people confirmed plus tested relatives "
                    "found to have FH", COARSE_DIMENSIONS))
    m.append(Metric("calib_n", "count", "Attended people with a model probability", COARSE_DIMENSIONS))
    m.append(Metric("calib_confirmed", "count", "Attended people with a model probability and confirmed FH", COARSE_DIMENSIONS))
    for b in CALIBRATION_BINS:
        m.append(Metric(f"calib_n_{b}", "count", f"Attended people in probability bin {b}", COARSE_DIMENSIONS))
        m.append(Metric(f"calib_confirmed_{b}", "count", f"Confirmed people in probability bin {b}", COARSE_DIMENSIONS))
    return m


# Tonight's selection (fh_screen.stages.referrals.backlog, table selection_runs): how many were
# selected and queued, and what stays below the line. Region totals only.
SELECTION_COUNTS = {
    "sel_candidates": "People selected and due for a referral tonight, before the backlog line",
    "sel_prospective": "Prospective flags tonight: new evidence since the last run",
    "sel_backlog": "People from the backlog queued or listed for the first time tonight, within the horizon",
    "queue_horizon": "People listed for a lipid clinic tonight or queued within the horizon",
    "backlog_size": "Backlog: historic candidates queued or below the line tonight",
    "backlog_below_line": "Eligible historic candidates below the line: not queued, on no list",
    "check_first_listed": "People listed to check a secondary cause first tonight",
    "check_first_held": "Check-first candidates held: outside the horizon, on no list",
}
SELECTION_SUMS = {
    "below_line_expected_carriers": "Expected carriers below the line (summed calibrated probability)",
    "horizon_expected_carriers": "Expected carriers among those listed or queued for a clinic (summed probability)",
    "backlog_weekly_places": "Clinic places a week left after the expected prospective flow",
}


def _selection() -> list[Metric]:
    return ([Metric(n, "count", label, COARSE_DIMENSIONS) for n, label in SELECTION_COUNTS.items()]
            + [Metric(n, "sum", label, COARSE_DIMENSIONS) for n, label in SELECTION_SUMS.items()])


def _sums() -> list[Metric]:
    m = [
        Metric("ldl_change_sum_mmol", "sum", "Sum of LDL-C change after referral (mmol/L)"),
        Metric("expected_cases", "sum", "Expected FH cases: population x expected prevalence"),
        Metric("cost_dkk", "sum", "Programme cost in DKK from the region's unit costs"),
    ]
    for b in CALIBRATION_BINS:
        m.append(Metric(f"calib_prob_sum_{b}", "sum", f"Sum of model probabilities in bin {b}", COARSE_DIMENSIONS))
    return m


METRICS: dict[str, Metric] = {m.name: m for m in _counts() + _sums() + _selection()}
COUNT_METRICS = tuple(n for n, m in METRICS.items() if m.kind == "count")
SUM_METRICS = tuple(n for n, m in METRICS.items() if m.kind == "sum")


def metric_kind(name: str) -> str:
    if name.startswith("hist_"):
        return "hist"
    return METRICS[name].kind


def _lines() -> list[tuple[str, tuple[str, ...]]]:
    """(total, parts) identities within one level. ``_x`` cells are hidden differences."""
    lines = [
        ("population", ("tested", "_not_tested")),
        ("population", ("already_diagnosed", "_not_already_diagnosed")),
        ("tested", ("flagged", "_tested_not_flagged")),
        ("flagged", ("referred", "_flagged_not_referred")),
        ("referred", tuple(f"outcome_{o}" for o in OUTCOMES) + ("outcome_none",)),
        ("attended", tuple(f"outcome_{o}" for o in ATTENDED_OUTCOMES)),
        ("confirmed", tuple(f"outcome_{o}" for o in CONFIRMED_OUTCOMES)),
        ("referred", ("treatment_changed", "_treatment_unchanged")),
        ("treatment_changed", ("treatment_started", "treatment_intensified")),
        ("referred", ("ldl_change_n", "_ldl_change_missing")),
        ("cascade_identified", ("cascade_contacted", "_cascade_not_contacted")),
        ("cascade_contacted", ("cascade_tested", "_cascade_not_tested")),
        ("cascade_tested", ("cascade_positive", "_cascade_negative")),
    ]
    for rule in RULES:
        lines += [
            ("attended", (f"rule_pos_{rule}", f"_rule_neg_{rule}")),
            (f"rule_pos_{rule}", (f"rule_pos_confirmed_{rule}", f"_rule_pos_not_confirmed_{rule}")),
            ("confirmed", (f"rule_pos_confirmed_{rule}", f"_rule_neg_confirmed_{rule}")),
        ]
    return lines


LINES = _lines()
# Lines that only exist where calibration metrics are broken down.
CALIBRATION_LINES = [
    ("attended", ("calib_n", "_calib_no_probability")),
    ("confirmed", ("calib_confirmed", "_calib_confirmed_no_probability")),
    ("calib_n", tuple(f"calib_n_{b}" for b in CALIBRATION_BINS)),
    ("calib_confirmed", tuple(f"calib_confirmed_{b}" for b in CALIBRATION_BINS)),
] + [(f"calib_n_{b}", (f"calib_confirmed_{b}", f"_calib_not_confirmed_{b}")) for b in CALIBRATION_BINS]


# Lines of the region-total-only counts.
COARSE_LINES = CALIBRATION_LINES + [("new_cases", ("confirmed", "cascade_positive"))]


def lines_for(dimension: str) -> list[tuple[str, tuple[str, ...]]]:
    return LINES + (COARSE_LINES if dimension in COARSE_DIMENSIONS else [])
