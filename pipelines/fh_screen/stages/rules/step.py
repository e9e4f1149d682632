"""The rules step: ``patient_features`` -> ``rule_results`` (the database edge of the rules)."""

from __future__ import annotations

from fh_screen.store import changes, db
from fh_screen.stages.rules import versions
from fh_screen.stages.rules.results import Policy, score


def policy_from(settings) -> Policy:
    return Policy(dlcn_min_points=settings.selection.dlcn_min_points, use_lab_flag=settings.selection.use_lab_flag)


def rules_step(ctx) -> dict:
    """Bring ``rule_results`` to ``ctx.as_of`` (idempotent): everyone on a full pass, else the
    patients whose features were rebuilt since this step last ran (``store.changes``)."""
    con = ctx.connect()
    try:
        plan = changes.plan_follower(con, "rules", ctx.as_of, ctx.settings)
        if plan.full:
            # Lazy, so that DuckDB reads only the columns the rules use (see results.score).
            features = con.sql("SELECT * FROM patient_features").pl(lazy=True)
        else:
            con.register("_rules_scope", plan.recompute)
            features = con.sql("SELECT f.* FROM patient_features f SEMI JOIN _rules_scope s "
                               "ON f.patient_id = s.patient_id").pl(lazy=True)
        results = score(features, policy_from(ctx.settings))
        with db.transaction(con):
            if plan.full:
                db.replace_table(con, "rule_results", results)
            else:
                changes.merge(con, "rule_results", results, plan.recompute, ctx.as_of)
            changes.save_follower(con, "rules", plan, ctx.as_of, ctx.settings)
        summary = con.sql("SELECT dlcn_category, route, lab_flag, excluded_reason FROM rule_results").pl()
    finally:
        con.close()
    ctx.manifest["rules"] = versions()
    counts = lambda col: {k or "none": int(v) for k, v in summary[col].value_counts().iter_rows()}  # noqa: E731
    return {
        "patients": summary.height,
        "dlcn_category": counts("dlcn_category"),
        "route": counts("route"),
        "lab_flag": int(summary["lab_flag"].sum()),
        "excluded": counts("excluded_reason"),
        **plan.report(),
    }
