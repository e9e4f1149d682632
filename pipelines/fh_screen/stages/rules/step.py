"""The rules step: ``patient_features`` -> ``rule_results`` (the database edge of the rules)."""

from __future__ import annotations

from fh_screen.store import db
from fh_screen.stages.rules import versions
from fh_screen.stages.rules.results import Policy, score


def policy_from(settings) -> Policy:
    return Policy(dlcn_min_points=settings.selection.dlcn_min_points, use_lab_flag=settings.selection.use_lab_flag)


def rules_step(ctx) -> dict:
    """Score every patient as of ``ctx.as_of``; replaces ``rule_results`` (idempotent)."""
    con = ctx.connect()
    try:
        # Lazy, so that DuckDB reads only the columns the rules use (see results.score).
        features = con.sql("SELECT * FROM patient_features").pl(lazy=True)
        results = score(features, policy_from(ctx.settings))
        with db.transaction(con):
            db.replace_table(con, "rule_results", results)
    finally:
        con.close()
    ctx.manifest["rules"] = versions()
    counts = lambda col: {k or "none": int(v) for k, v in results[col].value_counts().iter_rows()}  # noqa: E731
    return {
        "patients": results.height,
        "dlcn_category": counts("dlcn_category"),
        "route": counts("route"),
        "lab_flag": int(results["lab_flag"].sum()),
        "excluded": counts("excluded_reason"),
    }
