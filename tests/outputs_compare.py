"""Comparing two runs' databases and published output folders (docs/airflow.md, "Same
outputs as the CLI"): byte for byte, after these normalisations only:

* ``run_manifest.json``: without ``finished_at``, ``store_id`` (each store's random id) and
  the steps' measurements (every key naming ``seconds`` or ``peak_rss``); comparing an incremental night with a full pass, also
  without how each step worked (``mode``, ``full_reason``, ``recomputed``, ``partitions``).
* ``quality/**.html`` (Data Docs): Great Expectations' times and random element ids masked.
* ``audit.json``: without ``recorded_at`` and the hashes of the files and Data Docs folders above.

Every other file is compared byte for byte. Database tables are compared row by row, the
per-patient tables in patient order (an incremental night rewrites only the rows it changed,
so their stored order is not part of their content).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import polars as pl

# Great Expectations writes wall-clock times (``logo.png?d=20261123T200203.279899Z``, the
# validation time) and random element ids (UUID4) into Data Docs pages; two CLI runs differ
# the same way.
GX_VOLATILE = re.compile(rb"\d{8}T\d{6}\.\d+Z|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STEP_MODE_KEYS = ("mode", "full_reason", "recomputed", "partitions")
# One row per patient, rewritten only where a night changed something: their row order is
# not part of their content (readers order them by patient_id).
PER_PATIENT_TABLES = ("patient_features", "rule_results", "model_scores")
COMPARED_TABLES = ("patient_features", "rule_results", "model_scores", "referral_ledger", "referral_events",
                   "cascade_ledger", "cascade_letters")


def _volatile(rel: str) -> bool:
    """Files whose bytes carry run times: compared after normalisation, not by hash.
    In audit.json a sub-folder is one combined hash, so Data Docs folders count too."""
    data_docs = rel.startswith("quality/") and (rel.endswith(".html") or rel.endswith("/"))
    return rel == "run_manifest.json" or data_docs


def _without(value, drop):
    """``value`` without the keys ``drop(key)`` names, at any depth."""
    if isinstance(value, dict):
        return {k: _without(v, drop) for k, v in value.items() if not drop(k)}
    if isinstance(value, list):
        return [_without(v, drop) for v in value]
    return value


def normalised(rel: str, data: bytes, ignore_mode: bool = False):
    """What is compared for one output file (see the module docstring)."""
    if rel == "run_manifest.json":
        manifest = json.loads(data)
        manifest.pop("finished_at", None)
        manifest.pop("store_id", None)
        manifest["steps"] = _without(manifest.get("steps", {}), lambda k: "seconds" in k or "peak_rss" in k
                                     or (ignore_mode and k in STEP_MODE_KEYS))
        return manifest
    if rel.startswith("quality/") and rel.endswith(".html"):
        return GX_VOLATILE.sub(b"<volatile>", data)
    if rel == "audit.json":
        audit = json.loads(data)
        audit.pop("recorded_at", None)
        audit["outputs"] = {name: digest for name, digest in audit.get("outputs", {}).items() if not _volatile(name)}
        return audit
    return data


def tree(folder: Path, ignore_mode: bool = False) -> dict[str, object]:
    return {
        str(path.relative_to(folder)): normalised(str(path.relative_to(folder)), path.read_bytes(), ignore_mode)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def output_differences(left: Path, right: Path, ignore_mode: bool = False) -> list[str]:
    """Relative paths missing on one side or different after normalisation."""
    a, b = tree(left, ignore_mode), tree(right, ignore_mode)
    return sorted(set(a) ^ set(b)) + [rel for rel in sorted(set(a) & set(b)) if a[rel] != b[rel]]


def table(db_path: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(db_path), read_only=True) as con:
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[0]:
            return pl.DataFrame()
        order = " ORDER BY patient_id" if name in PER_PATIENT_TABLES else ""
        return con.execute(f"SELECT * FROM {name}{order}").pl()


def table_differences(left: Path, right: Path, names=COMPARED_TABLES) -> list[str]:
    """Tables whose rows (in order; per-patient tables by patient), columns or types differ."""
    return [name for name in names if not table(left, name).equals(table(right, name))]
