"""Cascade family testing: from confirmed index cases to relatives offered testing.

Each confirmed FH patient has on average several first-degree relatives with a 50% chance
of carrying the same variant; contacting relatives (directly where the region allows) and
moving outward to second-degree relatives triples the yield per index case (Lee et al.,
Circ Genom Precis Med 2019; docs/clinical-reference.md §8). This step:

1. finds the index cases (latest lipid-clinic outcome ``fh_genetic``/``fh_clinical``, and
   by config an existing FH diagnosis),
2. derives their relatives from ``relations`` (``fh_screen.stages.features.family``),
3. gives every relative a status from the data the region holds as of the run date,
4. plans and renders letters (``fh_screen.outputs.letters``), each (index, recipient) pair
   written to once, ever,
5. keeps ``cascade_ledger`` (letter sent, reminder due, loop closed by a later test) and
   writes ``cascade.csv``.

Statuses (first that applies): ``outside_region`` (relative not in ``patients``),
``deceased`` (counted, never in cascade.csv, never written to), ``moved``,
``already_diagnosed`` (FH diagnosis or confirmed clinic outcome), ``tested`` (a clinic
outcome ``not_fh``, or THE LDL-C the patient features score with (``relative_ldl``: the
highest measured untreated value, else the corrected estimate) at the age it was sampled, read
against the age/sex cut-offs for relatives of ``fh_screen.stages.rules.relatives_cutoffs_v1``;
sex ``U`` is ``not_classifiable``), ``untested``; ``index_only`` marks an index case with no
known living relative. One value and one rule for a relative's likelihood, here, in the DLCN
and Simon Broome family items and on the worklist (decision ``relative_ldl_one_value``).
"""

from __future__ import annotations

import shutil
from datetime import date
from typing import NamedTuple

import polars as pl

from fh_screen import schemas
from fh_screen.outputs import letters as cascade_letters
from fh_screen.store import db, files
from fh_screen.stages.features import family
from fh_screen.context import RunContext, log
from fh_screen.stages.features.build import age_at, lipid_samples, make_inputs, scoring_ldl
from fh_screen.stages.rules import relatives_cutoffs_v1

CONFIRMED_OUTCOMES = ("fh_genetic", "fh_clinical")
LDL_RESULTS = ("unlikely", "uncertain", "likely")
CUTOFF_TABLE = f"{relatives_cutoffs_v1.NAME} {relatives_cutoffs_v1.VERSION}"
CSV_COLUMNS = [
    "index_patient_id",
    "relative_id",
    "relationship",
    "degree",
    "status",
    "letter",
    "status_detail",
    "result",
    "result_date",
    "letter_sent_on",
    "reminder_due",
    "closed_on",
]
LEDGER_COLUMNS = schemas.column_names("cascade_ledger")
# Fields whose change marks a ledger row as updated on this run.
_TRACKED = ["relationship", "degree", "status", "letter", "letter_sent_on", "closed_on", "result", "result_date"]

# How far from its possible index cases the cascade reads, in relations links. A relative is
# at most three links from the index case (an aunt: index -> parent, a confirmed relative
# who opens the second degree -> grandparent -> the parent's sibling); the parent who receives
# a child's letter is one more; whether two people are full siblings depends on each one's own
# parent rows, read with every relations row that touches someone within the radius. Six
# leaves two links of margin, so relatives, letters and ledger are exactly what the region's
# whole tables give (tests/unit/test_cascade_families.py).
FAMILY_LINKS = 6

# Of the people registered as _cascade_people only (see _read_for).
_QUERIES = {
    "patients": "SELECT patient_id, birth_date, sex, postcode, deceased_date, moved_out_date FROM patients "
    "WHERE patient_id IN (SELECT patient_id FROM _cascade_people)",
    "relations": "SELECT patient_id, relative_id, relationship FROM relations "
    "WHERE patient_id IN (SELECT patient_id FROM _cascade_people) "
    "OR relative_id IN (SELECT patient_id FROM _cascade_people)",
    "contacts": "SELECT patient_id, full_name, address, postcode, city, language FROM contacts "
    "WHERE patient_id IN (SELECT patient_id FROM _cascade_people)",
}


