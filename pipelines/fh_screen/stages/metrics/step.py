"""The pipeline step and the writer shared by the step and ``fhscreen metrics merge``."""

from __future__ import annotations

import json
from pathlib import Path

from fh_screen.store import files
from fh_screen.context import RunContext
from fh_screen.stages.metrics import compute, federated, pilot
from fh_screen.outputs import metrics_report as report


def write_outputs(folder: Path, aggregates: dict) -> dict:
    """Write ``aggregates.json``, ``pilot_metrics.json`` and ``report.html`` (all 0600) to ``folder``."""
    document = pilot.pilot_document(aggregates)
    files.write_text(folder / "aggregates.json", json.dumps(aggregates, indent=1, sort_keys=True))
    files.write_text(folder / "pilot_metrics.json", json.dumps(document, indent=1, sort_keys=True))
    files.write_text(folder / "report.html", report.build_report(document))
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
    document = write_outputs(ctx.work_dir / "metrics", region_aggregates(ctx))
    funnel = {m: document["headline"][m]["value"] for m in pilot.FUNNEL}
    return {"funnel": funnel, "counts_withheld": document["disclosure"]["counts_withheld"],
            "schema_version": document["schema_version"]}
