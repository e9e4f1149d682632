"""Shared pieces of the reliability, security and privacy tests.

Runs use every step of ``run.STEPS``, and the scorer is switched off (no model
artefact is committed; the score step then writes an empty table, still transactionally).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb

from fh_screen.app import run
from fh_screen.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PYTHON = sys.executable
NIGHT1 = date(2026, 11, 23)
NIGHT2 = date(2026, 11, 24)
# Values that legitimately differ between two correct runs, and nothing else.
VOLATILE_COLUMNS = {("deliveries", "loaded_at"), ("delivery_stats", "recorded_at"),
                    ("store_identity", "store_id"), ("store_identity", "erasure_key")}
# Great Expectations Data Docs (under quality/) stamp the validation time into folder names,
# image URLs and the index, and random UUIDs into element ids; these are replaced before comparing.
DATA_DOCS_STAMPS = [
    (re.compile(rb"\d{8}T\d{6}\.\d+Z"), b"<time>"),
    (re.compile(rb"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(Z| UTC)"), b"<time>"),
    (re.compile(rb"'_run_time_sort': [\d.]+"), b"'_run_time_sort': <time>"),
    (re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), b"<uuid>"),
]


def settings(tmp: Path) -> Settings:
    path = tmp / "settings.yaml"
    path.write_text("model:\n  enabled: false\n", encoding="utf-8")
    return load_settings(path)


def run_night(extract: Path, db: Path, out: Path, as_of: date, cfg: Settings, **kw) -> dict:
    return run.run(extract, db, out, as_of, settings=cfg, **kw)


def db_snapshot(db_path: Path) -> dict[str, list[tuple]]:
    """Every table of the store as sorted rows, volatile columns blanked."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
        ).fetchall()]
        snap = {}
        for table in tables:
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema='main' "
                "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            keep = [i for i, c in enumerate(cols) if (table, c) not in VOLATILE_COLUMNS]
            snap[table] = sorted((tuple(r[i] for i in keep) for r in rows), key=repr)
        return snap
    finally:
        con.close()


def out_snapshot(out: Path) -> dict[str, object]:
    """Every file under ``out`` by content. Normalised: step measurements (keys containing
    ``seconds`` or ``peak_rss``) and finished_at in run_manifest.json; validation-time stamps in Data Docs
    under quality/; recorded_at and the hashes of those normalised files in audit.json.
    Everything else must match byte for byte."""
    snap: dict[str, object] = {}
    stamped: set[str] = {run.MANIFEST}
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        rel = str(path.relative_to(out))
        if rel == run.MANIFEST:
            data = json.loads(path.read_text(encoding="utf-8"))
            data.pop("finished_at", None)
            data.pop("store_id", None)   # each store's own random id
            for report in data.get("steps", {}).values():
                for key in [k for k in report if "seconds" in k or "peak_rss" in k]:
                    del report[key]
            snap[rel] = data
        elif rel == "audit.json":
            continue
        elif rel.startswith("quality/"):
            content = path.read_bytes()
            for pattern, replacement in DATA_DOCS_STAMPS:
                content = pattern.sub(replacement, content)
            key = DATA_DOCS_STAMPS[0][0].sub(b"<time>", rel.encode()).decode()
            snap[key] = content
            if key != rel or content != path.read_bytes():
                stamped.add(rel)
        else:
            snap[rel] = path.read_bytes()
    if (out / "audit.json").is_file():
        data = json.loads((out / "audit.json").read_text(encoding="utf-8"))
        data.pop("recorded_at", None)
        for key in [k for k in data.get("outputs", {}) if k in stamped or k.startswith("quality/")]:
            del data["outputs"][key]
        snap["audit.json"] = data
    return snap


def copy_state(src_db: Path, src_out: Path, dst: Path) -> tuple[Path, Path]:
    dst.mkdir(parents=True, exist_ok=True)
    db, out = dst / src_db.name, dst / src_out.name
    shutil.copy2(src_db, db)
    shutil.copytree(src_out, out)
    return db, out


def cli(args: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
    """``fhscreen`` in a new process, using this checkout's package."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "pipelines"), **(env or {})}
    return subprocess.Popen([PYTHON, "-m", "fh_screen.app.cli", *args], env=full_env, **kw)
