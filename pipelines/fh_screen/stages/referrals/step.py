"""Who goes on tonight's worklists: selection, ranking, clinic allocation and the ledger.

Pure functions on polars frames (``plan_referrals`` composes them) plus ``referrals_step``,
the thin edge that reads DuckDB, writes the ledger and hands the plan to
``fh_screen.outputs.worklist_files`` for the files.

Decisions (documented here because GPs, clinics and evaluators rely on them):

* **Selection = routing.** The rules engine's one rule selects (``selected_by_rules``:
  DLCN points >= ``dlcn_min_points``, the adult lab flag when ``use_lab_flag``,
  Simon Broome possible/definite, the EAS 2015 paediatric criteria; decision
  routing_is_selection in ``stages/rules/results.py``). The calibrated probability >=
  ``min_probability`` adds a patient only when a clinical criterion is met
  (``clinical_criterion``; decision no_model_only_referral): the model orders and adds, it
  never refers alone. The adult model does not score children: their probability is dropped
  (decision no_model_for_children, ``reference/rules/paediatric_v1.yaml``). Never selected: ``rule_results.excluded_reason`` set (already
  diagnosed, under lipid-clinic care, deceased, moved out), or ``patients.deceased_date`` /
  ``moved_out_date`` on or before the run date (checked again here, so a late death
  registration can never put someone on a list).
* **Route.** The rules engine's route is kept. A patient selected only by the model
  (rules route ``none``) goes to ``check_secondary_cause_first`` when the rules found a
  secondary cause, else ``refer_lipid_clinic``. Check-first patients are on the GP list
  ("check first") and do not use clinic capacity (flag rather than exclude: shared
  clinical brief §6).
* **Ranking** ("the ranking the worklists use"): calibrated probability, highest first;
  ties and patients without a probability (no model, or not scored) by DLCN points, then
  the scoring LDL-C (``ldl_untreated_estimate_mmol``: measured untreated first, else the
  corrected estimate), then highest LDL-C, all highest first; nulls last; the
  patient id breaks remaining ties so the order is reproducible. ``rank`` is 1..n over
  all of tonight's candidates, including those queued for capacity or below the backlog
  line, so ``referrals.csv`` (listed patients only) can have gaps where they sit.
* **Clinic allocation.** Children (age < ``adult_age``) go to ``paediatric_clinic_id``
  when one is configured. Others: the first adult clinic whose ``practices`` lists the
  patient's practice; else the adult clinic with the longest matching postcode prefix
  (config order breaks ties); else the fallback clinic (``selection.fallback_clinic_id``,
  default the first adult clinic in the config), so nobody is dropped for an unmapped
  practice or postcode. Without any clinic configured, clinic_id is NULL and no capacity
  applies.
* **Prospective flags and the bounded backlog** (``prospective.py``, ``backlog.py``,
  docs/selection-and-waiting.md). Candidates with evidence new since the last run are
  prospective and always queued; the historic rest (the backlog) is queued only as far as
  the clinics' places within the horizon allow. Those below the line get no event, stay
  eligible and are candidates again the next night, in the same order.
* **Capacity.** ``weekly_capacity`` counts clinic referrals (``listed`` and ``reminder``
  events on the clinic route) over a rolling 7 days including tonight. Places are given
  prospective patients first, then the longest waiting (oldest queue entry first), then by
  rank. Whoever does not fit is recorded as ``queued`` with the expected week of their
  place (``slot_week``) and is a candidate again the next night - never dropped.
* **Ledger.** A patient is listed once per referral cycle. With no clinic outcome
  ``reminder_months`` after the last listing they are listed again as a ``reminder`` (at
  most ``max_reminders`` times per cycle). A new cycle may start only after
  ``suppression_months`` since the last listing, and only when the clinic reported
  ``did_not_attend`` / ``declined`` or the reminders went unanswered. Any other outcome
  (including ``pending``) ends reminders. Check-first patients follow the same rule, so an
  unresolved secondary-cause check comes back as a reminder with tonight's route. Patients
  without a GP are listed on the regional list ``selection.unassigned_practice_id``.
* **Idempotency.** The ledger state is derived from ``referral_events`` before the run
  date, so rerunning a date deletes that date's events and recomputes the same plan.
  Runs are expected in date order; a rerun of an older date does not rewrite later ones.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from typing import Callable

import polars as pl

from fh_screen import schemas
from fh_screen.config import Clinic, SelectionSettings, Settings
from fh_screen.context import RunContext, log
from fh_screen.outputs import clinics, worklist_files
from fh_screen.outputs.worklists import EXPORT_PROBABILITY_RANGE
from fh_screen.stages.referrals import backlog, prospective
from fh_screen.stages.rules.explain import render as explain_reasons
from fh_screen.store import db, files
from fh_screen.stages.referrals.details import read_details
from fh_screen.stages.rules.results import Policy, selection as rule_selection

ROUTE_CLINIC = "refer_lipid_clinic"
ROUTE_CHECK = "check_secondary_cause_first"
LISTED, REMINDER, QUEUED = "listed", "reminder", "queued"
# Clinic outcomes after which a new referral cycle may start once the suppression window ends.
RESTART_OUTCOMES = ("did_not_attend", "declined")
# weekly_capacity is per week: referrals of the last 7 days (tonight included) count.
CAPACITY_WINDOW_DAYS = 7

EVENT_COLUMNS = schemas.column_names("referral_events")
EVENT_SCHEMA = {
    "as_of": pl.Date, "patient_id": pl.Utf8, "event": pl.Utf8, "practice_id": pl.Utf8,
    "clinic_id": pl.Utf8, "rank": pl.Int32, "probability": pl.Float64,
    "dlcn_points": pl.Int32, "dlcn_category": pl.Utf8, "route": pl.Utf8,
    "flow": pl.Utf8, "slot_week": pl.Date, "model_logit": pl.Float64,
}
REFERRAL_CSV_COLUMNS = [
    "patient_id", "practice_id", "clinic_id", "rank", "probability", "dlcn_points",
    "dlcn_category", "simon_broome", "medped", "ldl_max_mmol", "ldl_untreated_estimate_mmol",
    "route", "reasons", "missing_information", "event", "selected_by", "flow", "slot_week",
]


def empty_events() -> pl.DataFrame:
    return pl.DataFrame(schema=EVENT_SCHEMA)


# --- selection -------------------------------------------------------------------------


def with_probability(rule_results: pl.DataFrame, model_scores: pl.DataFrame | None,
                     adult_age: int = 18) -> pl.DataFrame:
    """``rule_results`` plus ``probability``, ``model_logit`` (the model score behind it, kept
    with each listing for outcome recalibration) and ``model_version`` (NULL without a model,
    and for children: the adult model does not score them)."""
    if model_scores is None or model_scores.height == 0:
        return rule_results.with_columns(
            pl.lit(None, pl.Float64).alias("probability"), pl.lit(None, pl.Float64).alias("model_logit"),
            pl.lit(None, pl.Utf8).alias("model_version")
        )
    scores = model_scores.select(
        "patient_id",
        pl.col("probability").cast(pl.Float64),
        (pl.col("model_logit") if "model_logit" in model_scores.columns else pl.lit(None)).cast(pl.Float64)
        .alias("model_logit"),
        (pl.col("model_name").cast(pl.Utf8) + " " + pl.col("model_version").cast(pl.Utf8)).alias("model_version")
        if "model_name" in model_scores.columns
        else pl.col("model_version").cast(pl.Utf8),
    ).unique("patient_id", keep="first")
    adult = (pl.col("age_years") >= adult_age).fill_null(True)
    return rule_results.join(scores, on="patient_id", how="left").with_columns(
        pl.when(adult).then(pl.col("probability")).alias("probability"),
        pl.when(adult).then(pl.col("model_logit")).alias("model_logit"),
        pl.when(adult).then(pl.col("model_version")).alias("model_version"))


def triggered(frame: pl.DataFrame, sel: SelectionSettings) -> pl.DataFrame:
    """THE selection rule (decisions routing_is_selection and no_model_only_referral), applied
    to ``rule_results`` rows with ``probability`` (``with_probability``). Adds
    ``selected_by_rules`` and ``clinical_criterion`` (the rules' one definition under this
    region's policy), ``triggered`` (selected by the rules, or probability >= the threshold
    with a clinical criterion met) and ``selected_by`` (e.g. "dlcn+probability"). Exclusions
    are not applied here. The worklists and the pilot metrics both select with it."""
    out = frame.with_columns(
        rule_selection(Policy(dlcn_min_points=sel.dlcn_min_points, use_lab_flag=sel.use_lab_flag)))
    by_rules = pl.col("selected_by_rules").is_not_null()
    by_prob = (pl.col("probability") >= sel.min_probability).fill_null(False) & pl.col("clinical_criterion").fill_null(False)
    return out.with_columns(
        (by_rules | by_prob).alias("triggered"),
        pl.concat_str([pl.col("selected_by_rules"), pl.when(by_prob).then(pl.lit("probability"))],
                      separator="+", ignore_nulls=True).alias("selected_by"),
    )


def screen(frame: pl.DataFrame, patients: pl.DataFrame, sel: SelectionSettings, as_of: date) -> pl.DataFrame:
    """Mark who is triggered, who is excluded and why, and their route and list.

    Adds ``triggered`` (bool), ``selected_by`` (e.g. "dlcn+lab_flag"), ``exclusion``
    (NULL = eligible), ``practice_id`` (unassigned list id when there is no GP),
    ``postcode`` and the referral ``route``.
    """
    people = patients.select(
        "patient_id",
        pl.col("practice_id").alias("_practice_registered"),
        "postcode",
        "deceased_date",
        "moved_out_date",
    )
    out = triggered(frame.join(people, on="patient_id", how="left"), sel)
    practice = pl.coalesce(
        pl.when(pl.col("practice_id").str.strip_chars() != "").then(pl.col("practice_id")),
        pl.when(pl.col("_practice_registered").str.strip_chars() != "").then(pl.col("_practice_registered")),
    )
    route = (
        pl.when(pl.col("route").is_in([ROUTE_CLINIC, ROUTE_CHECK]))
        .then(pl.col("route"))
        .when(pl.col("secondary_probable").fill_null(False))
        .then(pl.lit(ROUTE_CHECK))
        .otherwise(pl.lit(ROUTE_CLINIC))
    )
    return out.with_columns(
        pl.coalesce(
            pl.col("excluded_reason"),
            pl.when(pl.col("deceased_date") <= as_of).then(pl.lit("deceased")),
            pl.when(pl.col("moved_out_date") <= as_of).then(pl.lit("moved_out")),
        ).alias("exclusion"),
        practice.fill_null(sel.unassigned_practice_id).alias("practice_id"),
        practice.is_null().alias("unassigned"),
        route.alias("route"),
    ).drop("_practice_registered")


# --- ledger ----------------------------------------------------------------------------


def ledger_state(prior_events: pl.DataFrame, outcomes: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Each patient's referral history before ``as_of``, from the events alone.

    Columns: patient_id, first_listed_on, last_listed_on, times_listed, cycle_start (date
    of the last ``listed`` event), reminders_in_cycle, queued_since (first night of the
    current unbroken queue wait, NULL when not waiting), outcome_in_cycle (latest clinic
    outcome on or after cycle_start and not after ``as_of``).
    """
    ev = prior_events.filter(pl.col("as_of") < as_of)
    per = _event_summary(ev)
    state = (
        per.join(_reminders_in_cycle(ev, per), on="patient_id", how="left")
        .join(_queued_from(ev, per), on="patient_id", how="left")
        .with_columns(
            pl.col("reminders_in_cycle").fill_null(0),
            pl.when(pl.col("_last_event") == QUEUED).then(pl.col("_queued_from")).alias("queued_since"),
        )
    )
    return state.join(_outcome_in_cycle(outcomes, state, as_of), on="patient_id", how="left").select(
        "patient_id", "first_listed_on", "last_listed_on", "times_listed", "cycle_start",
        "reminders_in_cycle", "queued_since", "outcome_in_cycle",
    )


