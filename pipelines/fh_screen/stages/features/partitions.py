"""The features step in three parts: plan, build one partition, gather.

Peak memory is set by a partition (``incremental.partition_people`` people, whole families
together), not by the region. ``fhscreen run`` runs the three parts one after another in one
process (``run.Partitioned.run_in_process``); the nightly Airflow DAG runs the plan and the
gather as tasks of the region and maps the partitions over its workers
(``fh_screen.app.orchestration``). The same functions write the same files either way, so
the outputs are the same.

The parts hand over through files in the run's work folder (``RunContext.parts_dir``), each
written under a temporary name and renamed into place:

    plan.json                      tonight's plan; written last, so a partition never reads half a plan
    recompute.parquet              the patients an incremental night recomputes
    evidence.parquet               (incremental night) whose evidence as a relative changed: the
                                   gather keeps them as tonight's family notes, for a rerun
    own.parquet                    (incremental night) the ``own_features`` of the patients whose own
                                   inputs changed, built once by the plan's evidence check and
                                   finished by the partition (their inputs are read once a night)
    scope.parquet                  ``patient_id, part``: whose inputs each partition reads
                                   (absent: one partition reads everyone)
    part-<k>-of-<n>.parquet/.json  partition k's feature rows, then its people, seconds and peak memory
    <step>-part-<k>-of-<n>.parquet a later per-patient step's rows of partition k (the rules, the
                                   model scores: ``companions``), built in the same task from its features

Only the gather writes to the store, in one transaction; the plan and the partitions open it
read-only, so the store never has two writers. Every part may be repeated: the plan starts
its folder afresh, a partition replaces its own file, the gather replaces the table (or
merges the same rows) and saves the same state. The folder is removed just before the
outputs are published (``run.publish``).
"""

from __future__ import annotations

import json
import shutil
from contextlib import closing
from pathlib import Path

import polars as pl

from fh_screen.context import RunContext, measured
from fh_screen.errors import UserError
from fh_screen.stages.features.build import DAILY_COLUMNS, EVIDENCE_COLUMNS, boundary_day_counts, \
    build_features, daily_values, load_inputs, make_inputs, own_features, read_input, relative_evidence, with_relatives
from fh_screen.store import changes, db, files

STEP = "features"
PLAN = "plan.json"
EVIDENCE = "evidence.parquet"
OWN = "own.parquet"


def _part(folder: Path, part: int, parts: int, suffix: str) -> Path:
    return folder / f"part-{part}-of-{parts}.{suffix}"


def plan(ctx: RunContext) -> int:
    """Decide tonight's features work and how it is split; returns the number of partitions.

    A full pass larger than ``incremental.partition_people`` is split into family partitions
    (``changes.family_partitions``); an incremental night's patients are one partition, found
    in two parts: the patients whose own inputs changed, then their relatives where what their
    features say about them as a relative changed (``evidence_changed``, ``changes.widen``).
    """
    folder = ctx.parts_dir(STEP)
    shutil.rmtree(folder, ignore_errors=True)   # an earlier attempt's plan and partitions
    with closing(ctx.connect(read_only=True)) as con:
        for table in ("medications", "diagnoses", "relations", "family_history", "clinic_outcomes"):
            if con.execute(f"SELECT count(*) FROM {db.checked_table(table)}").fetchone()[0] == 0:
                ctx.feature_off(f"features.{table}", f"no {table} rows: the features built from it are empty")
        night = changes.plan_features(con, ctx.as_of, ctx.settings, boundary_day_counts())
        if not night.full:
            # Own features read no relations: those of the changed patients are not read here.
            own = own_features(load_inputs(con, ctx.as_of, scope=changes.CHANGED_TABLE, relations=False), ctx.as_of)
            evidence = evidence_changed(con, own)
            files.write_parquet(folder / OWN, own)
            files.write_parquet(folder / EVIDENCE, evidence)
            night = changes.widen(con, night, evidence)
        parts = changes.family_partitions(con, ctx.settings.incremental.partition_people) if night.full else 1
        scope = (changes.partition_of_everyone(con) if parts > 1
                 else None if night.full else changes.scope_in_one_partition(con))
    files.write_parquet(folder / "recompute.parquet", night.recompute)
    if scope is not None:
        files.write_parquet(folder / "scope.parquet", scope)
    record = {"as_of": ctx.as_of.isoformat(), "parts": parts, "scoped": scope is not None,
              "plan": changes.plan_record(night)}
    files.write_text(folder / PLAN, json.dumps(record, sort_keys=True))
    return parts


