"""Additive pilot metrics from the curated and derived tables.

Three stages, each testable on its own, run over the region one range of about
``RANGE_PEOPLE`` patients at a time, so that memory does not grow with the region:

1. ``read_range`` and ``read_shared``: small per-person frames from DuckDB (SQL in
   ``sql/metrics_*.sql``) of one range of patients (rule results and scores only of those
   whose rows can change a metric, ``rule_rows_that_count``), and the region's referrals
   and cascade; derived tables a step has not written yet are read as empty.
2. ``person_frame``: one row per person in the population with the dimension levels and
   0/1 indicator columns for every count metric (pure polars), from named policies, one per
   group of metrics (``funnel_columns``, ``rule_positivity_columns`` ...), each with its spec
   test (tests/spec/test_metrics_person_policies.py).
3. ``level_sums`` per range, then ``aggregate`` over the ranges: the tidy federated table
   ``(dimension, level, metric, value)`` of additive statistics (counts, sums, weekly
   histogram bins), zero cells left out.

The person frame never leaves this module's callers' memory: nothing patient-level is
written by the metrics step.

Definitions (what an evaluator needs to read the numbers):
    population: alive and resident at the run date, plus anyone ever referred (so that
        the funnel nests: population >= tested >= flagged >= referred).
    tested: any non-cancelled LDL, total cholesterol, HDL or triglyceride result, or flagged.
    flagged: now selected by the worklists' own rule (``referrals.step.triggered``: the
        rules' triggers under this region's settings, incl. ``use_lab_flag``, or probability
        >= the threshold with a clinical criterion met) and not excluded, or ever referred.
    referred: ever listed on a GP worklist (``referral_events.event = 'listed'``).
    outcome: the latest clinic outcome on or after the first listing; attended =
        fh_genetic, fh_clinical or not_fh; confirmed = fh_genetic or fh_clinical.
    treatment started: a lipid-lowering (ATC C10) dispensing after referral and none in
        the year before; intensified: treated in the year before and, after referral, an
        agent not taken before or a higher tablet strength.
    LDL-C change: latest LDL-C at least 28 days after referral minus the latest on or
        before it (uncensored values only).
    rule positivity (PPV): DLCN points and model probability as listed at referral;
        Simon Broome, MEDPED and the lab flag from the current rule results.
    cascade: relatives in the cascade ledger of index patients in the population;
        contacted = letter sent; tested = contacted and the loop closed by a result after
        the letter; positive = that result is an FH confirmation or diagnosis, or LDL-C
        "likely" by the relatives' cut-offs.
    cost: unit costs x units: a GP review per referral, a lab test per referral and per
        tested relative, a clinic visit and a genetic test per attended index and per
        tested relative, a letter per contacted relative.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from fh_screen.store import db
from fh_screen.config import MetricsSettings, SelectionSettings
from fh_screen.outputs import metrics_schema as S
from fh_screen.stages.referrals.step import POSSIBLY_TRIGGERED, narrowable, triggered, with_probability

# Cascade ledger results that count as a relative found to have FH: a clinic confirmation,
# a recorded FH diagnosis, or LDL-C in the "likely" band of the relatives' cut-offs
# (biochemical cascade testing, as in the UK DH cascade audit; docs/clinical-reference.md §8).
POSITIVE_RESULTS = ("fh_genetic", "fh_clinical", "fh_diagnosis", "likely")

DIMENSION_COLUMNS = {d: f"dim_{d}" for d in S.DIMENSIONS}

_EMPTY_REFERRALS = {
    "patient_id": pl.Utf8, "listed_on": pl.Date, "clinic_id": pl.Utf8, "listed_probability": pl.Float64,
    "listed_dlcn_points": pl.Int64, "days_flag_to_listed": pl.Int64, "days_listed_to_visit": pl.Int64,
    "outcome": pl.Utf8, "treated_before": pl.Boolean, "new_or_stronger": pl.Boolean,
    "treated_after": pl.Boolean, "ldl_change_mmol": pl.Float64,
}
_EMPTY_RULES = {
    "patient_id": pl.Utf8, "age_years": pl.Int64, "dlcn_points": pl.Int64, "simon_broome": pl.Utf8,
    "medped": pl.Utf8, "lab_flag": pl.Boolean, "paediatric": pl.Utf8, "excluded_reason": pl.Utf8,
}
_EMPTY_MODEL = {"patient_id": pl.Utf8, "probability": pl.Float64, "model_version": pl.Utf8}
_EMPTY_CASCADE = {"index_patient_id": pl.Utf8, "contacted": pl.Boolean, "closed": pl.Boolean, "result": pl.Utf8}


def table_exists(con: db.Connection, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()[0])


def _frame(con, query: str, params: dict, empty: dict) -> pl.DataFrame:
    frame = con.execute(query, params).pl()
    return frame if frame.height else pl.DataFrame(schema=empty)


# People whose per-person rows the metrics hold at a time: memory is set by this number, not
# by the region's size (a 1M region is read in four ranges, a 3M one in twelve).
RANGE_PEOPLE = 250_000

Range = tuple[str | None, str | None]   # patient ids from lo up to but not including hi (None: open)


def patient_ranges(con: db.Connection, people: int) -> list[Range]:
    """Consecutive ranges of about ``people`` patients in patient order, covering every id."""
    bounds = [r[0] for r in con.execute(
        "SELECT patient_id FROM (SELECT patient_id, row_number() OVER (ORDER BY patient_id) - 1 AS i "
        "FROM patients) WHERE i % $n = 0 ORDER BY 1", {"n": people}).fetchall()]
    return list(zip([None, *bounds[1:]], [*bounds[1:], None])) if bounds else [(None, None)]


def _in_range(column: str) -> str:
    return f"($lo::VARCHAR IS NULL OR {column} >= $lo::VARCHAR) AND ($hi::VARCHAR IS NULL OR {column} < $hi::VARCHAR)"


def _ranged(con, table: str, columns: dict, ids: Range, which: str) -> pl.DataFrame:
    """``columns`` of ``table`` for the patients of ``ids`` among ``which`` (a query of patient
    ids, or "" for all); empty when the table is not built."""
    if not table_exists(con, table):
        return pl.DataFrame(schema=columns)
    among = f" AND patient_id IN ({which})" if which else ""
    query = f"SELECT {', '.join(columns)} FROM {table} WHERE {_in_range('patient_id')}{among} ORDER BY patient_id"
    return _frame(con, query, {"lo": ids[0], "hi": ids[1]}, columns)


# The connection's own table of the patients whose rule rows count (never written to the store).
_RULE_ROWS = "metrics_rule_rows"


def rule_rows_that_count(con: db.Connection, selection: SelectionSettings) -> str:
    """A query of the patients whose rule results and probability can change a metric, found
    in one pass into a temporary table (dropped with ``metrics_tested``); "" when every row
    must be read.

    The rules and the model reach the metrics only through ``triggered`` (which no one outside
    ``POSSIBLY_TRIGGERED`` can be), ``excluded_reason``, and the rule positivity and
    probability of referred people. Everyone else counts exactly as a person without rule
    results would, so only these rows (about 13 % of a region) reach polars, and the frames
    the policies read are the ones the whole region would give.
    """
    if not (table_exists(con, "rule_results") and narrowable(con)):
        return ""
    listed = " UNION SELECT patient_id FROM referral_events" if table_exists(con, "referral_events") else ""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_RULE_ROWS} AS SELECT patient_id FROM rule_results "
                f"WHERE excluded_reason IS NOT NULL UNION {POSSIBLY_TRIGGERED}{listed}",
                {"min_points": selection.dlcn_min_points})
    return f"SELECT patient_id FROM {_RULE_ROWS}"


def read_range(con: db.Connection, as_of: date, ids: Range, which: str = "") -> dict[str, pl.DataFrame]:
    """Frames ``population`` of the patients in ``ids``, and ``rules`` and ``model`` of those
    among them in ``which`` (``rule_rows_that_count``; "" for all); a derived table that does
    not exist yet gives an empty frame with the right columns. Needs the connection's
    ``metrics_tested`` (``sql/metrics_tested.sql``)."""
    params = {"as_of": as_of, "lo": ids[0], "hi": ids[1]}
    return {"population": con.execute(db.sql("metrics_population"), params).pl(),
            "rules": _ranged(con, "rule_results", _EMPTY_RULES, ids, which),
            "model": _ranged(con, "model_scores", _EMPTY_MODEL, ids, which)}


def read_shared(con: db.Connection, as_of: date) -> dict[str, pl.DataFrame]:
    """Frames ``referrals`` (one row per person ever listed) and ``cascade`` (one per relative
    in the ledger): few rows, read once and joined to every range."""
    params = {"as_of": as_of}
    return {
        "referrals": (_frame(con, db.sql("metrics_referrals"), params, _EMPTY_REFERRALS)
                      if table_exists(con, "referral_events") else pl.DataFrame(schema=_EMPTY_REFERRALS)),
        "cascade": (_frame(con, db.sql("metrics_cascade"), params, _EMPTY_CASCADE)
                    if table_exists(con, "cascade_ledger") else pl.DataFrame(schema=_EMPTY_CASCADE)),
    }


def _age_band(age: pl.Expr) -> pl.Expr:
    expr = pl.lit(S.AGE_BANDS[0][1])
    for lower, label in S.AGE_BANDS[1:]:
        expr = pl.when(age >= lower).then(pl.lit(label)).otherwise(expr)
    return expr


def _flag(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null(False).cast(pl.Int64)


def _cascade_per_index(cascade: pl.DataFrame) -> pl.DataFrame:
    contacted = pl.col("contacted").fill_null(False)
    tested = contacted & pl.col("closed").fill_null(False)
    positive = pl.col("result").is_in(POSITIVE_RESULTS).fill_null(False)
    return cascade.group_by(pl.col("index_patient_id").alias("patient_id")).agg(
        pl.len().cast(pl.Int64).alias("cascade_identified"),
        contacted.cast(pl.Int64).sum().alias("cascade_contacted"),
        tested.cast(pl.Int64).sum().alias("cascade_tested"),
        (tested & positive).cast(pl.Int64).sum().alias("cascade_positive"),
    )


def people(inputs: dict[str, pl.DataFrame], selection: SelectionSettings) -> pl.DataFrame:
    """The population (resident, or ever referred) with each person's referral, current rule
    results under the worklists' selection rule and probability (the adult model does not
    score children), and cascade counts as an index case: the columns the policies read."""
    ref = inputs["referrals"].with_columns(pl.lit(1).alias("_referred"))
    rules = triggered(with_probability(inputs["rules"], inputs["model"], selection.adult_age), selection)
    frame = (
        inputs["population"]
        .join(ref, on="patient_id", how="left")
        .join(rules.drop("age_years", "model_version"), on="patient_id", how="left")
        .join(_cascade_per_index(inputs["cascade"]), on="patient_id", how="left")
    )
    return frame.filter(pl.col("resident") | referred())


# --- who counts where: one named policy per group of metrics ----------------------------
# Each reads the columns of ``people`` and gives 0/1 indicators (or values) per person;
# ``aggregate`` sums them. Spec tests: tests/spec/test_metrics_person_policies.py.


def referred() -> pl.Expr:
    """Ever listed on a GP worklist."""
    return pl.col("_referred").is_not_null()


def flagged_now() -> pl.Expr:
    """Selected tonight by the worklists' own rule and not excluded."""
    return pl.col("excluded_reason").is_null() & pl.col("triggered").fill_null(False)


