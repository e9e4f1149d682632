"""What every step of a run receives: settings, paths, the run date and the manifest."""

from __future__ import annotations

import logging
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterator

from fh_screen.store import db
from fh_screen.config import Settings

log = logging.getLogger("fh_screen")

# Inside the run's work folder: the files a partitioned step's tasks hand to each other
# (plan, one file per partition). Removed before the outputs are published.
PARTS_DIR = ".partitions"
# Inside the run's work folder: where DuckDB spills beyond ``settings.store.memory_limit``.
# Removed before the outputs are published (and with the work folder when a run fails).
SPILL_DIR = ".duckdb-spill"


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
        # Spill only into the run's work folder once it exists: a task that merely reads the
        # store (e.g. listing a night's partitions) must not create one as a side effect.
        spill = self.work_dir / SPILL_DIR if self.work_dir.is_dir() else None
        return db.connect(self.db_path, read_only=read_only, limits=self.settings.store, temp_dir=spill)

    def parts_dir(self, step: str) -> Path:
        """Where ``step``'s plan and partition files go (a shared folder for every worker)."""
        return self.work_dir / PARTS_DIR / step

    def feature_off(self, feature: str, why: str) -> None:
        """Record that a feature could not run (e.g. a missing optional table)."""
        self.manifest.setdefault("features_off", {})[feature] = why


def _reset_peak_memory() -> None:
    """Start a new high-water mark of this process's resident memory, so that each step
    reports its own peak (Linux: writing 5 to /proc/self/clear_refs). Elsewhere nothing
    changes and the figure is the process's peak so far."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_memory_mib() -> int:
    """Peak resident memory since the last reset (VmHWM), or of the whole process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


_open_peaks: list[list[int]] = []   # per enclosing ``measured`` block: the peaks its inner blocks saw


@contextmanager
def measured() -> Iterator[dict]:
    """Wall and CPU seconds and peak resident memory of the block, filled in when it ends:
    ``seconds``, ``cpu_seconds``, ``peak_rss_mib`` (a step, or one partition of a step).
    Blocks nest: an inner block restarts the high-water mark, so it hands its peak to the
    blocks around it, whose figure stays the peak of their whole extent."""
    cost: dict = {}
    inner: list[int] = []
    _before = _peak_memory_mib()
    for enclosing in _open_peaks:
        enclosing.append(_before)
    _reset_peak_memory()
    _open_peaks.append(inner)
    started, cpu = time.perf_counter(), time.process_time()
    try:
        yield cost
    finally:
        _open_peaks.pop()
    cost["seconds"] = round(time.perf_counter() - started, 3)
    cost["cpu_seconds"] = round(time.process_time() - cpu, 3)
    cost["peak_rss_mib"] = max([_peak_memory_mib(), *inner])
    for enclosing in _open_peaks:
        enclosing.append(cost["peak_rss_mib"])
