"""Where a run may write and what it may replace: the output folder, the work folder, locks.

A run builds its outputs in a hidden work folder next to ``--out`` and publishes them by
rename. Everything here exists because an output folder is replaced as a whole, and a
wrong or hostile path would otherwise make that replacement delete or leak data:

* ``--out`` may not be, contain or sit inside the delivery folder, and may not hold the
  store; a folder that already exists is replaced only if it is empty or carries the
  product's marker (``run_manifest.json`` saying ``"product": "fh-screen"``) written for
  the same store. Anything else is refused with one line before a single step runs.
* The work folder is created by an exclusive ``mkdir`` (it cannot already exist) and is
  then checked with ``lstat``: a real folder owned by this account, never a symbolic link.
  A leftover of a killed run is removed only after the same check; a planted link or a
  folder of another account is refused, never followed or deleted.
* The previous output is moved aside into a fresh ``mkdtemp`` folder (unpredictable name,
  so nothing can be planted there) and removed after the swap.
* A run holds two file locks, both opened without following links and created 0600: the
  store's (``<db>.lock``, on the resolved path, so a symlinked ``--db`` meets the same
  lock) and the output folder's (``.<out>.lock``), so two stores cannot write one output
  folder at the same time.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from fh_screen.errors import UserError
from fh_screen.store import db, files

PRODUCT = "fh-screen"
MANIFEST = "run_manifest.json"
MAX_MANIFEST_BYTES = 64 << 20   # a marker larger than any real manifest is not one
LOCKED_MESSAGE = "another fh-screen run is using this database; try again when it has finished"


class RunLocked(RuntimeError):
    """Another run holds this database or output folder."""


def store_id(db_path: Path) -> str:
    """The store's random id (``store_identity``, made with the store; a copied or moved store
    keeps it). Recorded in the manifest so that a second region pointed at the same ``--out``
    is refused instead of replacing the first region's outputs. It names no one."""
    con = db.connect(db_path)
    try:
        return db.store_identity(con)[0]
    finally:
        con.close()


def work_dir_for(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.partial"


def _old_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.old-"


# --- locks -------------------------------------------------------------------------------


def lock_for(db_path: Path, timeout: float = 0) -> FileLock:
    """The store's lock: ``<resolved db>.lock``, created 0600, opened without following links."""
    return _lock(Path(str(Path(db_path).resolve()) + ".lock"), timeout)


def _lock(path: Path, timeout: float) -> FileLock:
    _tighten(path)
    return FileLock(str(path), timeout=timeout, mode=files.FILE_MODE)


def _tighten(path: Path) -> None:
    """An existing lock file of this account made group- or world-writable by an older
    version or a loose umask is set to 0600 (a link or another account's file is left alone;
    the lock itself opens it without following links)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != files.FILE_MODE:
        os.chmod(path, files.FILE_MODE)


@contextmanager
def hold(db_path: Path, out_dir: Path | None = None, timeout: float = 0) -> Iterator[None]:
    """Hold the store's lock (and the output folder's, when given) for a run or an erasure.

    Raises:
        RunLocked: another process holds either lock after ``timeout`` seconds.
    """
    with ExitStack() as stack:
        try:
            stack.enter_context(lock_for(db_path, timeout))
            if out_dir is not None:
                out = Path(out_dir).resolve()
                files.ensure_dir(out.parent)
                stack.enter_context(_lock(out.parent / f".{out.name}.lock", timeout))
        except Timeout as exc:
            raise RunLocked(LOCKED_MESSAGE) from exc
        except OSError as exc:
            raise UserError(f"cannot create a lock file next to the store or --out: {exc.strerror}") from None
        yield


# --- checks before a run -----------------------------------------------------------------


def check_paths(out_dir: Path, extract_dir: Path | None, db_path: Path) -> None:
    """Refuse an ``--out`` that is, contains or lies inside the delivery, or holds the store.

    Publishing replaces ``--out`` as a whole, so any of these would delete the delivery or
    the store. Paths are compared resolved (``..`` and links followed)."""
    out = Path(out_dir).resolve()
    db = Path(db_path).resolve()
    if extract_dir is not None:
        extract = Path(extract_dir).resolve()
        if out == extract or out in extract.parents or extract in out.parents:
            raise UserError(f"--out {out}: overlaps the delivery folder {extract}; choose a separate output folder")
    if out == db or out in db.parents:
        raise UserError(f"--out {out}: holds the store {db.name}; choose a separate output folder")


def check_replaceable(out_dir: Path, db_path: Path) -> None:
    """Refuse to replace anything but an empty folder or this store's earlier outputs (a store
    that does not exist yet has no outputs anywhere, and is not created by the check)."""
    out = Path(out_dir)
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"--out {out}: exists and is not a folder; refusing to replace it")
    if not any(out.iterdir()):
        return
    manifest = _marker(out)
    if manifest is None:
        raise UserError(
            f"--out {out}: holds files that are not fh-screen outputs; refusing to replace it "
            "(choose a new or empty folder)"
        )
    theirs = manifest.get("store_id")
    if theirs is not None and (not Path(db_path).is_file() or theirs != store_id(db_path)):
        raise UserError(
            f"--out {out}: holds the outputs of another store (region {manifest.get('region')!s}); "
            "give each region its own output folder"
        )


def _marker(out: Path) -> dict | None:
    """The published manifest if it marks an fh-screen output folder, else None."""
    path = out / MANIFEST
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MANIFEST_BYTES:
            return None
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("product") == PRODUCT else None


# --- the work folder ---------------------------------------------------------------------


def _own_folder(path: Path) -> bool:
    """True if ``path`` exists as a real folder of this account; refuse anything else there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise UserError(f"{path}: is a symbolic link; fh-screen never follows a link it did not make")
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise UserError(f"{path}: is not a folder this account made; remove it or choose another --out")
    return True


