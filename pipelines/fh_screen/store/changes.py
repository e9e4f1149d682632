"""Incremental nights: which patients the per-patient steps recompute tonight (the store side).

A night recomputes ``patient_features`` and ``rule_results`` only for the patients whose
result can differ from yesterday's; everyone else keeps yesterday's row (with the run date
and the other ``DAILY_COLUMNS`` refreshed). Which patients, decided generically, without
knowing any rule:

1. **changed inputs** - the patients named by a row that the load step wrote or replaced
   (both ends of a relation; the row it replaced too: a corrected result may name another
   patient) or that an erasure removed (the erased person's relatives: the erased id itself
   is not kept). ``note_loaded`` and ``note_erased`` record them in ``incr_changes``; the
   features step takes the notes made up to its plan (``Plan.mark``). New, corrected and
   cancelled results, dispensings, diagnoses, outcomes, family history, relations and
   changed patients' rows all show, and a night costs what arrived, not the region.
2. **date boundaries** - results that depend on the run date and crossed a boundary since
   the last night (``sql/incr_boundaries.sql``: records whose date is reached, birthdays,
   death/move-out dates, treatment coverage ending, the clinic's "recent outcome" window
   ending).
3. **family** - a relative's change alters family evidence: everyone within
   ``FAMILY_LINKS`` relations rows of 1 and 2 (anyone who can count them as a first- or
   second-degree relative) is recomputed, from inputs read for everyone within
   ``FAMILY_LINKS`` rows of those (so each recomputed patient sees all of their relatives).

A full pass recomputes everyone: on the first night, every ``incremental.full_pass_days``
(settings, weekly by default), when code, reference data or settings changed (their digest
differs), when a night is run for an earlier date than the last, and always when
``incremental.enabled`` is false.

Later per-patient steps (rules) *follow* the features step: they recompute every patient
the features step recomputed since their own last completed night (``incr_recompute``
rows are kept until all followers have caught up), so a failed or skipped step never loses
a change. Everything is written in the step's own transaction.

Equality with a full pass is what ``tests/property/test_incremental_nights.py`` checks on
chains of random deliveries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

import fh_screen
from fh_screen.store import db

FEATURES = "features"
INPUT_TABLES = ("patients", "lab_results", "medications", "diagnoses", "relations", "family_history",
                "clinic_outcomes")
SCOPE_TABLE = "_incr_scope"          # patients whose relations are read (recomputed + their relatives)
RECOMPUTE_TABLE = "_incr_recompute"  # patients whose rows are recomputed (and whose inputs are read)
CHANGED_TABLE = "_incr_changed"      # patients whose own inputs or date-dependent results changed
LINKED_TABLE = "_incr_linked"        # patients whose family graph changed (relations, erasures)
UNCHANGED_TABLE = "_incr_unchanged"  # recomputed patients whose own features are yesterday's
_PACKAGE_SUFFIXES = (".py", ".sql", ".yaml", ".csv", ".json")
# The most ``relations`` rows between a patient and a relative whose data counts for them
# (``stages.features.family``): an aunt is parent -> grandparent -> child, a niece sibling
# (through a shared parent: two rows) -> child. Whether a sibling is a half-sibling depends
# on both siblings' parent rows, which lie within the same distance.
FAMILY_LINKS = 3


@dataclass(frozen=True)
class Plan:
    """What one step does tonight: everyone (``full``, with the reason) or ``recompute``."""

    full: bool
    reason: str
    recompute: pl.DataFrame          # patient_id of the rows to recompute (empty when full)
    seq: int                         # the features night this plan belongs to
    base: dict | None = None         # the step's state of the night before (None: none yet)
    mark: int = 0                    # the last ``incr_changes`` note this plan took

    def report(self) -> dict:
        return {"mode": "full" if self.full else "incremental", "full_reason": self.reason,
                "recomputed": None if self.full else self.recompute.height}


@lru_cache(maxsize=1)
def _package_digest() -> str:
    """sha256 over the package's code and reference data (any change forces a full pass)."""
    root = Path(fh_screen.__file__).parent
    digest = hashlib.sha256(fh_screen.__version__.encode())
    for path in sorted(p for p in root.rglob("*") if p.suffix in _PACKAGE_SUFFIXES and p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def logic_digest(settings) -> str:
    """Digest of what decides the per-patient results besides the data: code, reference, settings."""
    return hashlib.sha256((_package_digest() + settings.model_dump_json()).encode()).hexdigest()


def _person_columns(table: str) -> tuple[str, ...]:
    """The columns of an input table's row that name a patient whose features read it."""
    return ("patient_id", "relative_id") if table == "relations" else ("patient_id",)


def _noting(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether changes are noted: only once a features night has run (before it, the first
    night is a full pass that reads everyone anyway, e.g. after the historical load)."""
    return con.execute("SELECT count(*) FROM incr_steps WHERE step = ?", [FEATURES]).fetchone()[0] > 0


def _note(con: duckdb.DuckDBPyConnection, query: str, links: bool, params: list | None = None) -> None:
    """Note the distinct ``patient_id`` values of ``query`` as changed (not yet planned);
    ``links``: their family graph changed (a relation, an erasure), not their own inputs."""
    # The mark is computed from the table, not drawn from a sequence: a sequence advances
    # even when the load's transaction rolls back, and a rerun after a crash must leave the
    # same store as a run that never crashed.
    con.execute(f"INSERT INTO incr_changes SELECT patient_id, "
                f"(SELECT coalesce(max(noted), 0) + 1 FROM incr_changes), NULL, {bool(links)} "
                f"FROM (SELECT DISTINCT patient_id FROM ({query}) WHERE patient_id IS NOT NULL)", params or [])


def delete_returning_people(table: str) -> str:
    """``RETURNING`` clause for the load's ``DELETE`` of replaced rows from ``table``: the
    people they name, for ``note_loaded`` (empty for a table the features step does not read)."""
    return "RETURNING " + ", ".join(f"{table}.{c}" for c in _person_columns(table)) if table in INPUT_TABLES else ""


def note_loaded(con: duckdb.DuckDBPyConnection, table: str, staged: str, replaced: pl.DataFrame | None) -> None:
    """Inside the load step's transaction: note the patients named by the rows of ``staged``
    (the staging table merged into ``table``) and of ``replaced`` (the rows the merge deleted,
    ``delete_returning_people``; None when it deleted none). Tables the features step does
    not read change nobody's features."""
    if table not in INPUT_TABLES or not _noting(con):
        return
    if not staged.isidentifier():
        raise ValueError(f"bad table name {staged!r}")
    sources = [staged] if replaced is None else [staged, "_incr_replaced"]
    if replaced is not None:
        con.register("_incr_replaced", replaced)
    try:
        _note(con, " UNION ALL ".join(f"SELECT {c} AS patient_id FROM {source}"
                                      for c in _person_columns(table) for source in sources), table == "relations")
    finally:
        if replaced is not None:
            con.unregister("_incr_replaced")


def note_erased(con: duckdb.DuckDBPyConnection, patient_id: str) -> None:
    """Inside an erasure's transaction, before the rows go: note the erased person's relatives
    (their family evidence changes). The erased id is not noted; its own rows are removed by
    the erasure itself, the per-patient results included."""
    _note(con, "SELECT relative_id AS patient_id FROM relations WHERE patient_id = $1 AND relative_id <> $1 "
               "UNION ALL SELECT patient_id FROM relations WHERE relative_id = $1 AND patient_id <> $1", True, [patient_id])


def _base(con: duckdb.DuckDBPyConnection, step: str, rerun_of) -> tuple[dict | None, dict | None]:
    """(latest, base) states of ``step``: base is the night before the current one. A night
    run again (its latest state is that night's, as ``rerun_of`` tells) is planned from the
    state before it, exactly as its first attempt was, so a rerun reports the same."""
    keys = ("seq", "as_of", "full_seq", "full_as_of", "logic")
    rows = [dict(zip(keys, row)) for row in con.execute(
        f"SELECT {', '.join(keys)} FROM incr_steps WHERE step = ? ORDER BY seq DESC LIMIT 2", [step]).fetchall()]
    latest = rows[0] if rows else None
    if latest and rerun_of(latest):
        return latest, rows[1] if len(rows) > 1 else None
    return latest, latest


def _save_state(con: duckdb.DuckDBPyConnection, step: str, plan: Plan, as_of: date, settings) -> None:
    """Record ``step``'s night ``plan.seq``; keep only it and the night before (for a rerun)."""
    base = plan.base
    full_seq, full_as_of = (plan.seq, as_of) if plan.full or base is None else (base["full_seq"], base["full_as_of"])
    con.execute("DELETE FROM incr_steps WHERE step = ? AND (seq >= ? OR seq < ?)",
                [step, plan.seq, base["seq"] if base else plan.seq])
    con.execute("INSERT INTO incr_steps VALUES (?, ?, ?, ?, ?, ?)",
                [step, plan.seq, as_of, full_seq, full_as_of, logic_digest(settings)])


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={"patient_id": pl.Utf8})


def _edges(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE _incr_edges AS "
                "SELECT patient_id AS a, relative_id AS b FROM relations "
                "UNION SELECT relative_id, patient_id FROM relations")


def family_partitions(con: duckdb.DuckDBPyConnection, people_per_partition: int) -> int:
    """Split everyone into about ``people / people_per_partition`` partitions with whole
    families together: temp table ``_incr_family(patient_id, family, part)``; returns the number
    of partitions (1: no split). A family is a connected group of the relations graph (people
    named only in ``relations`` link families too), named by its smallest id; its partition is a
    stable hash of that id. The groups are found by one pass of SciPy's connected components
    over integer ids: propagating the smallest id along relations in SQL needs one join per
    link of the longest family chain (24.6 CPU s at 1M people; this pass 5.2, the same groups)."""
    people = con.execute("SELECT count(*) FROM patients").fetchone()[0]
    parts = -(-people // people_per_partition)
    if parts <= 1:
        return 1
    _edges(con)
    con.execute("CREATE OR REPLACE TEMP TABLE _incr_nodes AS SELECT patient_id, "
                "(row_number() OVER (ORDER BY patient_id) - 1)::INTEGER AS node FROM "
                "(SELECT patient_id FROM patients UNION SELECT a FROM _incr_edges)")
    nodes = con.execute("SELECT count(*) FROM _incr_nodes").fetchone()[0]
    ends = con.execute("SELECT na.node AS a, nb.node AS b FROM _incr_edges e "
                       "JOIN _incr_nodes na ON na.patient_id = e.a JOIN _incr_nodes nb ON nb.patient_id = e.b"
                       ).fetchnumpy()
    graph = coo_matrix((np.ones(len(ends["a"]), dtype=np.int8), (ends["a"], ends["b"])), shape=(nodes, nodes))
    _, group = connected_components(graph, directed=False)
    con.register("_incr_groups", pl.DataFrame({"node": np.arange(nodes, dtype=np.int32), "grp": group}))
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _incr_family AS "
                    "SELECT patient_id, family, hash(family) % $parts AS part FROM ("
                    "SELECT n.patient_id, min(n.patient_id) OVER (PARTITION BY g.grp) AS family "
                    "FROM _incr_nodes n JOIN _incr_groups g USING (node))", {"parts": int(parts)})
    finally:
        con.unregister("_incr_groups")
    return parts


def partition_of_everyone(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """``patient_id, part`` of ``family_partitions`` (saved for the partitions' own tasks)."""
    return con.execute("SELECT patient_id, part::INTEGER AS part FROM _incr_family ORDER BY patient_id").pl()


def scope_in_one_partition(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """``patient_id, part`` (0) of ``SCOPE_TABLE`` as ``plan_features`` left it: an incremental
    night's patients read in one partition."""
    return con.execute(f"SELECT patient_id, 0 AS part FROM {SCOPE_TABLE} ORDER BY patient_id").pl()


def select_partition(con: duckdb.DuckDBPyConnection, assignment: str, part: int) -> None:
    """Make partition ``part`` of the saved ``assignment`` (Parquet of ``patient_id, part``)
    the scope ``load_inputs`` reads (a temporary table: works on a read-only store)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {SCOPE_TABLE} AS "
                "SELECT patient_id FROM read_parquet(?) WHERE part = ?", [assignment, part])


def select_recompute(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Make the saved recompute set (Parquet of ``patient_id``) ``RECOMPUTE_TABLE``."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {RECOMPUTE_TABLE} AS SELECT patient_id FROM read_parquet(?)", [path])


def select_unchanged(con: duckdb.DuckDBPyConnection, built: pl.DataFrame) -> str:
    """Make ``UNCHANGED_TABLE`` the recomputed patients (``RECOMPUTE_TABLE``) in ``patients``
    whose own features were not built tonight (not in ``built``, a frame with ``patient_id``):
    recomputed for their relatives' sake, with their own features stored (every patient has
    a row from the night they arrive: a new patient's row is a change). Returns its name."""
    con.register("_incr_built", built.select("patient_id"))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {UNCHANGED_TABLE} AS SELECT patient_id FROM {RECOMPUTE_TABLE} "
                    "WHERE patient_id IN (SELECT patient_id FROM patients) "
                    "AND patient_id NOT IN (SELECT patient_id FROM _incr_built)")
    finally:
        con.unregister("_incr_built")
    return UNCHANGED_TABLE


def stored_features(con: duckdb.DuckDBPyConnection, columns: tuple[str, ...], among: str) -> pl.DataFrame:
    """``columns`` of the stored ``patient_features`` rows of the patients in the temp table
    ``among`` (code names both)."""
    if not among.isidentifier() or not all(c.isidentifier() for c in columns):
        raise ValueError(f"bad table or column name in {among!r}, {columns!r}")
    return con.execute(f"SELECT {', '.join(columns)} FROM patient_features "
                       f"WHERE patient_id IN (SELECT patient_id FROM {among}) ORDER BY patient_id").pl()


def plan_record(plan: Plan) -> dict:
    """The JSON-safe part of ``plan`` (its recompute set is saved beside it as Parquet)."""
    base = None if plan.base is None else {
        k: v.isoformat() if isinstance(v, date) else v for k, v in plan.base.items()}
    return {"full": plan.full, "reason": plan.reason, "seq": plan.seq, "base": base, "mark": plan.mark}


def plan_from_record(record: dict, recompute: pl.DataFrame) -> Plan:
    """The ``Plan`` that ``plan_record`` saved, with its recompute set read back."""
    base = record["base"]
    if base is not None:
        base = {**base, **{k: date.fromisoformat(base[k]) for k in ("as_of", "full_as_of") if base.get(k)}}
    return Plan(record["full"], record["reason"], recompute, record["seq"], base, record["mark"])


def _reach(con: duckdb.DuckDBPyConnection, source: str, target: str) -> None:
    """``target`` = ``source`` and everyone within ``FAMILY_LINKS`` relations rows of it (each
    link adds both ends of every relations row that names someone found so far: one scan of
    ``relations`` a link; two, one per end, took 0.75 instead of 0.53 CPU s for three links
    from 31,000 patients at 1M people)."""
    current = source
    for step in range(FAMILY_LINKS):
        following = target if step == FAMILY_LINKS - 1 else f"_incr_reach{step}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {following} AS SELECT patient_id FROM {current} "
            "UNION SELECT unnest([patient_id, relative_id]) FROM relations "
            f"WHERE patient_id IN (SELECT patient_id FROM {current}) OR relative_id IN (SELECT patient_id FROM {current})"
        )
        current = following


def plan_features(con: duckdb.DuckDBPyConnection, as_of: date, settings, day_counts: dict[str, list[int]]) -> Plan:
    """Decide tonight's features work, in two parts. Nothing is written: ``save_features``
    does that in the step's transaction.

    An incremental night's plan names the patients whose *own* inputs or date-dependent
    results changed (``recompute``; temp table ``CHANGED_TABLE``), and leaves those whose
    family graph changed (a relation or an erasure) in ``LINKED_TABLE``. Whether their
    relatives must be recomputed too depends on whether what the changed patients' features
    say about them as a relative changed: the features step finds out
    (``stages.features.partitions``) and calls ``widen`` with those patients.

    ``day_counts``: ``medication_days`` and ``outcome_days``, the day counts after a dispensing
    or a clinic outcome on which a result may change (``sql/incr_boundaries.sql``; the features
    step derives them from the current rules)."""
    latest, base = _base(con, FEATURES, lambda state: state["as_of"] == as_of)
    seq = latest["seq"] if latest and latest["as_of"] == as_of else (latest["seq"] + 1 if latest else 1)
    mark = con.execute("SELECT coalesce(max(noted), 0) FROM incr_changes").fetchone()[0]
    reason = _full_reason(base, as_of, logic_digest(settings), settings)
    if reason:
        return Plan(True, reason, _empty(), seq, base, mark)
    # The notes not yet planned, and those a first attempt of this same night planned (a rerun).
    notes = "SELECT patient_id FROM incr_changes WHERE ((seq IS NULL AND noted <= $mark) OR seq >= $seq) AND "
    con.execute(f"CREATE OR REPLACE TEMP TABLE {CHANGED_TABLE} AS {notes} NOT links "
                f"UNION SELECT patient_id FROM ({db.sql('incr_boundaries')})",
                {"as_of": as_of, "since": base["as_of"], "mark": mark, "seq": seq, **day_counts})
    con.execute(f"CREATE OR REPLACE TEMP TABLE {LINKED_TABLE} AS {notes} links", {"mark": mark, "seq": seq})
    changed = con.execute(f"SELECT patient_id FROM {CHANGED_TABLE} ORDER BY 1").pl()
    return Plan(False, "", changed, seq, base, mark)


def widen(con: duckdb.DuckDBPyConnection, plan: Plan, evidence_changed: pl.DataFrame) -> Plan:
    """The incremental ``plan`` with everyone whose family evidence changed: the changed
    patients (``CHANGED_TABLE``), and everyone within ``FAMILY_LINKS`` relations rows of a
    patient whose evidence as a relative changed (``evidence_changed``) or whose family graph
    changed (``LINKED_TABLE``): anyone who can count them as a first- or second-degree
    relative. Leaves ``RECOMPUTE_TABLE`` and ``SCOPE_TABLE`` (the recomputed and their
    relatives, whose relations rows the features read) on ``con``."""
    con.register("_incr_evidence", evidence_changed)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _incr_relative AS SELECT patient_id FROM _incr_evidence "
                    f"UNION SELECT patient_id FROM {LINKED_TABLE}")
    finally:
        con.unregister("_incr_evidence")
    _reach(con, "_incr_relative", "_incr_family_changed")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {RECOMPUTE_TABLE} AS SELECT patient_id FROM {CHANGED_TABLE} "
                "UNION SELECT patient_id FROM _incr_family_changed")
    _reach(con, RECOMPUTE_TABLE, SCOPE_TABLE)
    recompute = con.execute(f"SELECT patient_id FROM {RECOMPUTE_TABLE} ORDER BY 1").pl()
    return Plan(False, "", recompute, plan.seq, plan.base, plan.mark)


