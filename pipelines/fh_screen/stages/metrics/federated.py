"""The federated export and the national merge.

Design (why two files): suppression is not additive. If regions published only suppressed
tables, a national cell of 3 + 4 = 7 people could never be shown, and a national total
could not be checked against the regions. So a region writes:

* ``metrics/aggregates.json``: the federated export. Additive statistics only (counts,
  sums, weekly histogram bins) per (dimension, level, metric), BEFORE small-cell
  suppression, with a versioned schema and no patient-level rows or keys. It leaves the
  region only for the national secure merge (``release: secure-merge-only``) and is never
  given to evaluators as it is.
* ``metrics/pilot_metrics.json``: the evaluator output, suppressed.

``merge`` adds regional aggregates cell by cell (the ``region`` dimension keeps each
region's totals) and the national ``pilot_metrics.json`` is made from the sum with the
same disclosure code. Because every statistic in the export is additive, the merged
aggregates equal the aggregates of one run over all regions, and so does every suppressed
cell pattern that does not involve the region dimension.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

import fh_screen
from fh_screen.errors import UserError
from fh_screen.outputs import metrics_schema as S

RELEASE_NOTE = (
    "Aggregate statistics before small-cell suppression; no patient-level data or keys. "
    "For the national secure merge only: do not publish. Evaluators use pilot_metrics.json."
)
_ROW_SCHEMA = {"dimension": pl.Utf8, "level": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64}


def aggregates_document(table: pl.DataFrame, region: dict) -> dict:
    """The export of one region. ``region`` holds region_id, as_of and the metric settings used."""
    rows = [
        {"dimension": d, "level": lv, "metric": m, "value": _number(m, v)}
        for d, lv, m, v in table.sort("dimension", "level", "metric").iter_rows()
    ]
    return {
        "schema": S.AGGREGATES_SCHEMA,
        "schema_version": S.SCHEMA_VERSION,
        "release": "secure-merge-only",
        "notice": RELEASE_NOTE,
        "code_version": fh_screen.__version__,
        "regions": [region],
        "rows": rows,
    }


def _number(metric: str, value: float) -> float | int:
    return value if S.metric_kind(metric) == "sum" else int(round(value))


def table_of(document: dict) -> pl.DataFrame:
    """The rows of an aggregates document as a polars frame."""
    return pl.DataFrame(document["rows"], schema=_ROW_SCHEMA) if document["rows"] else pl.DataFrame(schema=_ROW_SCHEMA)


def read(path: str | Path) -> dict:
    """Read and check one aggregates file (or the ``metrics/aggregates.json`` of a run folder)."""
    path = Path(path)
    if path.is_dir():
        candidates = [path / "aggregates.json", path / "metrics" / "aggregates.json"]
        path = next((p for p in candidates if p.is_file()), candidates[-1])
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read aggregates file {path.name}: {exc.__class__.__name__}") from exc
    check(document, path.name)
    return document


def _major(version: str) -> str:
    return str(version).split(".")[0]


def check(document: dict, name: str = "aggregates") -> None:
    """Refuse a file that is not an aggregates export of a compatible schema version."""
    if document.get("schema") != S.AGGREGATES_SCHEMA:
        raise UserError(f"{name} is not an fh-screen aggregates export")
    if _major(document.get("schema_version", "")) != _major(S.SCHEMA_VERSION):
        raise UserError(f"{name} has schema version {document.get('schema_version')}, "
                        f"this code reads {_major(S.SCHEMA_VERSION)}.x")
    unknown = {r["metric"] for r in document.get("rows", [])
               if not r["metric"].startswith("hist_") and r["metric"] not in S.METRICS}
    if unknown:
        raise UserError(f"{name} has metrics this code does not know: {', '.join(sorted(unknown)[:3])}")
    bad_dims = {r["dimension"] for r in document.get("rows", [])} - set(S.DIMENSIONS)
    if bad_dims:
        raise UserError(f"{name} has unknown dimensions: {', '.join(sorted(bad_dims))}")


def merge(documents: list[dict]) -> dict:
    """Add regional aggregates into one national document (itself mergeable again)."""
    if not documents:
        raise UserError("nothing to merge")
    for i, document in enumerate(documents):
        check(document, f"input {i + 1}")
    regions = [r for d in documents for r in d["regions"]]
    ids = [r["region_id"] for r in regions]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise UserError(f"region given more than once: {', '.join(duplicated)}")
    table = (
        pl.concat([table_of(d) for d in documents])
        .group_by("dimension", "level", "metric").agg(pl.col("value").sum())
    )
    merged = aggregates_document(table.filter(pl.col("value") != 0), regions[0])
    merged["regions"] = regions
    return merged


def merge_files(paths: list[str | Path]) -> dict:
    return merge([read(p) for p in paths])