def _event_summary(ev: pl.DataFrame) -> pl.DataFrame:
    """Per patient: first and last night shown on a worklist (listed or reminded), times
    shown, the cycle start (last ``listed``), and the last event."""
    shown = pl.col("event").is_in([LISTED, REMINDER])
    return ev.group_by("patient_id").agg(
        pl.col("as_of").filter(shown).min().alias("first_listed_on"),
        pl.col("as_of").filter(shown).max().alias("last_listed_on"),
        shown.sum().cast(pl.Int32).alias("times_listed"),
        pl.col("as_of").filter(pl.col("event") == LISTED).max().alias("cycle_start"),
        pl.col("as_of").filter(pl.col("event") == QUEUED).min().alias("_first_queued"),
        pl.col("as_of").sort_by("as_of").last().alias("_last_event_on"),
        pl.col("event").sort_by("as_of").last().alias("_last_event"),
    )


def _reminders_in_cycle(ev: pl.DataFrame, per: pl.DataFrame) -> pl.DataFrame:
    """Reminders after the cycle's listing night (not on it)."""
    return (
        ev.join(per.select("patient_id", "cycle_start"), on="patient_id")
        .filter((pl.col("event") == REMINDER) & (pl.col("as_of") > pl.col("cycle_start")))
        .group_by("patient_id")
        .agg(pl.len().cast(pl.Int32).alias("reminders_in_cycle"))
    )