def attended() -> pl.Expr:
    """Referred, and the clinic saw them (an FH or a not-FH outcome)."""
    return referred() & pl.col("outcome").is_in(S.ATTENDED_OUTCOMES).fill_null(False)


def confirmed() -> pl.Expr:
    """Referred, and the clinic confirmed FH (genetic or clinical)."""
    return referred() & pl.col("outcome").is_in(S.CONFIRMED_OUTCOMES).fill_null(False)


def listed_probability() -> pl.Expr:
    """The probability shown at listing; tonight's for a person never listed."""
    return pl.coalesce(pl.col("listed_probability"), pl.col("probability"))


def dimension_columns(region_id: str) -> list[pl.Expr]:
    """The levels a person counts under: clinic and month of listing (placeholders when never
    referred; "unassigned" when listed without a clinic), practice, sex, age band."""
    ref = referred()
    return [
        pl.lit(S.ALL).alias("dim_all"),
        pl.lit(region_id).alias("dim_region"),
        pl.when(ref).then(pl.col("clinic_id").fill_null("unassigned")).otherwise(pl.lit(S.NO_CLINIC))
        .alias("dim_clinic"),
        pl.col("practice_id").fill_null(S.NO_PRACTICE).alias("dim_practice"),
        pl.col("sex").fill_null("U").alias("dim_sex"),
        _age_band(pl.col("age_years")).alias("dim_age_band"),
        pl.when(ref).then(pl.col("listed_on").dt.strftime("%Y-%m")).otherwise(pl.lit(S.NOT_REFERRED_MONTH))
        .alias("dim_month"),
    ]


