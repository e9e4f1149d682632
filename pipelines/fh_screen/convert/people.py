"""People from the population registers: who, born when, sex, parents, death, emigration.

Pure functions over text frames named canonically (``read.read_table``). Each returns
its result and the rows it read with ``_reason`` (NULL = used), for the ledger.

Decisions:
    * BEF holds one row per person per snapshot. The latest snapshot is kept (``_snapshot``
      from the file name, then file order); earlier rows are set aside as superseded.
    * The study population is the ``population`` table when delivered (a research project
      receives one); the population register may also hold relatives outside it, who then
      appear only as relatives. Without a population table, everyone is in it.
    * Relations come from the parent ids of the latest snapshot: each patient's registered
      mother and father ('parent'), people whose parent id is the patient ('child'), and
      people with the same registered mother and father ('sibling'; a parent missing from
      the register matches a missing parent). A parent id that is not itself in the
      register still gives a 'parent' row (the contract allows relatives absent from
      patients) and is counted in the manifest's notes.
    * Moved out = the date of the last emigration not followed by an immigration (an
      emigration and a return on the same day count as still resident).
"""

from __future__ import annotations

import polars as pl

from fh_screen.convert import fields as f

NO_PERSON = "no person id"
BAD_BIRTH = "birth date unreadable"
OLDER_SNAPSHOT = "older snapshot (the person's latest snapshot is kept)"
NOT_IN_POPULATION = "person not in the study population"
NOT_IN_REGISTER = "person in the population table but not in the population register"
BAD_DATE = "date unreadable"
SECOND_DEATH = "second death record for the person (the earliest is kept)"
UNKNOWN_DIRECTION = "migration direction code not I or U"
STATUS_WITHOUT_DATE = "status dead or emigrated without a readable status date (person left out: never referred)"