def _full_reason(state: dict | None, as_of: date, logic: str, settings) -> str:
    """Why tonight recomputes everyone ("" when it need not); ``state`` is the night before."""
    if not settings.incremental.enabled:
        return "incremental nights switched off (incremental.enabled)"
    if state is None:
        return "first night"
    if state["logic"] != logic:
        return "code, reference data or settings changed"
    if as_of < state["as_of"]:
        return "run date before the last night's"
    last_full = state.get("full_as_of")
    if last_full is not None and (as_of - last_full).days >= settings.incremental.full_pass_days:
        return f"scheduled full pass (every {settings.incremental.full_pass_days} days)"
    return ""


def _keep_first_notes(con: duckdb.DuckDBPyConnection, seq: int) -> None:
    """One note per patient and kind for night ``seq``, the first: a night run again after a
    crash loads its delivery again and notes the same patients again, and must leave the
    store as a night that never crashed would."""
    con.execute("CREATE OR REPLACE TEMP TABLE _first_notes AS SELECT patient_id, min(noted) AS noted, seq, links "
                "FROM incr_changes WHERE seq = ? GROUP BY patient_id, seq, links", [seq])
    con.execute("DELETE FROM incr_changes WHERE seq = ?", [seq])
    con.execute("INSERT INTO incr_changes SELECT patient_id, noted, seq, links FROM _first_notes")
    con.execute("DROP TABLE _first_notes")