def funnel_columns() -> list[pl.Expr]:
    """population >= tested >= flagged >= referred >= attended >= confirmed: each stage counts
    everyone in the stages after it, so the funnel nests."""
    ref, flagged = referred(), flagged_now()
    return [
        pl.lit(1, dtype=pl.Int64).alias("population"),
        _flag(pl.col("tested") | flagged | ref).alias("tested"),
        _flag(flagged | ref).alias("flagged"),
        _flag(ref).alias("referred"),
        _flag(attended()).alias("attended"),
        _flag(confirmed()).alias("confirmed"),
    ]


def outcome_columns() -> list[pl.Expr]:
    """The latest clinic outcome of each referred person, one indicator per outcome, and
    ``outcome_none`` while the clinic has not answered."""
    ref, outcome = referred(), pl.col("outcome")
    return [*[_flag(ref & (outcome == o)).alias(f"outcome_{o}") for o in S.OUTCOMES],
            _flag(ref & outcome.is_null()).alias("outcome_none")]


def treatment_columns() -> list[pl.Expr]:
    """After referral: started (untreated in the year before, treated after) or intensified
    (treated before, and a new agent or a higher strength after)."""
    ref = referred()
    before = pl.col("treated_before").fill_null(False)
    started = ref & pl.col("treated_after").fill_null(False) & ~before
    intensified = ref & before & pl.col("new_or_stronger").fill_null(False)
    return [_flag(started | intensified).alias("treatment_changed"),
            _flag(started).alias("treatment_started"),
            _flag(intensified).alias("treatment_intensified")]