def _queued_from(ev: pl.DataFrame, per: pl.DataFrame) -> pl.DataFrame:
    """The first night queued after the last night shown (any night if never shown)."""
    return (
        ev.join(per.select("patient_id", "last_listed_on"), on="patient_id")
        .filter(
            (pl.col("event") == QUEUED)
            & (pl.col("last_listed_on").is_null() | (pl.col("as_of") > pl.col("last_listed_on")))
        )
        .group_by("patient_id")
        .agg(pl.col("as_of").min().alias("_queued_from"))
    )


def _outcome_in_cycle(outcomes: pl.DataFrame, state: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """The latest clinic outcome dated on or after the cycle start and not after ``as_of``."""
    return (
        outcomes.filter(pl.col("outcome_date") <= as_of)
        .join(state.select("patient_id", "cycle_start"), on="patient_id")
        .filter(pl.col("outcome_date") >= pl.col("cycle_start"))
        .sort("outcome_date")
        .group_by("patient_id")
        .agg(pl.col("outcome").last().alias("outcome_in_cycle"))
    )


def due(eligible: pl.DataFrame, state: pl.DataFrame, sel: SelectionSettings, as_of: date) -> pl.DataFrame:
    """Add ``kind`` (listed / reminder / NULL = not due tonight) from the ledger state."""
    joined = eligible.join(state, on="patient_id", how="left")
    since_last = pl.col("last_listed_on")
    reminder_due = pl.lit(as_of) >= since_last.dt.offset_by(f"{sel.reminder_months}mo")
    window_over = pl.lit(as_of) >= since_last.dt.offset_by(f"{sel.suppression_months}mo")
    # A patient who did not attend or declined the clinic before ever being listed gets a
    # reminder, not a fresh referral (decision outcome_shown, exclusions_v2).
    not_engaged = pl.col("clinic_last_outcome").is_in(RESTART_OUTCOMES).fill_null(False) \
        if "clinic_last_outcome" in joined.columns else pl.lit(False)
    kind = (
        pl.when(pl.col("cycle_start").is_null() & not_engaged)
        .then(pl.lit(REMINDER))
        .when(pl.col("cycle_start").is_null())
        .then(pl.lit(LISTED))
        .when(pl.col("outcome_in_cycle").is_not_null())
        .then(pl.when(pl.col("outcome_in_cycle").is_in(RESTART_OUTCOMES) & window_over).then(pl.lit(LISTED)))
        .when((pl.col("reminders_in_cycle") < sel.max_reminders) & reminder_due)
        .then(pl.lit(REMINDER))
        .when((pl.col("reminders_in_cycle") >= sel.max_reminders) & window_over)
        .then(pl.lit(LISTED))
    )
    return joined.with_columns(kind.alias("kind"))


# --- ranking and allocation ------------------------------------------------------------


def rank_candidates(frame: pl.DataFrame) -> pl.DataFrame:
    """Sort by urgency (see module docstring) and number 1..n as ``rank``."""
    keys = ["probability", "dlcn_points", "ldl_untreated_estimate_mmol", "ldl_max_mmol", "patient_id"]
    ordered = frame.sort(keys, descending=[True, True, True, True, False], nulls_last=True)
    return ordered.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("rank"))


