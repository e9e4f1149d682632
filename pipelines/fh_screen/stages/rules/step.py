"""The rules step: ``patient_features`` -> ``rule_results`` (the database edge of the rules).

The rules read one patient's features at a time, so they run inside each family partition's
task, right after its features (``build_partition``: the partition's features file in, its
rule rows out, memory set by the partition). The step itself is then the gather: it loads
those files into ``rule_results`` in one transaction. Where tonight's partitions did not
cover what the step must recompute (no partitions, or the rules missed a night), it scores
from the store instead, with the same function.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from fh_screen.context import log, measured
from fh_screen.stages.features import partitions as feature_parts
from fh_screen.store import changes, db, files
from fh_screen.stages.rules import versions
from fh_screen.stages.rules.results import Policy, score

NAME = "rules"


def policy_from(settings) -> Policy:
    return Policy(dlcn_min_points=settings.selection.dlcn_min_points, use_lab_flag=settings.selection.use_lab_flag)


def build_partition(ctx, features_file: Path, out_file: Path) -> dict:
    """Rule results of one partition's features file into ``out_file``; returns its seconds,
    CPU seconds and peak memory. Polars scans the file itself, reading only the columns the
    rules use: handing the same rows over from DuckDB cost about ten times the CPU."""
    with measured() as cost:
        results = score(pl.scan_parquet(features_file), policy_from(ctx.settings))
        files.write_parquet(out_file, results)
        del results
    return cost


def _partitions_cover(ctx, plan: changes.Plan) -> list[str] | None:
    """Tonight's partitions' rule files, if they hold exactly what ``plan`` must recompute:
    everyone after a full features pass, or the same patients on an incremental night."""
    found = feature_parts.companions(ctx, NAME)
    if found is None:
        return None
    full, recompute, paths = found
    if full != plan.full:
        return None
    if not full and set(recompute["patient_id"]) != set(plan.recompute["patient_id"]):
        return None
    return paths


def _from_store(con, plan: changes.Plan, policy: Policy) -> pl.DataFrame:
    if plan.full:
        # Lazy, so that DuckDB reads only the columns the rules use (see results.score).
        return score(con.sql("SELECT * FROM patient_features").pl(lazy=True), policy)
    con.register("_rules_scope", plan.recompute)
    features = con.sql("SELECT f.* FROM patient_features f SEMI JOIN _rules_scope s "
                       "ON f.patient_id = s.patient_id").pl(lazy=True)
    return score(features, policy)


def rules_step(ctx) -> dict:
    """Bring ``rule_results`` to ``ctx.as_of`` (idempotent): everyone on a full pass, else the
    patients whose features were rebuilt since this step last ran (``store.changes``)."""
    con = ctx.connect()
    try:
        plan = changes.plan_follower(con, NAME, ctx.as_of, ctx.settings)
        paths = _partitions_cover(ctx, plan)
        with db.transaction(con):
            if plan.full and paths:
                db.replace_table_from_files(con, "rule_results", paths, "patient_id")
            elif plan.full:
                db.replace_table(con, "rule_results", _from_store(con, plan, policy_from(ctx.settings)))
            else:
                fresh = db.present_rows(con, paths) if paths else _from_store(con, plan, policy_from(ctx.settings))
                changes.merge(con, "rule_results", fresh, plan.recompute, ctx.as_of)
            changes.save_follower(con, NAME, plan, ctx.as_of, ctx.settings)
        summary = con.sql("SELECT dlcn_category, route, lab_flag, excluded_reason FROM rule_results").pl()
    finally:
        con.close()
    ctx.manifest["rules"] = versions()
    log.info("rules: %s", "gathered from the partitions" if paths else "scored from the store")
    counts = lambda col: {k or "none": int(v) for k, v in summary[col].value_counts().iter_rows()}  # noqa: E731
    return {
        "patients": summary.height,
        "dlcn_category": counts("dlcn_category"),
        "route": counts("route"),
        "lab_flag": int(summary["lab_flag"].sum()),
        "excluded": counts("excluded_reason"),
        **plan.report(),
    }
