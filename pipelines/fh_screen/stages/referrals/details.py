"""What a worklist shows about each listed patient beyond the rule results, read from the store.

The read lives here, at the referrals step's edge, so that outputs only render frames and
view models (``outputs.worklists.details_from``) and never take a DuckDB connection. The
review page (``fhscreen explain``) reads through the same function, so it shows exactly what
the worklist shows.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from fh_screen.outputs import worklists
from fh_screen.stages.features.build import ldl_series
from fh_screen.store import db


# worklist_labs.sql columns the worklist's table shows, and those the LDL-C trend reads.
TABLE_COLUMNS = ("patient_id", "analyte", "day", "value", "censored")
LDL_SERIES_COLUMNS = ("patient_id", "result_id", "sampled_at", "sample_date", "analyte", "method", "value")


def read_details(con: db.Connection, patient_ids: list[str], as_of: date) -> dict[str, dict]:
    """Labs, current lipid-lowering drugs, names and the LDL-C trend of ``patient_ids`` as of
    ``as_of`` (see ``worklists.details_from`` for the shape)."""
    if not patient_ids:
        return {}
    since = as_of - timedelta(days=worklists.TREATMENT_LOOKBACK_DAYS)
    con.register("_listed", pl.DataFrame({"patient_id": patient_ids}, schema={"patient_id": pl.Utf8}))
    try:
        labs = con.execute(db.sql("worklist_labs"), {"as_of": as_of}).pl()
        drugs = con.execute(db.sql("worklist_drugs"), {"since": since, "as_of": as_of}).pl()
        names = con.execute(db.sql("worklist_names")).pl()
    finally:
        con.unregister("_listed")
    series = ldl_series(con, patient_ids, as_of, labs.select(LDL_SERIES_COLUMNS))
    return worklists.details_from(patient_ids, labs.select(TABLE_COLUMNS), drugs, names, series)