def save_features(con: duckdb.DuckDBPyConnection, plan: Plan, as_of: date, settings,
                  evidence: pl.DataFrame | None = None) -> None:
    """Inside the features step's transaction: the notes the plan took, tonight's recompute
    set and state (the night before's state is kept beside them until the next night, and
    an incremental night's notes until then too, for a rerun; a full pass's rerun is a full
    pass again and needs none).

    ``evidence``: the patients whose evidence as a relative changed tonight. They are kept as
    family notes of this night: a rerun compares with features this night already stored, finds
    no change, and without these notes would recompute fewer relatives than the first attempt."""
    if plan.full:
        con.execute("DELETE FROM incr_changes WHERE seq IS NOT NULL OR noted <= ?", [plan.mark])
    else:
        con.execute("UPDATE incr_changes SET seq = ? WHERE seq IS NULL AND noted <= ?", [plan.seq, plan.mark])
        con.execute("DELETE FROM incr_changes WHERE seq < ?", [plan.seq])
        if evidence is not None:   # mark 0: kept by the plan, not noted by a load
            con.register("_plan_evidence", evidence)
            try:
                con.execute("INSERT INTO incr_changes SELECT patient_id, 0, ?, TRUE FROM _plan_evidence", [plan.seq])
            finally:
                con.unregister("_plan_evidence")
        _keep_first_notes(con, plan.seq)
    # Rows every follower has caught up with are dropped; a follower's own last night stays
    # (a rerun of it recomputes the same patients).
    con.execute("DELETE FROM incr_recompute WHERE seq >= ? "
                "OR seq < (SELECT min(seq) FROM incr_steps WHERE step <> ?)", [plan.seq, FEATURES])
    if not plan.full:
        con.register("_plan_recompute", plan.recompute)
        try:
            con.execute("INSERT INTO incr_recompute SELECT patient_id, ? FROM _plan_recompute", [plan.seq])
        finally:
            con.unregister("_plan_recompute")
    _save_state(con, FEATURES, plan, as_of, settings)