def index_cases(
    outcomes: pl.DataFrame, fh_diagnoses: pl.DataFrame, patients: pl.DataFrame, include_diagnosis: bool
) -> pl.DataFrame:
    """Index cases known to the region: (index_patient_id, basis, basis_date).

    ``outcomes`` holds each patient's latest clinic outcome; a later ``not_fh`` therefore
    withdraws an earlier clinical diagnosis. An FH diagnosis code only counts when the
    region's settings say so (``cascade.include_existing_diagnosis_as_index``).
    """
    confirmed = outcomes.filter(pl.col("outcome").is_in(CONFIRMED_OUTCOMES)).select(
        pl.col("patient_id").alias("index_patient_id"),
        pl.col("outcome").alias("basis"),
        pl.col("outcome_date").alias("basis_date"),
    )
    parts = [confirmed]
    if include_diagnosis:
        parts.append(
            fh_diagnoses.filter(~pl.col("patient_id").is_in(confirmed["index_patient_id"].implode())).select(
                pl.col("patient_id").alias("index_patient_id"),
                pl.lit("fh_diagnosis").alias("basis"),
                pl.col("fh_diagnosed_on").alias("basis_date"),
            )
        )
    known = patients["patient_id"].implode()
    return pl.concat(parts).filter(pl.col("index_patient_id").is_in(known)).sort("index_patient_id")


