"""The only place outputs are written: owner-only permissions, atomic replace, safe names,
and the one CSV writer.

Worklists and letters identify patients, so every file is 0600 and every folder 0700.
A file is written to a temporary name in its folder and renamed into place, so a reader
never sees half a file; the run publishes its whole output folder the same way.

Every CSV the product writes goes through ``csv_text`` / ``write_csv``: a text cell that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return, after any leading blanks) is written with a leading ``'`` so it is shown
as text (OWASP, "CSV Injection").
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import polars as pl

FILE_MODE = 0o600
DIR_MODE = 0o700
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 80
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}$")
# Device names Windows reserves in any folder and with any extension (CON, CON.html ...):
# an output copied to a Windows share must not name a device.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
# A cell a spreadsheet would evaluate: =, +, -, @ after optional blanks, or a leading tab / CR.
FORMULA_START = r"^(\s*[=+\-@]|[\t\r])"
_FORMULA = re.compile(FORMULA_START)


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
    elif stem.split(".")[0].upper() in _RESERVED:
        stem = f"{stem}-{digest}"
    return stem + suffix


def child_path(folder: Path, name: str) -> Path:
    """``folder/safe_name(name)``, refusing anything that would resolve outside ``folder``."""
    path = (folder / safe_name(name)).resolve()
    if folder.resolve() not in path.parents:
        raise ValueError("file name leaves its output folder")
    return path


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it becomes ``path``, owner-only.

    The temporary file is created in the same folder (so the rename is atomic) and is
    removed if the caller fails, so a crash leaves neither half a file nor a stray
    temporary one.
    """
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_parquet(path: Path, frame: pl.DataFrame) -> Path:
    """Write ``frame`` as Parquet, atomically, so a reader (the gather of a partitioned
    step, in another task) never sees half a file."""
    with atomic_path(path, suffix=".parquet") as tmp:
        frame.write_parquet(tmp)
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA.match(text) else text


def csv_text(header: list[str], rows: Iterable[Iterable]) -> str:
    """CSV text (``\\n`` line ends) of ``rows``, every cell through ``csv_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def write_csv(path: Path, frame: pl.DataFrame, date_format: str | None = None) -> Path:
    """Write a data frame as CSV: text columns neutralised as in ``csv_cell`` (numbers, dates
    and booleans are written as polars writes them)."""
    text = [name for name, dtype in frame.schema.items() if dtype in (pl.String, pl.Categorical, pl.Enum)]
    safe = frame.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(c).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in text
    )
    return write_text(path, safe.write_csv(date_format=date_format))
