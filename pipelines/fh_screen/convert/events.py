"""Lab results, dispensings and diagnoses from register rows, in the contract's columns.

Pure functions over text frames named canonically (``read.read_table``); each returns
the contract rows and the source rows with ``_reason`` (NULL = converted) for the ledger.

Decisions:
    * Lab results are not filtered to the study population: a result for someone else
      passes through and the pipeline quarantines it with its own reason, so nothing is
      dropped silently here.
    * A text result (RESULTTYPE ``alfanumerisk``: POSITIV, NEGATIV ...) is set aside
      before any number parsing, with that reason; a screening on LDL-C reads numbers.
    * ``ordering_practice_id`` is the requester only when its id type is ``ydernummer``
      (a GP practice); a hospital requester leaves it empty.
    * A dispensing whose strength is not a mass (``mg/ml``, ``IE``) or whose product is
      not in the product table keeps its row with an empty ``strength_mg``: the statin
      was still dispensed. The manifest counts them.
    * Diagnoses: LPR2 referral diagnoses (type ``H``) and supplementary codes (``+``) are
      set aside: they are not diagnoses the patient was found to have. LPR3 diagnoses
      later retracted (``senere_afkraeftet``) are set aside too.
"""

from __future__ import annotations

import polars as pl

from fh_screen.convert import fields as f

NO_PERSON = "no person id"
BAD_DATE = "date unreadable"
TEXT_RESULT = "text result (RESULTTYPE alfanumerisk): kept out of numeric parsing"
UNKNOWN_OPERATOR = "OPERATOR not mindre_end, stoerre_end or empty"
NO_CODE = "no code"
NO_CONTACT = "no usable contact row with this contact id (absent, or itself set aside)"
RETRACTED = "diagnosis later retracted (senere_afkraeftet)"
REFERRAL_DIAGNOSIS = "referral diagnosis or supplementary code (type H or +), not a diagnosis found"
DUPLICATE_PRODUCT = "second product row for the same VNR (the first is kept)"
SET_ASIDE_DIAGNOSIS_TYPES = ("H", "+")
GP_REQUESTER = {"ydernummer", "yder", "ydernr"}
STATUS_WORDS = {"final": "final", "endelig": "final", "rettet": "corrected", "corrected": "corrected",
                "annulleret": "cancelled", "slettet": "cancelled", "cancelled": "cancelled"}

LAB_COLUMNS = ["result_id", "patient_id", "sampled_at", "analyte", "value", "unit", "status", "ordering_practice_id"]


def _col(rows: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name) if name in rows.columns else pl.lit(None, pl.String)