def relative_ldl(labs: pl.DataFrame, meds: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """Per relative, the LDL-C the features score with (``build.scoring_ldl``) and when it arrived.

    Columns: patient_id, ldl_mmol (the scoring value: measured untreated, else the estimate),
    ldl_measured_mmol, ldl_basis, ldl_date, censored, ldl_arrived_on, ldl_on_treatment.
    """
    inputs = make_inputs(patients=patients.select("patient_id", "birth_date", "sex"),
                         lab_results=labs.drop("censored", "arrived_on"), medications=meds)
    persons = inputs.patients.select("patient_id", "birth_date", "sex")
    chosen = scoring_ldl(lipid_samples(inputs.lab_days, persons, inputs.medications))
    arrived = (labs.filter(pl.col("analyte") == "ldl").sort("sampled_at", "result_id")
               .group_by("patient_id", "sample_date")
               .agg(pl.col("censored").last(), pl.col("arrived_on").max().alias("ldl_arrived_on")))
    return chosen.select(
        "patient_id", pl.col("ldl_estimate").alias("ldl_mmol"), pl.col("ldl").alias("ldl_measured_mmol"),
        pl.col("ldl_basis"), pl.col("sample_date").alias("ldl_date"),
        (pl.col("ldl_basis") != "measured_untreated").alias("ldl_on_treatment"),
    ).join(arrived.rename({"sample_date": "ldl_date"}), on=["patient_id", "ldl_date"], how="left")


def relative_status(
    relatives: pl.DataFrame,
    patients: pl.DataFrame,
    outcomes: pl.DataFrame,
    fh_diagnoses: pl.DataFrame,
    ldl: pl.DataFrame,
    as_of: date,
) -> pl.DataFrame:
    """Status, plain-language detail and result for every (index, relative) row.

    The status is the first of ``status_policy`` that applies; the result, its dates and
    the detail come from the evidence that decided it (``evidence_policy``)."""
    as_of_lit = pl.lit(as_of, dtype=pl.Date)
    frame = (
        relatives.join(
            patients.with_columns(pl.lit(True).alias("_known")), left_on="relative_id", right_on="patient_id", how="left"
        )
        .join(outcomes, left_on="relative_id", right_on="patient_id", how="left")
        .join(fh_diagnoses, left_on="relative_id", right_on="patient_id", how="left")
        .join(ldl, left_on="relative_id", right_on="patient_id", how="left")
        .with_columns(age_at(pl.col("birth_date"), pl.col("ldl_date")).alias("ldl_age"))
    )
    frame = frame.with_columns(
        relatives_cutoffs_v1.category(pl.col("ldl_mmol"), pl.col("ldl_age"), pl.col("sex")).alias("ldl_result")
    )
    facts = relative_facts(as_of)
    frame = frame.with_columns(first_applicable(status_policy(facts)).alias("status"))
    evidence = evidence_policy(facts)
    ldl_used = evidence[-1].when
    return frame.with_columns(
        first_applicable([(e.when, e.result) for e in evidence]).alias("result"),
        first_applicable([(e.when, e.date) for e in evidence]).cast(pl.Date).alias("result_date"),
        first_applicable([(e.when, e.arrived_on) for e in evidence]).cast(pl.Date).alias("result_arrived_on"),
        first_applicable(detail_policy(facts, evidence), otherwise=pl.lit("no LDL-C result on record"))
        .alias("status_detail"),
    ).select(
        *family.RELATIVES_SCHEMA,
        "status",
        "status_detail",
        "result",
        "result_date",
        "result_arrived_on",
        (ldl_used & pl.col("ldl_on_treatment").fill_null(False)).alias("on_treatment"),
        age_at(pl.col("birth_date"), as_of_lit).alias("age_now"),
    )


def first_applicable(cases: list[tuple[pl.Expr, pl.Expr]], otherwise: pl.Expr | None = None) -> pl.Expr:
    """The value of the first case whose condition holds (null, or ``otherwise``, if none)."""
    (when, then), *rest = cases
    expr = pl.when(when).then(then)
    for when, then in rest:
        expr = expr.when(when).then(then)
    return expr if otherwise is None else expr.otherwise(otherwise)


def relative_facts(as_of: date) -> dict[str, pl.Expr]:
    """What the region holds about a relative on the run date, as named conditions."""
    day = pl.lit(as_of, dtype=pl.Date)
    return {
        "known": pl.col("_known").fill_null(False),
        "deceased": pl.col("deceased_date").is_not_null() & (pl.col("deceased_date") <= day),
        "moved": pl.col("moved_out_date").is_not_null() & (pl.col("moved_out_date") <= day),
        "confirmed": pl.col("outcome").is_in(CONFIRMED_OUTCOMES).fill_null(False),
        "diagnosed": pl.col("fh_diagnosed_on").is_not_null(),
        "not_fh": (pl.col("outcome") == "not_fh").fill_null(False),
        "has_ldl": pl.col("ldl_mmol").is_not_null(),
    }


def status_policy(f: dict[str, pl.Expr]) -> list[tuple[pl.Expr, pl.Expr]]:
    """(condition, status) in precedence order: the first that applies is the status.

    Not in the register, then deceased or moved out on or before the run date, then FH
    already known (a confirmed clinic outcome or a diagnosis code), then tested (a clinic
    outcome ``not_fh`` or an LDL-C result), else untested."""
    return [
        (~f["known"], pl.lit("outside_region")),
        (f["deceased"], pl.lit("deceased")),
        (f["moved"], pl.lit("moved")),
        (f["confirmed"] | f["diagnosed"], pl.lit("already_diagnosed")),
        (f["not_fh"] | f["has_ldl"], pl.lit("tested")),
        (pl.lit(True), pl.lit("untested")),
    ]


class Evidence(NamedTuple):
    """One kind of evidence behind a status: when it decides, and the result it gives."""

    when: pl.Expr
    result: pl.Expr
    date: pl.Expr
    arrived_on: pl.Expr
    detail: pl.Expr


def evidence_policy(f: dict[str, pl.Expr]) -> list[Evidence]:
    """Which evidence gives the result, in order: a confirmed clinic outcome, else a
    diagnosis code (for ``already_diagnosed``); a ``not_fh`` clinic outcome, else the
    relative's LDL-C read against the cut-offs for relatives (for ``tested``). The LDL-C
    row is last (``relative_status`` reads ``on_treatment`` from it)."""
    diagnosed = pl.col("status") == "already_diagnosed"
    tested = pl.col("status") == "tested"
    return [
        Evidence(diagnosed & f["confirmed"], pl.col("outcome"), pl.col("outcome_date"), pl.col("outcome_arrived_on"),
                 pl.format("FH confirmed by the lipid clinic ({}) on {}", pl.col("outcome"), pl.col("outcome_date"))),
        Evidence(diagnosed, pl.lit("fh_diagnosis"), pl.col("fh_diagnosed_on"), pl.col("dx_arrived_on"),
                 pl.format("FH diagnosis recorded on {}", pl.col("fh_diagnosed_on"))),
        Evidence(tested & f["not_fh"], pl.lit("not_fh"), pl.col("outcome_date"), pl.col("outcome_arrived_on"),
                 pl.format("lipid clinic found no FH on {}", pl.col("outcome_date"))),
        Evidence(tested & ~f["not_fh"], pl.col("ldl_result").fill_null("not_classifiable"), pl.col("ldl_date"),
                 pl.col("ldl_arrived_on"), _ldl_detail()),
    ]


def _ldl_detail() -> pl.Expr:
    """The LDL-C sentence: value, how it was obtained, date, age and the category read."""
    return pl.format(
        "LDL-C {}{} mmol/L ({}) on {} at age {}: FH {} by the cut-offs for relatives of an FH index case ({})",
        pl.col("censored").fill_null(""),
        pl.col("ldl_mmol").round(2),
        pl.when(pl.col("ldl_basis") == "estimated_from_treated")
        .then(pl.format("estimated untreated from {} mmol/L on treatment", pl.col("ldl_measured_mmol").round(2)))
        .when(pl.col("ldl_basis") == "measured_early_treatment")
        .then(pl.lit("measured soon after starting treatment, not corrected"))
        .otherwise(pl.lit("measured untreated")),
        pl.col("ldl_date"),
        pl.col("ldl_age"),
        pl.col("ldl_result").fill_null("not classifiable"),
        pl.lit(CUTOFF_TABLE),
    )


def detail_policy(f: dict[str, pl.Expr], evidence: list[Evidence]) -> list[tuple[pl.Expr, pl.Expr]]:
    """(condition, plain-language detail): why the relative has their status."""
    def is_(name: str) -> pl.Expr:
        return pl.col("status") == name

    return [
        (is_("outside_region"), pl.lit("not in the region's patient register; reached through the family letter")),
        (is_("deceased"), pl.lit("deceased")),
        (is_("moved"), pl.format("moved out of the region on {}", pl.col("moved_out_date"))),
        *[(e.when, e.detail) for e in evidence],
    ]


def index_only_rows(index: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """One row per index case with no living relative known to the region."""
    living = rows.filter(pl.col("status") != "deceased")["index_patient_id"].implode()
    return index.filter(~pl.col("index_patient_id").is_in(living)).select(
        "index_patient_id",
        pl.lit("").alias("relative_id"),
        pl.lit("none_known").alias("relationship"),
        pl.lit(None, pl.Int32).alias("degree"),
        pl.lit(None, pl.Utf8).alias("via_id"),
        pl.lit("index_only").alias("status"),
        pl.lit("no living relative recorded; the family letter goes with the index case's letter").alias(
            "status_detail"
        ),
        pl.lit(None, pl.Utf8).alias("result"),
        pl.lit(None, pl.Date).alias("result_date"),
        pl.lit(None, pl.Date).alias("result_arrived_on"),
        pl.lit(False).alias("on_treatment"),
        pl.lit(None, pl.Int32).alias("age_now"),
    )


def build_ledger(
    rows: pl.DataFrame, coverage: pl.DataFrame, previous: pl.DataFrame, as_of: date, reminder_weeks: int
) -> pl.DataFrame:
    """The ledger after this run, a function of today's data, the letters and the previous ledger.

    * ``letter_sent_on``: the first letter that reached the relative (their own, their
      parent's, or the family letter enclosed with the index case's letter); never moves
      later once set.
    * ``reminder_due``: ``letter_sent_on`` + ``reminder_weeks`` while the loop is open for
      a relative who can still act on it (``untested`` or ``tested``).
    * ``closed_on``: the date of a result obtained after the letter (a test, a clinic
      outcome or a diagnosis); sticky once set. "After the letter" = sampled on or after
      the letter's run date AND delivered by a later delivery, i.e. the letter was
      generated without knowing it (a nightly delivery brings the previous day's
      samples). When the delivery's date is unknown, the sample must be dated after the
      letter.
    * ``updated_on``: this run's date when a tracked field changed, else kept.
    Deceased relatives stay in the ledger only when they had been written to before.
    Rerunning the same date gives the same ledger.
    """
    prev_cols = [*_TRACKED, "updated_on"]
    prev = previous.select(
        "index_patient_id", "relative_id", *[pl.col(c).alias(f"prev_{c}") for c in prev_cols]
    ).cast({"prev_degree": pl.Int32})
    frame = rows.join(coverage, on=["index_patient_id", "relative_id"], how="left").join(
        prev, on=["index_patient_id", "relative_id"], how="left"
    )
    frame = frame.filter((pl.col("status") != "deceased") | pl.col("prev_letter_sent_on").is_not_null())
    frame = frame.with_columns(pl.min_horizontal("prev_letter_sent_on", "covered_on").alias("letter_sent_on"))
    frame = frame.with_columns(
        pl.coalesce("prev_closed_on", pl.when(closes_loop()).then(pl.col("result_date"))).alias("closed_on"),
    ).with_columns(
        reminder_due(reminder_weeks).alias("reminder_due"),
        pl.coalesce("direct_letter", "prev_letter", "family_letter").alias("letter"),
    )
    frame = frame.with_columns(updated_on(as_of).alias("updated_on"))
    return (
        frame.select(LEDGER_COLUMNS)
        .cast({"degree": pl.Int32, "letter_sent_on": pl.Date, "reminder_due": pl.Date, "closed_on": pl.Date})
        .sort(["index_patient_id", "degree", "relationship", "relative_id"], nulls_last=False)
    )


def closes_loop() -> pl.Expr:
    """A result closes the loop when it was obtained after the letter: a tested or
    diagnosed relative, sampled on or after the letter's date, and delivered after it (or,
    with no delivery date, dated after it)."""
    sent_on = pl.col("letter_sent_on")
    return (
        pl.col("status").is_in(["tested", "already_diagnosed"])
        & sent_on.is_not_null()
        & (pl.col("result_date") >= sent_on)
        & pl.when(pl.col("result_arrived_on").is_not_null())
        .then(pl.col("result_arrived_on") > sent_on)
        .otherwise(pl.col("result_date") > sent_on)
    )


def reminder_due(weeks: int) -> pl.Expr:
    """``letter_sent_on`` + ``weeks`` while the loop is open for a relative who can still
    act on the letter (``untested`` or ``tested``); else none."""
    return pl.when(
        pl.col("letter_sent_on").is_not_null()
        & pl.col("closed_on").is_null()
        & pl.col("status").is_in(["untested", "tested"])
    ).then(pl.col("letter_sent_on") + pl.duration(weeks=weeks))


def updated_on(as_of: date) -> pl.Expr:
    """The run date when a tracked field changed (or the row is new), else the date kept."""
    changed = pl.lit(False)
    for col in _TRACKED:
        changed = changed | pl.col(col).ne_missing(pl.col(f"prev_{col}"))
    return (
        pl.when(changed | pl.col("prev_updated_on").is_null())
        .then(pl.lit(as_of, dtype=pl.Date))
        .otherwise(pl.col("prev_updated_on"))
    )


def _read(con, query: str, params: list | None = None) -> pl.DataFrame:
    return con.execute(query, params or []).pl()


def _read_for(con, people: pl.Series, query: str, params: list | None = None) -> pl.DataFrame:
    """``query`` with ``people`` registered as ``_cascade_people``, for queries that need a
    few thousand families' rows out of a region-wide table (reading and converting the
    whole table would cost most of the step)."""
    con.register("_cascade_people", people.unique().to_frame("patient_id"))
    try:
        return _read(con, query, params)
    finally:
        con.unregister("_cascade_people")


def _possible_recipients(index: pl.DataFrame, rel: pl.DataFrame, links: pl.DataFrame) -> pl.Series:
    """Everyone a letter could go to: index cases, their relatives and the parents of both."""
    family = pl.concat([index["index_patient_id"], rel["relative_id"]])
    parents = links.filter(pl.col("child_id").is_in(family.implode()))["parent_id"]
    return pl.concat([family, parents])


def _insert(con, table: str, frame: pl.DataFrame) -> None:
    """Append ``frame`` to one of this step's own tables, matching columns by name."""
    if table not in ("cascade_ledger", "cascade_letters"):
        raise ValueError(f"not a cascade table: {table!r}")
    con.register("_cascade_rows", frame)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _cascade_rows")
    finally:
        con.unregister("_cascade_rows")


def _summary(
    index: pl.DataFrame, rows: pl.DataFrame, ledger: pl.DataFrame, letters_new: pl.DataFrame, as_of: date
) -> dict:
    """Aggregate counts only (no ids) for run_manifest.json and the evaluators.

    Relative counts are (index case, relative) pairs: someone related to two index cases
    counts twice, as in per-index-case cascade yields; ``deceased_people_excluded`` counts
    people.
    """
    relatives = rows.filter(pl.col("status") != "index_only")
    living = relatives.filter(pl.col("status") != "deceased")
    reachable = living.filter(pl.col("status").is_in(["untested", "tested", "already_diagnosed"]))
    tested = living.filter(pl.col("status") == "tested")
    ldl_tested = tested.filter(pl.col("result").is_in(LDL_RESULTS))
    by_status = dict(sorted(relatives.group_by("status").len().iter_rows()))
    n_index = index.height

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "index_cases": n_index,
        "index_by_basis": dict(sorted(index.group_by("basis").len().iter_rows())),
        "relatives_identified": living.height,
        "relatives_first_degree": living.filter(pl.col("degree") == 1).height,
        "relatives_second_degree": living.filter(pl.col("degree") == 2).height,
        "relatives_per_index": share(living.height, n_index),
        "first_degree_per_index": share(living.filter(pl.col("degree") == 1).height, n_index),
        "deceased_relatives_excluded": by_status.get("deceased", 0),
        "deceased_people_excluded": relatives.filter(pl.col("status") == "deceased")["relative_id"].n_unique(),
        "relatives_by_status": by_status,
        "share_tested_of_reachable": share(tested.height, reachable.height),
        "share_already_diagnosed_of_reachable": share(
            reachable.filter(pl.col("status") == "already_diagnosed").height, reachable.height
        ),
        "ldl_tested": ldl_tested.height,
        "ldl_results": dict(sorted(ldl_tested.group_by("result").len().iter_rows())),
        "ldl_tested_on_treatment": ldl_tested.filter(pl.col("on_treatment")).height,
        "share_ldl_likely_of_tested": share(ldl_tested.filter(pl.col("result") == "likely").height, ldl_tested.height),
        "share_ldl_uncertain_or_likely_of_tested": share(
            ldl_tested.filter(pl.col("result").is_in(["likely", "uncertain"])).height, ldl_tested.height
        ),
        "index_only": rows.filter(pl.col("status") == "index_only").height,
        "letters_new": dict(sorted(letters_new.group_by("kind").len().iter_rows())),
        "loops_closed": ledger.filter(pl.col("closed_on").is_not_null()).height,
        "reminders_open": ledger.filter(pl.col("reminder_due").is_not_null()).height,
        "reminders_due_now": ledger.filter(pl.col("reminder_due") <= as_of).height,
        "cutoff_table": CUTOFF_TABLE,
    }


def cascade_step(ctx: RunContext) -> dict:
    """Run the cascade for ``ctx.as_of``: ledger, letters, ``cascade.csv``; returns counts."""
    settings = ctx.settings.cascade
    con = ctx.connect()
    try:
        con.execute(db.sql("cascade_ledger"))
        data = _read_inputs(con, ctx)
        index = index_cases(data["outcomes"], data["fh_dx"], data["patients"],
                            settings.include_existing_diagnosis_as_index)
        links = family.parent_child(data["relations"])
        rel = family.relatives(data["relations"], index["index_patient_id"], index["index_patient_id"], links)
        ldl = relative_ldl(_read_for(con, rel["relative_id"], db.sql("cascade_ldl"), [ctx.as_of]),
                           _read_for(con, rel["relative_id"], db.sql("cascade_medications"), [ctx.as_of]),
                           data["patients"])
        contacts = _read_for(con, _possible_recipients(index, rel, links), _QUERIES["contacts"])
        rows = relative_status(rel, data["patients"], data["outcomes"], data["fh_dx"], ldl, ctx.as_of)
        rows = pl.concat([rows, index_only_rows(index, rows)], how="vertical_relaxed")
        plan = cascade_letters.plan(index=index, rows=rows, links=links, patients=data["patients"], contacts=contacts,
                                    settings=ctx.settings, sent_before=data["sent_before"], as_of=ctx.as_of)
        ledger = build_ledger(rows, plan.coverage, data["previous"], ctx.as_of, settings.reminder_weeks)
        letters_new = plan.letters.filter(pl.col("sent_on") == ctx.as_of)
        _store(con, ctx.as_of, letters_new, ledger)
    finally:
        con.close()
    return _publish(ctx, plan, index, rows, ledger, letters_new)


def read_families(con, possible_index: pl.Series, links: int = FAMILY_LINKS) -> dict[str, pl.DataFrame]:
    """``patients`` and ``relations`` rows of everyone within ``links`` relations links of
    ``possible_index`` (a superset of tonight's index cases): all the cascade needs of them."""
    families = _read_for(con, possible_index, db.sql("cascade_families"), [links])["patient_id"]
    return {"patients": _read_for(con, families, _QUERIES["patients"]),
            "relations": _read_for(con, families, _QUERIES["relations"])}


def _read_inputs(con, ctx: RunContext) -> dict[str, pl.DataFrame]:
    """The cascade's inputs: patients and relations of the families of possible index cases
    (``FAMILY_LINKS``), every clinic outcome and FH diagnosis, the ledger and earlier letters;
    records a feature as off when its input is missing."""
    data = {
        "outcomes": _read(con, db.sql("cascade_outcomes"), [ctx.as_of]),
        "fh_dx": _read(con, db.sql("cascade_fh_diagnosis"), [ctx.as_of]),
        "previous": _read(con, "SELECT * FROM cascade_ledger"),
        "sent_before": _read(con, "SELECT * FROM cascade_letters WHERE sent_on <> $1", [ctx.as_of]).rename(
            {"patient_id": "recipient_id"}
        ),
    }
    possible_index = pl.concat([
        data["outcomes"].filter(pl.col("outcome").is_in(CONFIRMED_OUTCOMES))["patient_id"],
        data["fh_dx"]["patient_id"]])
    data.update(read_families(con, possible_index))
    has_contacts = con.execute("SELECT count(*) FROM contacts").fetchone()[0] > 0
    has_relations = con.execute("SELECT count(*) FROM relations").fetchone()[0] > 0
    if not has_relations:
        ctx.feature_off("cascade_relatives", "no relations delivered: only index-case letters are written")
    if ctx.settings.cascade.direct_contact and not has_contacts:
        ctx.feature_off("cascade_direct_letters", "no contacts delivered: relatives cannot be addressed")
    return data


def _store(con, as_of: date, letters_new: pl.DataFrame, ledger: pl.DataFrame) -> None:
    """Tonight's letters and the whole ledger, in one transaction (a rerun replaces them)."""
    with db.transaction(con):
        con.execute("DELETE FROM cascade_letters WHERE sent_on = $1", [as_of])
        _insert(
            con,
            "cascade_letters",
            letters_new.select(
                "index_patient_id", pl.col("recipient_id").alias("patient_id"), "kind", "language", "file", "sent_on"
            ),
        )
        con.execute("DELETE FROM cascade_ledger")
        _insert(con, "cascade_ledger", ledger)


def _publish(ctx: RunContext, plan, index: pl.DataFrame, rows: pl.DataFrame, ledger: pl.DataFrame,
             letters_new: pl.DataFrame) -> dict:
    """Render the letters and write ``cascade.csv``; returns the step's report."""
    letters_dir = ctx.work_dir / cascade_letters.LETTERS_SUBDIR
    shutil.rmtree(letters_dir, ignore_errors=True)  # this step owns letters/: a rerun starts clean
    rendered = cascade_letters.render_all(plan, letters_dir, ctx.settings, ctx.as_of)
    out = ledger.filter(pl.col("status") != "deceased").select(CSV_COLUMNS)
    files.write_csv(ctx.work_dir / "cascade.csv", out, date_format="%Y-%m-%d")
    report = _summary(index, rows, ledger, letters_new, ctx.as_of)
    report.update(rendered)
    log.info(
        "cascade: %d index cases, %d relatives, %d new letters",
        report["index_cases"],
        report["relatives_identified"],
        letters_new.height,
    )
    return report