def plan_follower(con: duckdb.DuckDBPyConnection, step: str, as_of: date, settings) -> Plan:
    """The plan of a step that follows the features step (e.g. rules): everyone the features
    step recomputed since this step's last completed night, or everyone."""
    features, _ = _base(con, FEATURES, lambda state: False)
    seq = features["seq"] if features else 0
    _, base = _base(con, step, lambda state: state["seq"] == seq)
    if not settings.incremental.enabled:
        reason = "incremental nights switched off (incremental.enabled)"
    elif features is None or features["as_of"] != as_of:
        reason = "the features of this night were not built incrementally"
    elif base is None:
        reason = "first night"
    elif base["logic"] != logic_digest(settings):
        reason = "code, reference data or settings changed"
    elif features["full_seq"] > base["seq"]:
        reason = "the features step made a full pass"
    else:
        recompute = con.execute("SELECT DISTINCT patient_id FROM incr_recompute WHERE seq > ? ORDER BY 1",
                                [base["seq"]]).pl()
        return Plan(False, "", recompute, seq, base)
    return Plan(True, reason, _empty(), seq, base)


def save_follower(con: duckdb.DuckDBPyConnection, step: str, plan: Plan, as_of: date, settings) -> None:
    """Inside the follower's transaction: it has caught up with features night ``plan.seq``."""
    _save_state(con, step, plan, as_of, settings)