def lab_results(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lab register (or MedCom export) rows -> contract ``lab_results``."""
    if "sampling_datetime" in rows.columns:
        sampled = f.register_datetime(pl.col("sampling_datetime"))
    else:
        sampled = f.with_time(f.register_date(pl.col("sampling_date")), _col(rows, "sampling_time"))
    requester_type = _col(rows, "requester_type").cast(pl.String).str.strip_chars().str.to_lowercase()
    status = _col(rows, "status").cast(pl.String).str.strip_chars().str.to_lowercase()
    work = rows.with_columns(
        patient_id=f.identifier(pl.col("person")),
        sampled_at=sampled,
        analyte=_col(rows, "analysis_code").cast(pl.String).str.strip_chars().str.to_uppercase(),
        value=f.signed_value(_col(rows, "value"), _col(rows, "operator")),
        unit=_col(rows, "unit").cast(pl.String).str.strip_chars(),
        status=status.replace_strict(STATUS_WORDS, default=status, return_dtype=pl.String),
        ordering_practice_id=pl.when(requester_type.is_in(list(GP_REQUESTER))).then(f.identifier(_col(rows, "requester"))),
        _lab=_col(rows, "laboratory").cast(pl.String).str.strip_chars(),
        _requester=_col(rows, "requester").cast(pl.String).str.strip_chars(),
    ).with_columns(
        _reason=pl.when(pl.col("patient_id").is_null()).then(pl.lit(NO_PERSON))
        .when(f.is_text_result(_col(rows, "result_type"))).then(pl.lit(TEXT_RESULT))
        .when(pl.col("sampled_at").is_null()).then(pl.lit(BAD_DATE))
        .when(f.unknown_operator(_col(rows, "operator"))).then(pl.lit(UNKNOWN_OPERATOR)),
    )
    out = (work.filter(pl.col("_reason").is_null())
           .with_columns(sampled_key=pl.col("sampled_at").dt.strftime("%Y-%m-%dT%H:%M:%S"))
           .with_columns(result_id=f.result_id(["patient_id", "sampled_key", "analyte", "_lab", "_requester", "unit"]))
           .select(LAB_COLUMNS))
    return out, work.select("_file", "_row", "_reason")


def dispensings(rows: pl.DataFrame, products: pl.DataFrame | None) -> tuple[pl.DataFrame, pl.DataFrame, dict, pl.DataFrame | None]:
    """LMDB / LMS_EPIKUR rows -> contract ``medications``.

    Strength comes from the row (LMDB) or, when ``products`` is given, from the product
    table joined on VNR (LMS_LAEGEMIDDELOPLYSNINGER). Returns ``(medications,
    accounted, notes, accounted_products)``.
    """
    notes: dict[str, int] = {}
    accounted_products = None
    work = rows.with_columns(
        patient_id=f.identifier(pl.col("person")),
        dispensed_on=f.register_date(pl.col("dispensed_on")),
        atc_code=pl.col("atc").cast(pl.String).str.strip_chars().str.to_uppercase(),
        _vnr=f.identifier(_col(rows, "product")),
        _order=pl.int_range(0, pl.len()),
    )
    if products is not None:
        prod = products.with_columns(_vnr=f.identifier(_col(products, "product")), _porder=pl.int_range(0, pl.len()))
        first = prod.filter(pl.col("_vnr").is_not_null()).group_by("_vnr", maintain_order=True).agg(pl.col("_porder").first())
        prod = prod.with_columns(_reason=pl.when(pl.col("_vnr").is_null()).then(pl.lit(NO_CODE))
                                 .when(~pl.col("_porder").is_in(first["_porder"].implode())).then(pl.lit(DUPLICATE_PRODUCT)))
        accounted_products = prod.select("_file", "_row", "_reason")
        lookup = prod.filter(pl.col("_reason").is_null()).select("_vnr", _col(prod, "strength").alias("strength"),
                                                                 _col(prod, "strength_unit").alias("strength_unit"))
        notes["dispensings whose VNR is not in the product table (strength left empty)"] = (
            work.filter(pl.col("_vnr").is_not_null() & ~pl.col("_vnr").is_in(lookup["_vnr"].implode())).height)
        work = work.drop("strength", "strength_unit", strict=False).join(lookup, on="_vnr", how="left", maintain_order="left")
    strength, unit = _col(work, "strength"), _col(work, "strength_unit")
    work = work.with_columns(strength_mg=f.strength_mg(strength, unit), _has_strength=strength.is_not_null())
    notes["dispensings with a strength unit that is not a mass (strength left empty)"] = work.filter(
        pl.col("_has_strength") & unit.is_not_null() & ~f.mass_unit(unit)).height
    work = work.with_columns(
        _reason=pl.when(pl.col("patient_id").is_null()).then(pl.lit(NO_PERSON))
        .when(pl.col("atc_code").is_null() | (pl.col("atc_code") == "")).then(pl.lit(NO_CODE))
        .when(pl.col("dispensed_on").is_null()).then(pl.lit(BAD_DATE)))
    out = work.filter(pl.col("_reason").is_null()).select("patient_id", "atc_code", "dispensed_on", "strength_mg")
    return out, work.select("_file", "_row", "_reason"), notes, accounted_products


def diagnoses(contacts: pl.DataFrame, diags: pl.DataFrame, datetime_contacts: bool
              ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """LPR contacts joined to their diagnoses (LPR2 on RECNUM, LPR3 on DW_EK_KONTAKT).

    Returns ``(diagnoses, accounted_contacts, accounted_diagnoses)``.
    """
    when = f.register_datetime(pl.col("contact_date")).dt.date() if datetime_contacts else f.register_date(pl.col("contact_date"))
    c = contacts.with_columns(patient_id=f.identifier(pl.col("person")), _contact=f.identifier(pl.col("contact")),
                              diagnosed_on=when)
    c = c.with_columns(_reason=pl.when(pl.col("patient_id").is_null() | pl.col("_contact").is_null()).then(pl.lit(NO_PERSON))
                       .when(pl.col("diagnosed_on").is_null()).then(pl.lit(BAD_DATE)))
    good = c.filter(pl.col("_reason").is_null()).select("_contact", "patient_id", "diagnosed_on").unique("_contact", keep="first")
    code_type = _col(diags, "code_type").cast(pl.String).str.strip_chars().str.to_uppercase()
    d = diags.with_columns(_contact=f.identifier(pl.col("contact")), icd10_code=f.diagnosis_code(_col(diags, "code")),
                           _type=code_type, _retracted=f.retracted(_col(diags, "retracted")))
    d = d.join(good, on="_contact", how="left", maintain_order="left")
    d = d.with_columns(_reason=pl.when(pl.col("icd10_code").is_null() | (pl.col("icd10_code") == "")).then(pl.lit(NO_CODE))
                       .when(pl.col("patient_id").is_null()).then(pl.lit(NO_CONTACT))
                       .when(pl.col("_retracted")).then(pl.lit(RETRACTED))
                       .when(pl.col("_type").is_in(list(SET_ASIDE_DIAGNOSIS_TYPES))).then(pl.lit(REFERRAL_DIAGNOSIS)))
    out = d.filter(pl.col("_reason").is_null()).select("patient_id", "icd10_code", "diagnosed_on")
    return out, c.select("_file", "_row", "_reason"), d.select("_file", "_row", "_reason")
