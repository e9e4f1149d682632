"""Erasure of one patient on request (``fhscreen erase``); the register that keeps them
erased in later deliveries is ``fh_screen.store.erasure``.

Evaluator exports carry no patient ids at all (aggregates only, see the metrics stage), so
no pseudonymisation key is needed."""

from __future__ import annotations

from datetime import date

from fh_screen.store import changes, db, erasure
from fh_screen.store.erasure import PATIENT_COLUMNS


def erase_patient(con, patient_id: str, erased_on: date) -> dict[str, int]:
    """Remove every row that names ``patient_id`` from every table, in one transaction.

    Quarantined rows are matched on their key and on the raw JSON value. The erasure is
    recorded in the erasure register by a keyed hash only, so the register names nobody,
    and later deliveries that still hold the person are set aside at ingest. Returns rows
    removed per table (no ids).
    """
    tables = [
        (row[0], row[1])
        for row in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'main' AND column_name IN (?, ?, ?) ORDER BY 1, 2",
            list(PATIENT_COLUMNS),
        ).fetchall()
    ]
    removed: dict[str, int] = {}
    with db.transaction(con):
        changes.note_erased(con, patient_id)   # their relatives' family evidence changes tonight
        for table, column in tables:
            if not (table.isidentifier() and column in PATIENT_COLUMNS):
                continue
            count = con.execute(f'DELETE FROM "{table}" WHERE "{column}" = ?', [patient_id]).fetchone()[0]
            removed[table] = removed.get(table, 0) + int(count)
        count = con.execute(
            "DELETE FROM quarantine WHERE row_key = ? OR json_extract_string(raw, '$.patient_id') = ? "
            "OR json_extract_string(raw, '$.relative_id') = ?",
            [patient_id, patient_id, patient_id],
        ).fetchone()[0]
        removed["quarantine"] = removed.get("quarantine", 0) + int(count)
        erasure.record(con, patient_id, erased_on)
    return {table: n for table, n in removed.items() if n}