def evidence_changed(con, own: pl.DataFrame) -> pl.DataFrame:
    """``patient_id`` of the patients whose own inputs changed tonight (``changes.CHANGED_TABLE``)
    and whose ``relative_evidence`` (what their own features say about them as someone's
    relative; ``own``: their ``own_features`` built tonight) differs from that of their stored
    features, or exists on one side only. Only their relatives' features can change because
    of them."""
    fresh = relative_evidence(own)
    stored = relative_evidence(changes.stored_features(con, EVIDENCE_COLUMNS, changes.CHANGED_TABLE))
    stored = stored.select(pl.col(c).cast(t) for c, t in fresh.schema.items())
    differ = pl.concat([fresh.join(stored, on=fresh.columns, how="anti", nulls_equal=True),
                        stored.join(fresh, on=fresh.columns, how="anti", nulls_equal=True)])
    return differ.select(pl.col("relative_id").alias("patient_id")).unique()


def planned(ctx: RunContext) -> int | None:
    """How many partitions tonight's saved plan has; None without a plan for this night (the
    night failed before planning, or a new attempt has started)."""
    path = ctx.parts_dir(STEP) / PLAN
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return record["parts"] if record and record["as_of"] == ctx.as_of.isoformat() else None


def _saved_plan(ctx: RunContext) -> dict:
    path = ctx.parts_dir(STEP) / PLAN
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if record is None or record["as_of"] != ctx.as_of.isoformat():
        raise UserError(f"no features plan for {ctx.as_of} in the run's work folder: "
                        "run the night again from its features plan")
    return record


def build(ctx: RunContext, part: int) -> dict:
    """Build partition ``part`` of the saved plan from the store opened read-only and write its
    rows to its own file. Returns the partition's people, seconds, CPU seconds and peak memory."""
    record = _saved_plan(ctx)
    folder, parts = ctx.parts_dir(STEP), record["parts"]
    if not 0 <= part < parts:
        raise ValueError(f"partition {part} is not one of the plan's {parts}")
    with measured() as cost:
        with closing(ctx.connect(read_only=True)) as con:
            if record["scoped"]:
                changes.select_partition(con, str(folder / "scope.parquet"), part)
            if record["plan"]["full"]:
                inputs = load_inputs(con, ctx.as_of, scope=changes.SCOPE_TABLE if record["scoped"] else None)
            else:   # the recomputed patients' own features; their relatives' as stored when not recomputed
                changes.select_recompute(con, str(folder / "recompute.parquet"))
                own, relations, known = _recomputed(con, ctx.as_of, pl.read_parquet(folder / OWN))
        if record["plan"]["full"]:
            frame = build_features(inputs, ctx.as_of)
            del inputs
        else:
            frame = with_relatives(own, relations, ctx.as_of, known)
            del own, relations, known
        files.write_parquet(_part(folder, part, parts, "parquet"), frame)
        people = frame.height
        del frame
    report = {"partition": part, "people": people, **cost}
    files.write_text(_part(folder, part, parts, "json"), json.dumps(report, sort_keys=True))
    return report


