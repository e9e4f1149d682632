"""Helpers of the adversarial suite (``tests/adversarial``)."""

from __future__ import annotations

from pathlib import Path

NIGHT = "2026-11-23"


def run_args(region: dict, **override) -> list[object]:
    """The ``fhscreen run`` arguments for ``region`` (keys overridable: extract, db, out, as_of)."""
    p = {**region, **override}
    return ["run", "--extract", p["extract"], "--db", p["db"], "--out", p["out"],
            "--as-of", p.get("as_of", NIGHT), "--config", p["config"], "--quiet"]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (links not followed) by content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}
