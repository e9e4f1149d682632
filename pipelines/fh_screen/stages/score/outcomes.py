"""Assessed referrals: what the region's lipid clinics concluded, for calibration and monitoring."""

from __future__ import annotations

import polars as pl

from fh_screen import reference

# Clinic outcomes that are an assessment: confirmed (the rules' confirmed outcomes) or ruled out.
RULED_OUT = "not_fh"


def assessed_outcomes(con) -> pl.DataFrame:
    """patient_id, confirmed (1/0) for every referral the clinic assessed: confirmed FH (the
    rules' confirmed outcomes) or ruled out; did-not-attend, declined and pending are not
    assessments. Empty when the delivery has no clinic outcomes."""
    present = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'clinic_outcomes'")
    if not present.fetchone()[0]:
        return pl.DataFrame(schema={"patient_id": pl.Utf8, "confirmed": pl.Int8})
    confirmed = reference.load("exclusions_v2")["confirmed_outcomes"]
    return con.execute(
        f"""
        SELECT patient_id, CAST(max(CASE WHEN outcome IN ({', '.join('?' for _ in confirmed)}) THEN 1 ELSE 0 END)
                                AS TINYINT) AS confirmed
        FROM clinic_outcomes WHERE outcome IN ({', '.join('?' for _ in confirmed)}, ?)
        GROUP BY patient_id ORDER BY patient_id
        """,
        [*confirmed, *confirmed, RULED_OUT],
    ).pl()