def assign_clinics(
    frame: pl.DataFrame,
    clinics: list[Clinic],
    paediatric_clinic_id: str | None,
    sel: SelectionSettings,
) -> pl.DataFrame:
    """Add ``clinic_id``, ``catchment`` (how it was chosen) and ``is_child``."""
    adult = [c for c in clinics if not c.paediatric]
    practice_map = pl.DataFrame(
        [(p, c.clinic_id) for c in adult for p in c.practices],
        schema={"_practice": pl.Utf8, "_by_practice": pl.Utf8},
        orient="row",
    ).unique("_practice", keep="first", maintain_order=True)
    prefixes = sorted(
        ((p, i, c.clinic_id) for i, c in enumerate(adult) for p in c.postcodes),
        key=lambda t: (-len(t[0]), t[1]),
    )
    by_postcode = pl.lit(None, pl.Utf8)
    for prefix, _, clinic_id in reversed(prefixes):  # built inside out: longest prefix is tested first
        by_postcode = pl.when(pl.col("postcode").str.starts_with(prefix)).then(pl.lit(clinic_id)).otherwise(by_postcode)
    fallback = sel.fallback_clinic_id or (adult[0].clinic_id if adult else None)
    child = pl.coalesce(pl.col("age_years") < sel.adult_age, pl.col("is_child")).fill_null(False)
    paed = paediatric_clinic_id is not None
    out = frame.with_columns(
        pl.when(pl.col("unassigned")).then(None).otherwise(pl.col("practice_id")).alias("_practice"),
        child.alias("is_child"),
    ).join(practice_map, on="_practice", how="left")
    out = out.with_columns(by_postcode.alias("_by_postcode"))
    clinic = (
        pl.when(pl.col("is_child") & pl.lit(paed)).then(pl.lit(paediatric_clinic_id, pl.Utf8))
        .otherwise(pl.coalesce(pl.col("_by_practice"), pl.col("_by_postcode"), pl.lit(fallback, pl.Utf8)))
    )
    catchment = (
        pl.when(pl.col("is_child") & pl.lit(paed)).then(pl.lit("paediatric"))
        .when(pl.col("_by_practice").is_not_null()).then(pl.lit("practice"))
        .when(pl.col("_by_postcode").is_not_null()).then(pl.lit("postcode"))
        .when(pl.lit(fallback is not None)).then(pl.lit("fallback"))
        .otherwise(pl.lit("none"))
    )
    return out.with_columns(clinic.alias("clinic_id"), catchment.alias("catchment")).drop(
        "_practice", "_by_practice", "_by_postcode"
    )