def open_work_dir(out_dir: Path, fresh: bool) -> Path:
    """The run's work folder next to ``out_dir``, checked to be a real folder of this account.

    ``fresh`` removes what a killed run of this account left (the work folder and moved-aside
    old outputs) and creates the folder anew; otherwise an existing one is resumed (the
    Airflow DAG runs each step as its own task).
    """
    out = Path(out_dir)
    work = work_dir_for(out)
    try:
        files.ensure_dir(out.parent)   # creates missing folders only; an existing parent keeps its mode
        if fresh:
            remove_leftovers(out)
        if not _own_folder(work):
            try:
                os.mkdir(work, files.DIR_MODE)
            except FileExistsError:
                raise UserError(f"{work}: appeared while the run was creating it; not using it") from None
            os.chmod(work, files.DIR_MODE)
            _own_folder(work)
    except PermissionError as exc:
        raise UserError(f"--out {out}: cannot write next to it ({exc.strerror})") from None
    return work


def remove_leftovers(out_dir: Path) -> None:
    """Remove this account's work folder and moved-aside old outputs of ``out_dir``; each is
    checked first (a link or another account's folder is refused, not followed)."""
    out = Path(out_dir)
    work = work_dir_for(out)
    if _own_folder(work):
        shutil.rmtree(work)
    for old in out.parent.glob(_old_prefix(out) + "*"):
        if _own_folder(old):
            shutil.rmtree(old)


def swap(work: Path, out_dir: Path, db_path: Path) -> Path:
    """Put ``work`` in place of ``out_dir``: the old outputs are renamed onto a fresh empty
    ``mkdtemp`` folder (a rename may replace an empty folder), the work folder is renamed to
    ``out_dir``, and the old outputs are removed. A kill between the renames leaves
    ``out_dir`` absent, never partial; the next run removes the moved-aside folder."""
    out = Path(out_dir)
    check_replaceable(out, db_path)
    _own_folder(work)
    old = Path(tempfile.mkdtemp(prefix=_old_prefix(out), dir=out.parent))
    moved = False
    try:
        if os.path.lexists(out):
            os.rename(out, old)
            moved = True
        os.rename(work, out)
    except BaseException:
        if moved and not os.path.lexists(out):
            os.rename(old, out)   # put the previous outputs back
        raise
    shutil.rmtree(old)
    return out