def latest_snapshot(rows: pl.DataFrame, male: list[str], female: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """BEF (or CPR3_T_PERSON) rows -> one row per person from the latest snapshot.

    Returns ``(people, accounted)``: people has patient_id, birth_date, sex, mother,
    father (and status, status_date when delivered).
    """
    work = rows.with_columns(
        patient_id=f.identifier(pl.col("person")),
        birth_date=f.register_date(pl.col("birth_date")),
        sex=f.sex_code(pl.col("sex") if "sex" in rows.columns else pl.lit(None, pl.String), male, female),
        mother=f.identifier(pl.col("mother")) if "mother" in rows.columns else pl.lit(None, pl.String),
        father=f.identifier(pl.col("father")) if "father" in rows.columns else pl.lit(None, pl.String),
        _order=pl.int_range(0, pl.len()),
    ).with_columns(
        _reason=pl.when(pl.col("patient_id").is_null()).then(pl.lit(NO_PERSON))
        .when(pl.col("birth_date").is_null()).then(pl.lit(BAD_BIRTH)),
    )
    ok = work.filter(pl.col("_reason").is_null()).sort(["_snapshot", "_order"], nulls_last=False)
    last = ok.group_by("patient_id", maintain_order=True).agg(pl.col("_order").last().alias("_keep"))
    keep = set(last["_keep"].to_list())
    accounted = work.with_columns(
        _reason=pl.when(pl.col("_reason").is_null() & ~pl.col("_order").is_in(list(keep)))
        .then(pl.lit(OLDER_SNAPSHOT)).otherwise(pl.col("_reason")))
    extra = [c for c in ("status", "status_date") if c in rows.columns]
    people = (work.filter(pl.col("_order").is_in(list(keep)))
              .select("patient_id", "birth_date", "sex", "mother", "father", *extra)
              .sort("patient_id"))
    return people, accounted.select("_file", "_row", "_reason", "patient_id")


def study_population(people: pl.DataFrame, population: pl.DataFrame | None) -> tuple[pl.Series, pl.DataFrame | None]:
    """The patient ids: the population table's persons found in the register (all people
    when no population table is delivered). Returns ``(ids, accounted population rows)``."""
    if population is None:
        return people["patient_id"], None
    work = population.with_columns(patient_id=f.identifier(pl.col("person")))
    known = people["patient_id"].implode()
    work = work.with_columns(
        _reason=pl.when(pl.col("patient_id").is_null()).then(pl.lit(NO_PERSON))
        .when(~pl.col("patient_id").is_in(known)).then(pl.lit(NOT_IN_REGISTER)))
    ids = work.filter(pl.col("_reason").is_null())["patient_id"].unique().sort()
    return ids, work.select("_file", "_row", "_reason")


def relations(people: pl.DataFrame, patients: pl.Series) -> tuple[pl.DataFrame, int]:
    """Parent, child and sibling rows for each patient from the parent ids.

    Returns ``(relations, parents_not_in_register)``.
    """
    latest = people.select("patient_id", "mother", "father")
    is_patient = pl.col("patient_id").is_in(patients.implode())
    parents = pl.concat([
        latest.select("patient_id", pl.col(side).alias("relative_id")) for side in ("mother", "father")
    ]).filter(pl.col("relative_id").is_not_null())
    parent_rows = parents.filter(is_patient).with_columns(relationship=pl.lit("parent"))
    child_rows = (parents.select(pl.col("relative_id").alias("patient_id"), pl.col("patient_id").alias("relative_id"))
                  .filter(is_patient).with_columns(relationship=pl.lit("child")))
    with_parent = latest.filter(pl.col("mother").is_not_null() | pl.col("father").is_not_null())
    sibling_rows = (with_parent.filter(is_patient)
                    .join(with_parent, on=["mother", "father"], nulls_equal=True, suffix="_sib")
                    .filter(pl.col("patient_id") != pl.col("patient_id_sib"))
                    .select("patient_id", pl.col("patient_id_sib").alias("relative_id"), pl.lit("sibling").alias("relationship")))
    out = (pl.concat([parent_rows, child_rows, sibling_rows]).unique()
           .sort("patient_id", "relative_id", "relationship"))
    missing = parent_rows.filter(~pl.col("relative_id").is_in(latest["patient_id"].implode())).height
    return out.select("patient_id", "relative_id", "relationship"), missing


def deaths(rows: pl.DataFrame, population: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """DOD rows -> (patient_id, deceased_date), earliest per person; and the accounting."""
    work = rows.with_columns(patient_id=f.identifier(pl.col("person")),
                             deceased_date=f.register_date(pl.col("death_date")),
                             _order=pl.int_range(0, pl.len()))
    work = work.with_columns(_reason=_person_reason(population).when(pl.col("deceased_date").is_null()).then(pl.lit(BAD_DATE)))
    ok = work.filter(pl.col("_reason").is_null()).sort("deceased_date", "_order")
    first = ok.group_by("patient_id", maintain_order=True).agg(pl.col("_order").first(), pl.col("deceased_date").first())
    work = work.with_columns(_reason=pl.when(pl.col("_reason").is_null() & ~pl.col("_order").is_in(first["_order"].implode()))
                             .then(pl.lit(SECOND_DEATH)).otherwise(pl.col("_reason")))
    return first.select("patient_id", "deceased_date").sort("patient_id"), work.select("_file", "_row", "_reason")


def moved_out(events: pl.DataFrame, population: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Migration events (person, direction I/U, event_date) -> (patient_id, moved_out_date).

    Returns ``(moved, accounted, emigrations_followed_by_return)``.
    """
    work = events.with_columns(
        patient_id=f.identifier(pl.col("person")),
        event=f.register_date(pl.col("event_date")),
        direction=pl.col("direction").cast(pl.String).str.strip_chars().str.to_uppercase(),
    )
    work = work.with_columns(
        _reason=_person_reason(population)
        .when(pl.col("event").is_null()).then(pl.lit(BAD_DATE))
        .when(~pl.col("direction").is_in(["I", "U"])).then(pl.lit(UNKNOWN_DIRECTION)))
    ok = work.filter(pl.col("_reason").is_null())
    # Same day: the emigration sorts first, so a return on that day wins.
    last = (ok.sort("patient_id", "event", pl.col("direction") == "I")
            .group_by("patient_id", maintain_order=True).agg(pl.col("direction").last(), pl.col("event").last()))
    moved = last.filter(pl.col("direction") == "U").select("patient_id", pl.col("event").alias("moved_out_date"))
    returned = ok.filter(pl.col("direction") == "U").height - moved.height
    return moved.sort("patient_id"), work.select("_file", "_row", "_reason"), returned


def status_events(people: pl.DataFrame, dead: list[str], emigrated: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series]:
    """CPR3_T_PERSON status (90 dead, 80 emigrated) and its date -> deaths and moves.

    Returns ``(deceased, moved, left_out)``: people whose status says dead or emigrated
    but whose date cannot be read are left out of the patients (never referred).
    """
    code = pl.col("status").cast(pl.String).str.strip_chars().str.replace(r"\.0+$", "").str.zfill(2)
    work = people.with_columns(_code=code, _when=f.register_date(pl.col("status_date")))
    flagged = work.filter(pl.col("_code").is_in(dead + emigrated))
    deceased = flagged.filter(pl.col("_code").is_in(dead) & pl.col("_when").is_not_null()).select(
        "patient_id", pl.col("_when").alias("deceased_date"))
    moved = flagged.filter(pl.col("_code").is_in(emigrated) & pl.col("_when").is_not_null()).select(
        "patient_id", pl.col("_when").alias("moved_out_date"))
    return deceased, moved, flagged.filter(pl.col("_when").is_null())["patient_id"]


def _person_reason(population: pl.Series) -> pl.Expr:
    return (pl.when(pl.col("patient_id").is_null()).then(pl.lit(NO_PERSON))
            .when(~pl.col("patient_id").is_in(population.implode())).then(pl.lit(NOT_IN_POPULATION)))