def capacity_used(prior_events: pl.DataFrame, as_of: date) -> dict[str, int]:
    """Clinic referrals already made in the capacity window before tonight, per clinic."""
    start = as_of - timedelta(days=CAPACITY_WINDOW_DAYS - 1)
    used = prior_events.filter(
        pl.col("as_of").is_between(start, as_of, closed="left")
        & pl.col("event").is_in([LISTED, REMINDER])
        & (pl.col("route") == ROUTE_CLINIC)
        & pl.col("clinic_id").is_not_null()
    ).group_by("clinic_id").len()
    return dict(zip(used["clinic_id"].to_list(), used["len"].to_list()))


def allocate(frame: pl.DataFrame, clinics: list[Clinic], used: dict[str, int]) -> pl.DataFrame:
    """Give clinic places in serving order (prospective first, then the longest waiting, then
    rank: ``backlog.serving_order``); add ``event`` (kind, or ``queued``)."""
    remaining = {c.clinic_id: max(c.weekly_capacity - used.get(c.clinic_id, 0), 0) for c in clinics}
    cap = pl.DataFrame(
        {"clinic_id": list(remaining), "_remaining": list(remaining.values())},
        schema={"clinic_id": pl.Utf8, "_remaining": pl.Int64},
    )
    out = (
        backlog.serving_order(frame.join(cap, on="clinic_id", how="left"))
        .with_columns(((pl.col("route") == ROUTE_CLINIC) & pl.col("_remaining").is_not_null()).alias("_consumes"))
        .with_columns((pl.int_range(1, pl.len() + 1).over(["clinic_id", "_consumes"])).alias("_slot"))
    )
    event = pl.when(pl.col("_consumes") & (pl.col("_slot") > pl.col("_remaining"))).then(pl.lit(QUEUED)).otherwise(
        pl.col("kind")
    )
    return out.with_columns(event.alias("event")).drop("_remaining", "_consumes", "_slot", "_flow_order").sort("rank")


# --- the whole plan --------------------------------------------------------------------


def plan_referrals(
    rule_results: pl.DataFrame,
    model_scores: pl.DataFrame | None,
    patients: pl.DataFrame,
    outcomes: pl.DataFrame,
    prior_events: pl.DataFrame,
    settings: Settings,
    as_of: date,
    evidence: pl.DataFrame | Callable[[pl.Series], pl.DataFrame] | None = None,
    since: date | None = None,
) -> tuple[pl.DataFrame, dict]:
    """Tonight's candidates with their event, rank and clinic, and a count report with the
    selection figures (``selection``: summed; ``selection_by_clinic``: ``backlog.nightly_figures``).

    ``evidence`` (``prospective.read_evidence``) dates each patient's evidence: a frame, or a
    reader called with tonight's eligible patients (only theirs is used, so the step reads no
    one else's); ``since`` is the last run's date (None on the first run: everything is backlog). Returns every
    candidate within the horizon (listed, reminder and queued) with the rule_results
    columns, ``probability``, ``model_version``, ``event``, ``rank``, ``clinic_id``,
    ``catchment``, ``is_child``, ``selected_by``, ``flow``, ``slot_week`` and the ledger
    columns (``last_listed_on`` ...). Candidates below the line are not in it.
    """
    sel = settings.selection
    screened = screen(with_probability(rule_results, model_scores, sel.adult_age), patients, sel, as_of)
    triggered = screened.filter(pl.col("triggered"))
    eligible = triggered.filter(pl.col("exclusion").is_null())
    if callable(evidence):
        evidence = evidence(eligible["patient_id"])
    evidence = prospective.empty_evidence() if evidence is None else evidence
    state = ledger_state(prior_events, outcomes, as_of)
    with_kind = due(eligible, state, sel, as_of)
    candidates = rank_candidates(with_kind.filter(pl.col("kind").is_not_null()))
    placed = assign_clinics(candidates, settings.clinics, settings.paediatric_clinic_id, sel)
    flows = prospective.with_flow(placed, evidence, prior_events, since, as_of)
    expected = prospective.expected_weekly(_recent_clinics(eligible, evidence, settings, as_of), as_of)
    used = capacity_used(prior_events, as_of)
    places = backlog.backlog_places(flows, settings.clinics, used, expected, settings.backlog)
    lined = backlog.draw_line(flows, places, settings.backlog, as_of)
    allocated = allocate(lined.filter(pl.col("line") == backlog.WITHIN), settings.clinics, used)
    planned = backlog.slot_weeks(allocated, settings.clinics, expected, as_of)
    figures = backlog.nightly_figures(lined, planned, settings.clinics, places, expected, as_of)
    report = _report(screened, triggered, with_kind, planned, settings.clinics, used)
    report["selection"] = _selection_report(figures)
    report["selection_by_clinic"] = figures.drop("as_of").to_dicts()
    return planned, report


