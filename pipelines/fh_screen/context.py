"""What every step of a run receives: settings, paths, the run date and the manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path


from fh_screen.store import db
from fh_screen.config import Settings

log = logging.getLogger("fh_screen")


@dataclass
class RunContext:
    """State shared by the steps of one run.

    Steps write their files under ``work_dir`` (published atomically to ``out_dir`` at the
    end) and their database changes inside one transaction each. ``manifest`` collects
    what each step reports; ``tables`` the received/loaded/quarantined counts.
    """

    settings: Settings
    db_path: Path
    out_dir: Path
    work_dir: Path
    as_of: date
    extract_dir: Path | None = None
    delivery_id: str = ""
    run_id: str = ""
    present_tables: set[str] = field(default_factory=set)
    manifest: dict = field(default_factory=dict)

    def connect(self, read_only: bool = False) -> db.Connection:
        return db.connect(self.db_path, read_only=read_only)

    def feature_off(self, feature: str, why: str) -> None:
        """Record that a feature could not run (e.g. a missing optional table)."""
        self.manifest.setdefault("features_off", {})[feature] = why