def _recomputed(con, as_of, changed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What an incremental night's partition finishes with ``with_relatives``: the own features
    of everyone in ``changes.RECOMPUTE_TABLE``, the relations around them and the stored own
    features (``EVIDENCE_COLUMNS``) of their relatives.

    The own features are those the plan built for the patients whose inputs changed
    (``changed``) and, for the others (recomputed because a relative's evidence or their
    family graph changed; their own inputs and date boundaries did not, so their own features
    are yesterday's), their stored ones with today's ``DAILY_COLUMNS``. No one's inputs are
    read twice a night: at 1M people the second read scanned all 10M lab rows again and built
    the changed patients' features a second time."""
    kept = changes.select_unchanged(con, changed)
    stored = changes.stored_features(con, tuple(c for c in changed.columns if c not in DAILY_COLUMNS), kept)
    daily = daily_values(read_input(con, "patients", as_of, kept), as_of)
    stored = stored.join(daily, on="patient_id", how="left").select(pl.col(c).cast(t) for c, t in changed.schema.items())
    relations = read_input(con, "relations", as_of, changes.SCOPE_TABLE)
    return pl.concat([changed, stored]), relations, changes.stored_features(con, EVIDENCE_COLUMNS, changes.SCOPE_TABLE)


def partition_files(ctx: RunContext, part: int, step: str) -> tuple[Path, Path]:
    """Partition ``part``'s features file of the saved plan, and the file where the later
    per-patient ``step`` writes its rows of the same patients (see ``companions``)."""
    folder, parts = ctx.parts_dir(STEP), _saved_plan(ctx)["parts"]
    return _part(folder, part, parts, "parquet"), folder / f"{step}-part-{part}-of-{parts}.parquet"


def companions(ctx: RunContext, step: str) -> tuple[bool, pl.DataFrame, list[str]] | None:
    """The rows a later per-patient ``step`` built beside tonight's feature partitions: whether
    the features made a full pass, the patients they recomputed (an incremental night) and
    every partition's file of ``step``. None without a plan for tonight or while a file is
    missing (``step`` then works from the store)."""
    path = ctx.parts_dir(STEP) / PLAN
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if record is None or record["as_of"] != ctx.as_of.isoformat():
        return None
    paths = [partition_files(ctx, k, step)[1] for k in range(record["parts"])]
    if not all(p.is_file() for p in paths):
        return None
    return record["plan"]["full"], pl.read_parquet(ctx.parts_dir(STEP) / "recompute.parquet"), [str(p) for p in paths]


def gather(ctx: RunContext) -> dict:
    """Load every partition's file into ``patient_features`` and save tonight's incremental
    state, in one transaction: the one writer. Refuses while a partition is missing."""
    record = _saved_plan(ctx)
    folder, parts = ctx.parts_dir(STEP), record["parts"]
    missing = [k for k in range(parts) if not _part(folder, k, parts, "json").is_file()]
    if missing:
        raise UserError(f"features: partition(s) {', '.join(map(str, missing))} of {parts} not built; "
                        "run them, then the gather again")
    paths = [str(_part(folder, k, parts, "parquet")) for k in range(parts)]
    # Every file is read through ``db.present_rows``: someone erased while the partitions ran
    # is still in them, and must not be stored again (nor kept in tonight's notes).
    with closing(ctx.connect()) as con, db.transaction(con):
        night = changes.plan_from_record(record["plan"], db.present_rows(con, [folder / "recompute.parquet"]))
        if night.full:
            db.replace_table_from_files(con, "patient_features", paths, "patient_id")
        else:
            daily = daily_values(make_inputs(patients=con.execute(db.sql("feat_patients")).pl()).patients, ctx.as_of)
            changes.merge(con, "patient_features", db.present_rows(con, paths), night.recompute, ctx.as_of,
                          overlay=daily)
        evidence = None if night.full else db.present_rows(con, [folder / EVIDENCE])
        changes.save_features(con, night, ctx.as_of, ctx.settings, evidence)
    with closing(ctx.connect(read_only=True)) as con:
        patients, with_ldl, columns = con.execute(
            "SELECT count(*), count(ldl_untreated_estimate_mmol), "
            "(SELECT count(*) FROM information_schema.columns WHERE table_name = 'patient_features') "
            "FROM patient_features").fetchone()
    report = {"patients": patients, "with_ldl": with_ldl, "columns": columns, **night.report()}
    if parts > 1:
        report["partitions"] = [json.loads(_part(folder, k, parts, "json").read_text(encoding="utf-8"))
                                for k in range(parts)]
    return report