def _recent_clinics(eligible: pl.DataFrame, evidence: pl.DataFrame, settings: Settings, as_of: date) -> pl.DataFrame:
    """Eligible patients with evidence in the prospective-flow window, with their clinic."""
    start = as_of - timedelta(days=7 * prospective.FLOW_WINDOW_WEEKS)
    recent = eligible.join(evidence, on="patient_id", how="inner").filter(pl.col("evidence_on") > start)
    return assign_clinics(recent, settings.clinics, settings.paediatric_clinic_id, settings.selection)


def _selection_report(figures: pl.DataFrame) -> dict:
    """Tonight's selection figures summed over clinics (the step report; per clinic in the store)."""
    counts = [c for c in backlog.RUN_COLUMNS if c not in ("as_of", "clinic_id", "weeks_to_clear")]
    total = {c: figures[c].sum() for c in counts}
    total = {c: round(float(v), 2) if isinstance(v, float) else int(v or 0) for c, v in total.items()}
    weekly = total["backlog_weekly_places"]
    total["weeks_to_clear"] = round(total["backlog_size"] / weekly, 1) if weekly else None
    return total


def _counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    grouped = frame.group_by(column).len().sort(column)
    return {str(k): int(v) for k, v in zip(grouped[column].to_list(), grouped["len"].to_list())}


def _report(screened, triggered, with_kind, planned, clinics, used) -> dict:
    listed = planned.filter(pl.col("event") != QUEUED)
    per_clinic = {}
    for c in clinics:
        mine = planned.filter((pl.col("clinic_id") == c.clinic_id) & (pl.col("route") == ROUTE_CLINIC))
        per_clinic[c.clinic_id] = {
            "weekly_capacity": c.weekly_capacity,
            "used_earlier_in_week": int(used.get(c.clinic_id, 0)),
            "referred_tonight": int(mine.filter(pl.col("event") != QUEUED).height),
            "queued": int(mine.filter(pl.col("event") == QUEUED).height),
        }
    return {
        "scored": screened.height,
        "triggered": triggered.height,
        "excluded": _counts(triggered.filter(pl.col("exclusion").is_not_null()), "exclusion"),
        "not_due": int(with_kind.filter(pl.col("kind").is_null()).height),
        "events": _counts(planned, "event"),
        "routes_listed": _counts(listed, "route"),
        "children_listed": int(listed.filter(pl.col("is_child")).height),
        "unassigned_listed": int(listed.filter(pl.col("unassigned")).height),
        "catchment": _counts(planned, "catchment"),
        "clinics": per_clinic,
    }


