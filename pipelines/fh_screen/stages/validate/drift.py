"""Drift warnings: signs that a delivery changed shape, reported but never fatal.

* volume: a table with far fewer rows than the previous delivery of the same table
  (``delivery_stats`` keeps the counts). A table of the day's events (lab results,
  dispensings ...) is compared only with earlier nightly deliveries, never with its first
  delivery: that is the history load, hundreds of times a night's size, and comparing the
  first night with it raised a false alarm every time a region started. A table that
  arrives whole every night (``TableSpec.whole``: patients, contacts) is compared with its
  previous delivery whatever it was;
* unit switch: an analyte code whose results now come in a unit it (almost) never had;
* new code: an analyte code never delivered before.

Warnings name tables, codes and units only, never patients or values.
"""

from __future__ import annotations


from fh_screen.store import db
from fh_screen.config import ValidationSettings
from fh_screen.schemas import TABLES


def _sql(name: str) -> str:
    return db.sql(f"validate/{name}")


def volume_warnings(
    con: db.Connection,
    delivery_id: str,
    as_of,
    received: dict[str, int],
    settings: ValidationSettings,
) -> list[str]:
    """Compare with the previous delivery of each table, then record this delivery's counts."""
    con.execute(_sql("delivery_stats"))
    warnings = []
    for table, count in sorted(received.items()):
        whole = table in TABLES and TABLES[table].whole
        previous = con.execute(_sql("previous_volume"), [table, delivery_id, whole]).fetchone()
        if previous and previous[0] > 0 and count < settings.drift_min_volume_ratio * previous[0]:
            warnings.append(
                f"{table}: {count:,} rows received, below {settings.drift_min_volume_ratio:.0%} "
                f"of the previous delivery ({previous[0]:,})"
            )
    with db.transaction(con):
        for table, count in received.items():
            con.execute(
                "INSERT OR REPLACE INTO delivery_stats VALUES (?, ?, ?, ?, now()::TIMESTAMP)",
                [delivery_id, table, as_of, count],
            )
    return warnings


def lab_warnings(con: db.Connection, delivery_id: str, settings: ValidationSettings) -> list[str]:
    """Unit switches and new analyte codes in ``stg_lab_results`` against earlier deliveries."""
    params = {
        "delivery_id": delivery_id,
        "min_share": settings.unit_switch_min_share,
        "max_previous_share": settings.unit_switch_max_previous_share,
    }
    warnings = [
        f"lab_results: code {code} now has {share:.0%} of its results in '{unit}' "
        f"(before: {previous:.0%}; usual unit '{main}'); check that the lab did not switch units"
        for code, unit, share, previous, main in con.execute(_sql("unit_shift"), params).fetchall()
    ]
    warnings += [
        f"lab_results: analyte code {code} ({analyte}) appears for the first time ({n:,} results)"
        for code, analyte, n in con.execute(_sql("new_codes"), {"delivery_id": delivery_id}).fetchall()
    ]
    return warnings