def ldl_change_columns() -> list[pl.Expr]:
    """The LDL-C change of referred people who have one: a count and a sum (a mean follows)."""
    ref = referred()
    return [_flag(ref & pl.col("ldl_change_mmol").is_not_null()).alias("ldl_change_n"),
            pl.when(ref).then(pl.col("ldl_change_mmol")).otherwise(None).fill_null(0.0).alias("ldl_change_sum_mmol")]


def case_columns() -> list[pl.Expr]:
    """Cases known before (excluded as already diagnosed), the cascade of each index case, and
    new cases: a confirmed index case plus the relatives found positive (Marks et al. 2002)."""
    cascade = ("cascade_identified", "cascade_contacted", "cascade_tested", "cascade_positive")
    return [
        _flag(pl.col("excluded_reason") == "already_diagnosed").alias("already_diagnosed"),
        *[pl.col(c).fill_null(0).alias(c) for c in cascade],
        (_flag(confirmed()) + pl.col("cascade_positive").fill_null(0)).alias("new_cases"),
    ]


def rule_positive(selection: SelectionSettings) -> dict[str, pl.Expr]:
    """Whether each rule was positive: DLCN points and the probability as listed at referral,
    Simon Broome, MEDPED and the lab flag from tonight's rule results."""
    dlcn = pl.coalesce(pl.col("listed_dlcn_points"), pl.col("dlcn_points"))
    return {
        "dlcn": dlcn >= selection.dlcn_min_points,
        "simon_broome": pl.col("simon_broome").is_in(["definite", "possible"]),
        "medped": pl.col("medped") == "met",
        "lab_flag": pl.col("lab_flag"),
        "model": listed_probability() >= selection.min_probability,
    }


def rule_positivity_columns(selection: SelectionSettings) -> list[pl.Expr]:
    """Per rule, attended people it was positive for, and confirmed ones (its PPV)."""
    positive, seen, found = rule_positive(selection), attended(), confirmed()
    return [*[_flag(seen & positive[r]).alias(f"rule_pos_{r}") for r in S.RULES],
            *[_flag(found & positive[r]).alias(f"rule_pos_confirmed_{r}") for r in S.RULES]]