def merge(con: duckdb.DuckDBPyConnection, table: str, fresh: pl.DataFrame, recompute: pl.DataFrame,
          as_of: date, overlay: pl.DataFrame | None = None) -> None:
    """Replace ``table``'s rows of the ``recompute`` patients by ``fresh``; keep the others with
    ``as_of`` and the ``overlay`` columns (patient_id + daily values) refreshed.

    Only what changed is written: the recomputed patients' rows are deleted and inserted, and
    the daily columns of the others updated in place, so a night's cost follows what arrived
    rather than the region (rewriting every column of every row was most of an incremental
    night's features and rules steps). The table's row order is therefore not the patients'
    order: readers that need an order ask for it (``ORDER BY patient_id``). Column types stay
    the table's (the insert casts by name)."""
    if not table.isidentifier():
        raise ValueError(f"bad table name {table!r}")
    columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
    daily = [c for c in (overlay.columns if overlay is not None else ()) if c != "patient_id"]
    assign = (["as_of = CAST($as_of AS DATE)"] if "as_of" in columns else []) + \
        [f"{c} = (SELECT o.{c} FROM _incr_overlay o WHERE o.patient_id = t.patient_id)" for c in daily]
    con.register("_incr_fresh", fresh)
    con.register("_incr_done", recompute)
    registered = ["_incr_fresh", "_incr_done"]
    if overlay is not None:
        con.register("_incr_overlay", overlay)
        registered.append("_incr_overlay")
    try:
        con.execute(f"DELETE FROM {table} WHERE patient_id IN (SELECT patient_id FROM _incr_done)")
        if assign:
            con.execute(f"UPDATE {table} t SET {', '.join(assign)}", {"as_of": as_of} if "as_of" in columns else {})
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incr_fresh")
    finally:
        for name in registered:
            con.unregister(name)
