"""Who is not newly flagged, version 2: deceased, moved out, already diagnosed with FH, under
clinic care, or judged not FH by a lipid clinic without new evidence since.

References:
    SKS DE780B / ICD-10-CM E78.01 are FH; WHO ICD-10 E78.0 is pure hypercholesterolaemia (WHO
    ICD-10 2019). NICE CG71 (2008, updated 2019): FH is diagnosed by a specialist. The product's
    data contract: deceased and moved-out patients are never referred or written to.

Decisions (ids in ``reference/rules/exclusions_v2.yaml``):
    * One reason per patient, in the order of ``priority``.
    * fh_specific_codes: already_diagnosed = an FH-specific code (E780B, E7801) or a confirmed
      clinic outcome. Plain E78.0 is shown as information (``recorded_e780``).
    * under_clinic_care: latest outcome ``pending``, or any outcome other than did_not_attend,
      declined or not_fh within ``clinic_recent_days`` (365) of the run date.
    * not_fh_needs_new_evidence: latest outcome ``not_fh`` -> ``clinic_not_fh`` unless, after
      that outcome, the scoring LDL-C is higher than every LDL-C up to it, coronary heart disease
      was first diagnosed, or a family history was recorded.
    * outcome_shown: every patient with a clinic outcome has it shown with its date.
"""

from __future__ import annotations

import polars as pl

from fh_screen import reference
from fh_screen.stages.rules.common import Criterion, Reason, fmt_date, fmt_mmol

RULE = reference.load("exclusions_v2")
NAME, VERSION = RULE["name"], RULE["version"]


def new_evidence() -> dict[str, pl.Expr]:
    """Evidence dated after a not_fh outcome, by kind (decision not_fh_needs_new_evidence)."""
    after = pl.col("clinic_last_outcome_date")
    return {
        "ldl": ((pl.col("ldl_estimate_date") > after)
                & (pl.col("ldl_untreated_estimate_mmol").round(2) > pl.col("ldl_max_to_not_fh_mmol").round(2))
                .fill_null(True)).fill_null(False),
        "chd": (pl.col("chd_first_date") > after).fill_null(False),
        "family_history": (pl.col("fhx_recorded_on") > after).fill_null(False),
    }


def conditions() -> dict[str, pl.Expr]:
    days_since = (pl.col("as_of") - pl.col("clinic_last_outcome_date")).dt.total_days()
    last = pl.col("clinic_last_outcome")
    quiet = [*RULE["not_engaged_outcomes"], "not_fh"]
    return {
        "deceased": pl.col("is_deceased").fill_null(False),
        "moved_out": pl.col("is_moved_out").fill_null(False),
        "already_diagnosed": pl.col("fh_diagnosis_specific").fill_null(False)
        | pl.col("clinic_confirmed_fh").fill_null(False),
        "under_clinic_care": ((last == "pending") | (~last.is_in(quiet) & (days_since <= RULE["clinic_recent_days"])))
        .fill_null(False),
        "clinic_not_fh": ((last == "not_fh") & ~pl.any_horizontal(new_evidence().values())).fill_null(False),
    }


def evaluate(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``excluded_reason`` (NULL when the patient may be flagged)."""
    cond = conditions()
    reason = pl.lit(None, dtype=pl.Utf8)
    for name in reversed(RULE["priority"]):
        reason = pl.when(cond[name]).then(pl.lit(name)).otherwise(reason)
    return lf.with_columns(reason.alias("excluded_reason"))


def reasons() -> list[Reason]:
    r = pl.col("excluded_reason")
    specific = pl.col("fh_diagnosis_specific").fill_null(False)
    return [
        Reason(r == "deceased", "excluded_deceased"),
        Reason(r == "moved_out", "excluded_moved_out"),
        Reason((r == "already_diagnosed") & specific, "excluded_diagnosis_code",
               {"code": pl.col("fh_specific_code"), "date": fmt_date("fh_specific_date")}),
        Reason((r == "already_diagnosed") & ~specific, "excluded_confirmed_clinic",
               {"date": fmt_date("clinic_confirmed_date")}),
        Reason(r == "under_clinic_care", "excluded_under_clinic_care",
               {"outcome": pl.col("clinic_last_outcome"), "date": fmt_date("clinic_last_outcome_date")}),
        Reason(r == "clinic_not_fh", "excluded_clinic_not_fh", {"date": fmt_date("clinic_last_outcome_date")}),
    ]


def information() -> list[Reason]:
    """What the list shows about earlier outcomes and plain E78.0 codes (decision outcome_shown)."""
    listed = pl.col("excluded_reason").is_null()
    last = pl.col("clinic_last_outcome")
    ev = new_evidence()
    return [
        Reason(listed & (last == "not_fh") & ev["ldl"], "relisted_not_fh_ldl", {
            "date": fmt_date("clinic_last_outcome_date"), "ldl": fmt_mmol("ldl_untreated_estimate_mmol"),
            "ldl_date": fmt_date("ldl_estimate_date"), "before": fmt_mmol("ldl_max_to_not_fh_mmol")}),
        Reason(listed & (last == "not_fh") & ~ev["ldl"] & ev["chd"], "relisted_not_fh_chd", {
            "date": fmt_date("clinic_last_outcome_date"), "chd_date": fmt_date("chd_first_date")}),
        Reason(listed & (last == "not_fh") & ~ev["ldl"] & ~ev["chd"] & ev["family_history"],
               "relisted_not_fh_family", {"date": fmt_date("clinic_last_outcome_date"),
                                          "fhx_date": fmt_date("fhx_recorded_on")}),
        Reason(listed & last.is_not_null() & (last != "not_fh"), "clinic_last_outcome", {
            "outcome": last, "date": fmt_date("clinic_last_outcome_date")}),
        Reason(listed & pl.col("e780_code").is_not_null() & ~pl.col("fh_diagnosis_specific").fill_null(False),
               "recorded_e780", {"code": pl.col("e780_code"), "date": fmt_date("e780_date")}),
        Reason(pl.col("clinic_gene").is_not_null() & ~pl.col("clinic_dna_variant").fill_null(False),
               "gene_not_causative", {"gene": pl.col("clinic_gene")}),
    ]


def criteria() -> list[Criterion]:
    return [Criterion(pl.col("excluded_reason") == name, f"excluded.{name}") for name in RULE["priority"]]