def calibration_bin() -> pl.Expr:
    """The probability's bin: width 1/len(CALIBRATION_EDGES), the top bin closed at 1."""
    last = len(S.CALIBRATION_EDGES) - 1
    return pl.min_horizontal((listed_probability() * len(S.CALIBRATION_EDGES)).floor().cast(pl.Int64), pl.lit(last))


def calibration_columns() -> list[pl.Expr]:
    """Attended people with a probability, overall and per bin: how many, how many confirmed,
    and the sum of their probabilities (observed against expected per bin)."""
    has_prob = listed_probability().is_not_null()
    seen, found, bin_index = attended() & has_prob, confirmed() & has_prob, calibration_bin()
    bins = list(enumerate(S.CALIBRATION_BINS))
    return [
        _flag(seen).alias("calib_n"),
        _flag(found).alias("calib_confirmed"),
        *[_flag(seen & (bin_index == i)).alias(f"calib_n_{b}") for i, b in bins],
        *[_flag(found & (bin_index == i)).alias(f"calib_confirmed_{b}") for i, b in bins],
        *[pl.when(seen & (bin_index == i)).then(listed_probability()).otherwise(0.0).alias(f"calib_prob_sum_{b}")
          for i, b in bins],
    ]


def duration_columns() -> list[pl.Expr]:
    """Days from first flag to listing (referred people) and from listing to the first visit
    (attended people); NULL otherwise, so the histograms count only them."""
    return [pl.when(referred()).then(pl.col("days_flag_to_listed")).otherwise(None).alias("days_flag_to_listed"),
            pl.when(attended()).then(pl.col("days_listed_to_visit")).otherwise(None).alias("days_listed_to_visit")]


def person_frame(
    inputs: dict[str, pl.DataFrame],
    region_id: str,
    selection: SelectionSettings,
) -> pl.DataFrame:
    """One row per person in the population: dimension levels and 0/1 metric indicators."""
    return people(inputs, selection).select(
        *dimension_columns(region_id), *funnel_columns(), *outcome_columns(), *treatment_columns(),
        *ldl_change_columns(), *case_columns(), *rule_positivity_columns(selection), *calibration_columns(),
        *duration_columns(),
    )


