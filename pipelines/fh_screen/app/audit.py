"""Per-run audit record: when, inputs and outputs by hash, rule and model versions, counts.

It holds hashes and counts only, never patient data, so it can be kept longer than the
outputs. Each run appends one JSON line to ``<db>.audit.jsonl`` next to the database and
writes the same record as ``audit.json`` in its output folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from fh_screen.store import files

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 for every file below ``folder``."""
    return {
        str(path.relative_to(folder)): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in skip
    }


def output_digests(work_dir: Path) -> dict[str, object]:
    """Outputs by hash without their names below the top level.

    Letters and other files in sub-folders may be named after a patient, and the audit
    log is kept longer than the outputs, so a sub-folder is recorded as its file count and
    one sha256 over its files' sorted content hashes; top-level files keep their names.
    """
    top: dict[str, object] = {}
    folders: dict[str, list[str]] = {}
    for rel, digest in hash_tree(work_dir, skip=("audit.json",)).items():
        parent = str(Path(rel).parent)
        if parent == ".":
            top[rel] = digest
        else:
            folders.setdefault(parent + "/", []).append(digest)
    for folder, digests in folders.items():
        combined = hashlib.sha256("".join(sorted(digests)).encode("ascii")).hexdigest()
        top[folder] = {"files": len(digests), "sha256": combined}
    return top


def record(manifest: dict, work_dir: Path) -> dict:
    return {
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_id": manifest.get("run_id"),
        "as_of": manifest.get("as_of"),
        "code_version": manifest.get("code_version"),
        "rules": manifest.get("rules", {}),
        "model": manifest.get("model", {}),
        "tables": manifest.get("tables", {}),
        "inputs": manifest.get("input_hashes", {}),   # hashed once, by the stage step
        "outputs": output_digests(work_dir),
    }


def write(entry: dict, work_dir: Path, db_path: Path) -> None:
    files.write_text(work_dir / "audit.json", json.dumps(entry, indent=2, sort_keys=True))
    log_path = db_path.with_name(db_path.name + ".audit.jsonl")
    # Created owner-only from the start (not chmod-ed after), appended, never rewritten.
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, files.FILE_MODE)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    log_path.chmod(files.FILE_MODE)
