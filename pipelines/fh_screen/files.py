"""The only place outputs are written: owner-only permissions, atomic replace, safe names.

Worklists and letters identify patients, so every file is 0600 and every folder 0700.
A file is written to a temporary name in its folder and renamed into place, so a reader
never sees half a file; the run publishes its whole output folder the same way.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """A file-name component from an id: no separators, no leading dots, bounded length."""
    cleaned = _SAFE.sub("_", str(text)).strip("._")[:80]
    return cleaned or fallback


def child_path(folder: Path, name: str) -> Path:
    """``folder/safe_name(name)``, refusing anything that would resolve outside ``folder``."""
    path = (folder / safe_name(name)).resolve()
    if folder.resolve() not in path.parents:
        raise ValueError("file name leaves its output folder")
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))
