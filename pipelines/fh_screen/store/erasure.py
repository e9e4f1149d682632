"""The erasure register: erased people stay erased across later full extracts.

An erased person is recorded in ``erasure_register`` as an HMAC-SHA256 of their id. The
key is ``FH_SCREEN_ERASURE_KEY`` when the region sets it (recommended: then the store
alone cannot tell whether a given id was erased), else a random key made with the store
(``store_identity``). Every later delivery is checked at ingest: rows naming a registered
id in any person column are set aside before parsing (never loaded, never quarantined)
and counted in the manifest as ``set_aside_for_erasure``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import date

import polars as pl

from fh_screen.errors import UserError
from fh_screen.store import db

ERASURE_KEY_ENV = "FH_SCREEN_ERASURE_KEY"
# Columns that hold a patient's id, in any table of the store or delivery.
PATIENT_COLUMNS = ("patient_id", "relative_id", "index_patient_id")
_KEY_CHECK = b"fh-screen erasure key check"


def _key(con) -> bytes:
    raw = os.environ.get(ERASURE_KEY_ENV)
    return raw.encode("utf-8") if raw else db.store_identity(con)[1]


def _hash(key: bytes, value: str | bytes) -> str:
    data = value if isinstance(value, bytes) else value.encode("utf-8")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def record(con, patient_id: str, erased_on: date) -> None:
    """Add one erased id to the register (inside the caller's transaction)."""
    key = _key(con)
    con.execute("INSERT INTO erasure_register VALUES (?, ?, ?)",
                [_hash(key, patient_id), _hash(key, _KEY_CHECK), erased_on])


@dataclass(frozen=True)
class ErasureRegister:
    """The register as ingest uses it: the key and the set of erased ids' hashes."""

    key: bytes
    hashes: frozenset[str]

    def set_aside(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        """``frame`` without the rows whose (trimmed) id in any person column is erased,
        and how many rows were set aside. Each distinct id is hashed once."""
        erased = pl.repeat(False, frame.height, eager=True)
        for column in (c for c in PATIENT_COLUMNS if c in frame.columns):
            ids = frame.get_column(column).str.strip_chars()
            hits = [i for i in ids.unique().drop_nulls().to_list() if _hash(self.key, i) in self.hashes]
            if hits:
                erased = erased | ids.is_in(pl.Series(hits, dtype=pl.String).implode()).fill_null(False)
        n = int(erased.sum())
        return (frame.filter(~erased), n) if n else (frame, 0)


def register(con) -> ErasureRegister | None:
    """The store's register, or None when nobody has been erased.

    Raises:
        UserError: the register was written with another key than the one available now
            (``FH_SCREEN_ERASURE_KEY`` set, unset or changed since): erased people would
            silently be loaded again.
    """
    rows = con.execute("SELECT id_hash, key_check FROM erasure_register").fetchall()
    if not rows:
        return None
    key = _key(con)
    if any(check != _hash(key, _KEY_CHECK) for _, check in rows):
        raise UserError(
            f"the erasure register was written with another key; set {ERASURE_KEY_ENV} as it was "
            "when the erasures were made (erased people would otherwise be loaded again)"
        )
    return ErasureRegister(key, frozenset(h for h, _ in rows))