def level_sums(persons: pl.DataFrame) -> dict[tuple[str, str | None], pl.DataFrame]:
    """Per dimension, the sums of the additive per-person metrics per level (key ``(dim, None)``)
    and per duration the people per (level, week) (key ``(dim, duration)``): additive, so the
    sums of several ranges of people add up to those of all of them (``aggregate``)."""
    # Summed per person; expected cases and cost follow linearly from the summed counts.
    per_person = tuple(m for m in S.COUNT_METRICS if m not in S.SELECTION_COUNTS)
    additive = per_person + ("ldl_change_sum_mmol",) + tuple(f"calib_prob_sum_{b}" for b in S.CALIBRATION_BINS)
    out = {}
    for dim in S.DIMENSIONS:
        level = pl.col(DIMENSION_COLUMNS[dim]).alias("level")
        out[(dim, None)] = persons.group_by(level).agg(
            [pl.col(m).sum() for m in additive if dim in S.METRICS[m].dims])
        for duration in S.DURATIONS:
            week = pl.min_horizontal((pl.col(duration) // 7).clip(lower_bound=0), pl.lit(S.HIST_WEEKS))
            out[(dim, duration)] = (persons.filter(pl.col(duration).is_not_null())
                                    .group_by(level, week.alias("week")).agg(pl.len().cast(pl.Int64).alias("value")))
    return out


def aggregate(parts: list[dict[tuple[str, str | None], pl.DataFrame]], metrics: MetricsSettings) -> pl.DataFrame:
    """The federated table from the ``level_sums`` of every range of people: additive
    statistics per (dimension, level, metric); zeros omitted."""
    tables = []
    for dim in S.DIMENSIONS:
        wide = _added([p[(dim, None)] for p in parts], ["level"])
        wide = wide.select("level", pl.exclude("level").cast(pl.Float64)).with_columns(
            (pl.col("population") * metrics.expected_prevalence).alias("expected_cases"),
            programme_cost(pl.col, metrics.unit_costs_dkk).alias("cost_dkk"),
        )
        tables.append(wide.unpivot(index="level", variable_name="metric", value_name="value")
                      .with_columns(pl.lit(dim).alias("dimension")))
        for duration in S.DURATIONS:
            hist = _added([p[(dim, duration)] for p in parts], ["level", "week"])
            tables.append(hist.select(
                pl.lit(dim).alias("dimension"), "level",
                pl.format("hist_{}_w{}", pl.lit(duration), pl.col("week").cast(pl.Utf8).str.pad_start(3, "0"))
                .alias("metric"),
                pl.col("value").cast(pl.Float64),
            ))
    table = pl.concat([t.select("dimension", "level", "metric", "value") for t in tables])
    return table.filter(pl.col("value") != 0).sort("dimension", "level", "metric")


def _added(frames: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    """The frames' value columns summed per ``keys`` (one frame: itself, to the last bit)."""
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames).group_by(keys).agg(pl.exclude(keys).sum())


def programme_cost(count, unit_costs: dict[str, float]):
    """Programme cost from unit counts (see the module docstring for the units).

    ``count`` maps a count metric's name to its value: ``pl.col`` for the per-person frame,
    or a lookup of published (rounded) counts in ``derive``, so both use one definition.
    """
    relatives = count("cascade_tested")
    return (
        unit_costs["gp_review"] * count("referred")
        + unit_costs["lab_test"] * (count("referred") + relatives)
        + unit_costs["clinic_visit"] * (count("attended") + relatives)
        + unit_costs["genetic_test"] * (count("attended") + relatives)
        + unit_costs["letter"] * count("cascade_contacted")
    )


# selection_runs column -> federated metric (schema.SELECTION_COUNTS / SELECTION_SUMS).
SELECTION_COLUMNS = {
    "sel_candidates": "candidates", "sel_prospective": "prospective_selected", "sel_backlog": "backlog_selected",
    "queue_horizon": "clinic_listed + queued", "backlog_size": "backlog_size", "backlog_below_line": "below_line",
    "check_first_listed": "check_first_listed", "check_first_held": "check_first_held",
    "below_line_expected_carriers": "below_line_expected_carriers",
    "horizon_expected_carriers": "horizon_expected_carriers", "backlog_weekly_places": "backlog_weekly_places",
}


def selection_rows(con: db.Connection, as_of: date, region_id: str) -> pl.DataFrame:
    """Tonight's selection figures (the referrals step's ``selection_runs``, summed over the
    clinics) as federated rows for the dimensions ``all`` and ``region``; zeros left out."""
    empty = pl.DataFrame(schema={"dimension": pl.Utf8, "level": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64})
    if not table_exists(con, "selection_runs"):
        return empty
    sums = ", ".join(f"CAST(coalesce(sum({expr}), 0) AS DOUBLE) AS {name}" for name, expr in SELECTION_COLUMNS.items())
    totals = con.execute(f"SELECT {sums} FROM selection_runs WHERE as_of = ?", [as_of]).pl()
    wide = pl.concat([totals.with_columns(pl.lit(S.ALL).alias("dimension"), pl.lit(S.ALL).alias("level")),
                      totals.with_columns(pl.lit("region").alias("dimension"), pl.lit(region_id).alias("level"))])
    long = wide.unpivot(index=["dimension", "level"], variable_name="metric", value_name="value")
    return long.filter(pl.col("value") != 0).select(empty.columns)


def compute_aggregates(con: db.Connection, as_of: date, region_id: str, selection: SelectionSettings,
                       metrics: MetricsSettings, people: int = RANGE_PEOPLE) -> pl.DataFrame:
    """DuckDB -> the region's federated table, holding the person rows of about ``people``
    patients at a time (``patient_ranges``); only their ``level_sums`` are kept."""
    shared = read_shared(con, as_of)
    con.execute(db.sql("metrics_tested"), {"as_of": as_of})
    try:
        which = rule_rows_that_count(con, selection)
        parts = [level_sums(person_frame({**read_range(con, as_of, ids, which), **shared}, region_id, selection))
                 for ids in patient_ranges(con, people)]
    finally:
        con.execute("DROP TABLE IF EXISTS metrics_tested")
        con.execute(f"DROP TABLE IF EXISTS {_RULE_ROWS}")
    persons = aggregate(parts, metrics)
    return pl.concat([persons, selection_rows(con, as_of, region_id)]).sort("dimension", "level", "metric")
