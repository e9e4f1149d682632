"""The only place outputs are written: owner-only permissions, atomic replace, safe names.

Worklists and letters identify patients, so every file is 0600 and every folder 0700.
A file is written to a temporary name in its folder and renamed into place, so a reader
never sees half a file; the run publishes its whole output folder the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 80
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}$")


def ensure_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents as 0700.

    Folders that already exist keep their mode: the parent of ``--out`` may be ``/tmp``
    or a home folder, which a run must never lock other users out of.
    """
    missing = []
    folder = Path(path)
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(folder, DIR_MODE)
    return path


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """A file-name component from an id: no separators, no leading dots, bounded length.

    The extension is kept apart from the stem, so ``x.html`` and ``x.pdf`` of one id never
    collide. A stem longer than ``MAX_NAME`` keeps its start and gets a hash of the whole,
    so two long ids that share a start differ; a stem with nothing usable left becomes
    ``fallback`` plus a hash of the original text, so two such ids differ too.
    """
    cleaned = _SAFE.sub("_", str(text))
    match = _SUFFIX.search(cleaned)
    suffix = match.group(0) if match else ""
    stem = cleaned[: len(cleaned) - len(suffix)].strip("._")
    digest = hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:12]
    if not stem:
        stem = f"{fallback}-{digest}" if str(text) else fallback
    elif len(stem) + len(suffix) > MAX_NAME:
        stem = f"{stem[: MAX_NAME - 9 - 13]}-{hashlib.sha256(stem.encode('utf-8')).hexdigest()[:12]}"
    return stem + suffix


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