def events_frame(planned: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """The ``referral_events`` rows of tonight's plan."""
    return planned.with_columns(pl.lit(as_of).alias("as_of")).select(
        [pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()]
    )


def ledger_from_events(events: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """``referral_ledger``: one row per patient ever listed or queued, derived from events."""
    shown = pl.col("event").is_in([LISTED, REMINDER])
    per = events.group_by("patient_id").agg(
        pl.col("as_of").filter(shown).min().alias("first_listed_on"),
        pl.col("as_of").filter(shown).max().alias("last_listed_on"),
        shown.sum().cast(pl.Int32).alias("times_listed"),
        pl.col("as_of").filter(pl.col("event") == LISTED).max().alias("_cycle_start"),
        pl.col("clinic_id").sort_by("as_of").last().alias("clinic_id"),
        pl.col("event").sort_by("as_of").last().alias("_last_event"),
    )
    answered = (
        outcomes.join(per.select("patient_id", "_cycle_start"), on="patient_id")
        .filter(pl.col("outcome_date") >= pl.col("_cycle_start"))
        .select("patient_id")
        .unique()
        .with_columns(pl.lit(True).alias("_answered"))
    )
    status = (
        pl.when(pl.col("_answered").fill_null(False)).then(pl.lit("outcome_received"))
        .when(pl.col("_last_event") == QUEUED).then(pl.lit("queued"))
        .when(pl.col("_last_event") == REMINDER).then(pl.lit("reminded"))
        .otherwise(pl.lit("listed"))
    )
    return (
        per.join(answered, on="patient_id", how="left")
        .with_columns(status.alias("status"))
        .select("patient_id", "first_listed_on", "last_listed_on", "times_listed", "clinic_id", "status")
        .sort("patient_id")
    )


def referrals_table(planned: pl.DataFrame) -> pl.DataFrame:
    """``referrals.csv``: the patients put on a worklist tonight, by rank (contract §3)."""
    listed = planned.filter(pl.col("event") != QUEUED).sort("rank")
    # Rounded for export (LDL-C 2 decimals, probability 2); the store keeps full precision.
    decimals = {"ldl_max_mmol": 2, "ldl_untreated_estimate_mmol": 2, "probability": 2}
    # A rounded probability never reads as certainty: 0.999 would print as 1.0, so exports
    # stay within EXPORT_PROBABILITY_RANGE (the worklists print "< 1 %" and "> 99 %").
    rounded = lambda c: pl.col(c).round(decimals[c]).clip(*EXPORT_PROBABILITY_RANGE) if c == "probability" \
        else pl.col(c).round(decimals[c])  # noqa: E731
    return listed.select(
        [(rounded(c) if c in decimals else pl.col(c)) if c in listed.columns
         else pl.lit(None, pl.Utf8).alias(c) for c in REFERRAL_CSV_COLUMNS]
    )


# --- the step --------------------------------------------------------------------------


# rule_results columns the plan reads for every patient (selection, ranking, clinic, events).
# The wide rest (reasons, missing information, LDL details ...) only reaches the worklists
# and waiting lists, so it is read for tonight's candidates alone: converting it for a whole
# region costs more than the plan itself.
PLAN_RULE_COLUMNS = (
    "patient_id", "age_years", "practice_id", "is_child", "ldl_max_mmol", "ldl_untreated_estimate_mmol",
    "dlcn_points", "dlcn_category", "lab_flag", "secondary_cause", "route", "excluded_reason", "postcode",
    "secondary_probable", "clinic_last_outcome", "clinic_last_outcome_date",
    "simon_broome", "medped", "paediatric",
)
# model_scores columns ``with_probability`` uses; the per-patient reason texts are not shown.
PLAN_SCORE_COLUMNS = ("patient_id", "probability", "model_name", "model_version", "model_logit")
# patients columns ``screen`` uses (GP practice, postcode, and deaths and moves after the rules ran).
PATIENT_COLUMNS = ("patient_id", "practice_id", "postcode", "deceased_date", "moved_out_date")


def _columns(con, name: str) -> list[str]:
    """The table's columns in table order; empty when it does not exist (optional inputs)."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [name]
    ).fetchall()
    return [r[0] for r in rows]


# Who the selection can trigger at all: every trigger of ``rules.results.selection`` but the
# region's DLCN cut-off is itself a clinical criterion, and the model adds only patients who
# meet one (decision no_model_only_referral). The rules step stores ``clinical_criterion``
# (that one definition), so DuckDB narrows the region to these patients (about 5 % of it)
# before anything reaches polars; ``triggered`` then applies the exact selection to them, and
# the plan is the one the whole region would give. Bound: $min_points (dlcn_min_points).
POSSIBLY_TRIGGERED = "SELECT patient_id FROM rule_results WHERE clinical_criterion OR dlcn_points >= $min_points"


def narrowable(con) -> bool:
    """Whether rule_results holds the columns ``POSSIBLY_TRIGGERED`` reads."""
    return {"clinical_criterion", "dlcn_points"} <= set(_columns(con, "rule_results"))


def _table(con, name: str, wanted: tuple[str, ...], min_points: int | None = None) -> pl.DataFrame | None:
    """The ``wanted`` columns the table has, in table order, or None when it does not exist.

    Tolerant of absent columns (a rule_results without ``postcode`` takes it from
    ``patients``), so every store plans exactly as it did when the whole table was read.
    Rows in patient order (an incremental night leaves the table in no particular order).
    With ``min_points`` (``selection.dlcn_min_points``), only the rows of patients the
    selection can trigger (``POSSIBLY_TRIGGERED``).
    """
    columns = [c for c in _columns(con, name) if c in wanted]
    if not columns:
        return None
    narrow = min_points is not None and "patient_id" in columns and narrowable(con)
    where = f" WHERE patient_id IN ({POSSIBLY_TRIGGERED})" if narrow else ""
    order = " ORDER BY patient_id" if "patient_id" in columns else ""
    return con.execute(f"SELECT {', '.join(columns)} FROM {name}{where}{order}",
                       {"min_points": min_points} if narrow else {}).pl()


def with_candidate_details(con, planned: pl.DataFrame, rule_columns: list[str]) -> pl.DataFrame:
    """``planned`` with every rule_results column, filled for tonight's candidates.

    Listed patients' details reach the worklists, queued patients' the waiting lists
    (``queue.csv`` and the clinic pages); the columns come back in rule_results order, as
    if the whole table had been planned on.
    """
    rest = [c for c in rule_columns if c not in planned.columns]
    if not rest:
        return planned
    con.register("_candidates", planned.select("patient_id"))
    try:
        details = con.sql(
            f"SELECT patient_id, {', '.join(rest)} FROM rule_results "
            "WHERE patient_id IN (SELECT patient_id FROM _candidates)"
        ).pl()
    finally:
        con.unregister("_candidates")
    joined = planned.join(details, on="patient_id", how="left")
    return joined.select(*rule_columns, *[c for c in planned.columns if c not in rule_columns])


def referrals_step(ctx: RunContext) -> dict:
    """Plan tonight's referrals, record them in the ledger and write the worklists."""
    con = ctx.connect()
    try:
        con.execute(db.sql("referrals_schema"))
        min_points = ctx.settings.selection.dlcn_min_points
        rule_results = _table(con, "rule_results", PLAN_RULE_COLUMNS, min_points)
        if rule_results is None:
            ctx.feature_off("referrals", "rule_results table missing: the rules step did not run")
            return {"skipped": "no rule_results"}
        if not _columns(con, "model_scores") or not con.sql("SELECT count(*) FROM model_scores").fetchone()[0]:
            ctx.feature_off("referral_probability", "no model scores: ranking falls back to the rules")
        model_scores = _table(con, "model_scores", PLAN_SCORE_COLUMNS, min_points)
        patients = _table(con, "patients", PATIENT_COLUMNS, min_points)
        outcomes = con.sql("SELECT patient_id, outcome_date, outcome FROM clinic_outcomes").pl()
        prior = con.execute("SELECT * FROM referral_events WHERE as_of < ?", [ctx.as_of]).pl()
        runs = con.sql("SELECT as_of FROM selection_runs UNION SELECT as_of FROM referral_events").pl()
        since = prospective.last_run(runs, ctx.as_of)
        planned, report = plan_referrals(
            rule_results, model_scores, patients, outcomes, prior, ctx.settings, ctx.as_of,
            lambda eligible: prospective.read_evidence(con, ctx.as_of, eligible), since
        )
        report["scored"] = con.sql("SELECT count(*) FROM rule_results").fetchone()[0]  # the region, not the few read
        planned = with_candidate_details(con, planned, _columns(con, "rule_results"))
        all_events = _record(con, ctx.as_of, planned, outcomes, report)

        out = ctx.work_dir / "worklists"
        for stale in (out, ctx.work_dir / "clinics"):
            if stale.exists():
                shutil.rmtree(stale)  # a rerun must not leave last attempt's practices or clinics behind
        files.write_csv(ctx.work_dir / "referrals.csv", referrals_table(planned))
        details = read_details(con, worklist_files.listed(planned)["patient_id"].to_list(), ctx.as_of)
        report.update(worklist_files.write_all(planned, details, ctx, explain_reasons))
        # The waiting list in the order clinics give places (one definition: backlog.serving_order).
        waiting = backlog.serving_order(planned.filter(pl.col("event") == QUEUED)).drop("_flow_order")
        pages = clinics.write_all(ctx.work_dir, waiting, all_events, ctx.settings, ctx.as_of,
                                  report["selection_by_clinic"])
        report.update(pages | {k: round(report[k] + pages[k], 3) for k in ("render_seconds", "render_cpu_seconds")})
    finally:
        con.close()
    log.info("referrals: %d listed, %d queued", report["events"].get(LISTED, 0), report["events"].get(QUEUED, 0))
    return report


def _record(con, as_of: date, planned: pl.DataFrame, outcomes: pl.DataFrame, report: dict) -> pl.DataFrame:
    """Tonight's events, the ledger rebuilt from all events, and the night's selection
    figures, in one transaction (a rerun of the night replaces its rows); returns all events,
    which the clinic pages read."""
    tonight = events_frame(planned, as_of)
    with db.transaction(con):
        con.execute("DELETE FROM referral_events WHERE as_of = ?", [as_of])
        con.register("_tonight", tonight)
        con.execute(f"INSERT INTO referral_events ({', '.join(EVENT_COLUMNS)}) SELECT * FROM _tonight")
        con.unregister("_tonight")
        all_events = con.sql("SELECT * FROM referral_events").pl()
        ledger = ledger_from_events(all_events, outcomes)
        con.execute("DELETE FROM referral_ledger")
        con.register("_ledger", ledger)
        con.execute("INSERT INTO referral_ledger SELECT * FROM _ledger")
        con.unregister("_ledger")
        con.execute("DELETE FROM selection_runs WHERE as_of = ?", [as_of])
        figures = pl.DataFrame(report["selection_by_clinic"]).select(
            pl.lit(as_of).alias("as_of"), *backlog.RUN_COLUMNS[1:]
        )
        con.register("_figures", figures)
        con.execute(f"INSERT INTO selection_runs ({', '.join(backlog.RUN_COLUMNS)}) SELECT * FROM _figures")
        con.unregister("_figures")
    return all_events
