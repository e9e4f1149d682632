"""The pipeline step and the writer shared by the step and ``fhscreen metrics merge``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fh_screen.store import files
from fh_screen.context import RunContext, log
from fh_screen.stages.metrics import compute, federated, monitoring, pilot
from fh_screen.stages.score.outcomes import assessed_referrals
from fh_screen.outputs import metrics_report as report


def write_outputs(folder: Path, aggregates: dict, rendering: dict | None = None) -> dict:
    """Write ``aggregates.json``, ``pilot_metrics.json`` and ``report.html`` (all 0600) to ``folder``.
    ``rendering``, when given, receives the wall and CPU seconds of drawing the report's charts
    and page (reported apart from the data work, as the worklists' and letters' rendering is)."""
    document = pilot.pilot_document(aggregates)
    files.write_text(folder / "aggregates.json", json.dumps(aggregates, indent=1, sort_keys=True))
    files.write_text(folder / "pilot_metrics.json", json.dumps(document, indent=1, sort_keys=True))
    started, cpu = time.perf_counter(), time.process_time()
    page = report.build_report(document)
    if rendering is not None:
        rendering.update(render_seconds=round(time.perf_counter() - started, 3),
                         render_cpu_seconds=round(time.process_time() - cpu, 3))
    files.write_text(folder / "report.html", page)
    return document


def region_aggregates(ctx: RunContext) -> dict:
    """This run's federated export, read from the run's DuckDB file."""
    settings = ctx.settings
    con = ctx.connect()
    try:
        table = compute.compute_aggregates(con, ctx.as_of, settings.region.region_id, settings.selection,
                                           settings.metrics)
    finally:
        con.close()
    region = {
        "region_id": settings.region.region_id,
        "as_of": ctx.as_of.isoformat(),
        "expected_prevalence": settings.metrics.expected_prevalence,
        "small_cell_max": settings.metrics.small_cell_max,
        "rounding_base": settings.metrics.rounding_base,
        "unit_costs_dkk": dict(settings.metrics.unit_costs_dkk),
    }
    return federated.aggregates_document(table, region)


def model_monitoring(ctx: RunContext) -> dict | None:
    """Tonight's calibration checks (``monitoring``), written to ``metrics/model_monitoring.json``
    and the run manifest; None when the run has no model scores."""
    con = ctx.connect()
    try:
        if not compute.table_exists(con, "model_scores"):
            return None
        columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = 'model_scores'").fetchall()}
        known = "known_case" if "known_case" in columns else "FALSE AS known_case"  # scores from before 2026-12
        scores = con.sql(f"SELECT patient_id, probability, {known} FROM model_scores ORDER BY patient_id").pl()
        assessed = assessed_referrals(con)
    finally:
        con.close()
    if not scores.height:
        return None
    result = monitoring.monitor(scores, assessed, ctx.settings.metrics.expected_prevalence)
    files.write_text(ctx.work_dir / "metrics" / "model_monitoring.json", json.dumps(result, indent=1, sort_keys=True))
    ctx.manifest["model_monitoring"] = result
    for alert in result["alerts"]:
        log.warning("model calibration alert: %s", alert)
        ctx.manifest.setdefault("alerts", []).append({"kind": "model_calibration", "message": alert})
    return result


def metrics_step(ctx: RunContext) -> dict:
    """Pilot metrics for evaluators under ``metrics/``; reads the database, changes nothing in it."""
    for table in ("rule_results", "referral_events", "model_scores", "cascade_ledger"):
        con = ctx.connect()
        try:
            present = compute.table_exists(con, table)
        finally:
            con.close()
        if not present:
            ctx.feature_off(f"metrics.{table}", f"{table} not built by this run: its metrics count as 0")
    rendering: dict = {}
    document = write_outputs(ctx.work_dir / "metrics", region_aggregates(ctx), rendering)
    funnel = {m: document["headline"][m]["value"] for m in pilot.FUNNEL}
    watched = model_monitoring(ctx)
    return {"funnel": funnel, "model_calibration_alerts": len(watched["alerts"]) if watched else None, "counts_withheld": document["disclosure"]["counts_withheld"],
            "schema_version": document["schema_version"], **rendering}
