"""Patient features as of the run date: one row per patient, shared by the rules and the ML scorer.

Everything a rule or a model needs about a patient is derived here, once, from the curated
tables, so the clinical rules and the scorer can never disagree about the facts (which LDL-C
was highest, whether it was on treatment, which relative has FH). Values carry their unit in
the column name; every derived value keeps its provenance next to it (``*_source``, ``*_date``).

Lab results arrive as day rows, never raw rows (``Inputs.lab_days``): DuckDB reduces them
where they are stored to one row per patient and sample day (``store.labs``,
``sql/feat_lab_days.sql``), and ``make_inputs`` runs the same SQL over given rows. Measured at
1M people on the four partitions of a full pass, each built by the code before and after in
one run: the same 143 columns to the last bit, 40.4 -> 39.8 CPU s, 40.1 -> 36.0 s wall, peak
1,709-1,838 -> 1,515-1,637 MiB per partition (polars no longer holds 2.6M raw rows).

Time: only data up to ``as_of`` is used (samples, dispensings, diagnoses, outcomes, records);
cancelled lab results are withdrawn and never used.

Decisions (clinical numbers live in ``reference/rules/*.yaml`` and reference CSVs):
    * LDL-C per sample (same patient, same day): measured > lab-calculated > an equation on that
      sample's TC/HDL/TG (``lipids.derived_ldl``; Sampson preferred, Friedewald only TG <= 4.5).
    * Treatment at a sample: a lipid-lowering dispensing in the ``coverage_days`` (100) before the
      sample day; factor from ``reference/ldl_correction_factors.csv`` (``_regimen_factor``).
    * The "index" sample is THE LDL-C that scores (``scoring_ldl``; decisions ``ldl_precedence``,
      ``ldl_time_to_effect``, ``ldl_factor_cap`` in ``ldl_estimation_v2.yaml``): the highest
      measured untreated LDL-C, else the highest estimate from samples taken after the drug had
      time to act. Its basis is ``ldl_estimate_basis``; secondary-cause evidence is looked up
      around it.
    * Relatives: the one family graph of ``family.relatives`` (first degree: parents,
      children, full siblings including those through a shared recorded parent; second
      degree: grandparents, aunts/uncles, half-siblings, grandchildren, nieces/nephews).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import polars as pl

from fh_screen.ages import age_at
from fh_screen.store import db, labs as lab_store
from fh_screen.stages.features import family, lipids
from fh_screen import reference

# The lipid profile's kinds in ``Inputs.lab_days``: the day's last measured and lab-calculated
# LDL-C, total cholesterol, HDL-C and triglycerides (``sql/feat_lab_days.sql``).
LIPID_KINDS = ("ldl_meas", "ldl_calc", "tc", "hdl", "tg")
CHD_PREFIXES = ("I20", "I21", "I22", "I23", "I24", "I25")          # WHO ICD-10 2019
# Stroke, TIA, atherosclerotic and unspecified peripheral vascular disease (WHO ICD-10 2019):
# I63/I64 stroke, G45 TIA, I70 atherosclerosis, I73.9 peripheral vascular disease unspecified
# (intermittent claudication). Not the rest of I73: Raynaud's (I73.0) and thromboangiitis
# obliterans (I73.1) are not atherosclerotic (decision premature_pvd_codes).
OTHER_CVD_PREFIXES = ("I63", "I64", "G45", "I70", "I739")
FAMILY_HISTORY_ITEMS = (
    "premature_chd_first_degree",
    "fh_first_degree",
    "high_ldl_first_degree_adult",
    "high_ldl_child_relative",
    "tendon_xanthoma",
    "arcus_before_45",
    "premature_chd_self",
    "premature_pvd_self",
)


INPUT_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "patients": {"patient_id": pl.Utf8, "birth_date": pl.Date, "sex": pl.Utf8, "practice_id": pl.Utf8,
                 "postcode": pl.Utf8, "deceased_date": pl.Date, "moved_out_date": pl.Date},
    "lab_results": {"patient_id": pl.Utf8, "result_id": pl.Utf8, "sampled_at": pl.Datetime("us"),
                    "sample_date": pl.Date, "analyte": pl.Utf8, "method": pl.Utf8, "value": pl.Float64},
    "medications": {"patient_id": pl.Utf8, "atc_code": pl.Utf8, "dispensed_on": pl.Date, "strength_mg": pl.Float64},
    "diagnoses": {"patient_id": pl.Utf8, "icd10_code": pl.Utf8, "diagnosed_on": pl.Date},
    "relations": {"patient_id": pl.Utf8, "relative_id": pl.Utf8, "relationship": pl.Utf8},
    "family_history": {"patient_id": pl.Utf8, "item": pl.Utf8, "recorded_on": pl.Date},
    "clinic_outcomes": {"patient_id": pl.Utf8, "outcome_date": pl.Date, "outcome": pl.Utf8, "gene": pl.Utf8},
}


@dataclass(frozen=True)
class Inputs:
    """The curated tables as of the run date (see ``sql/feat_*.sql``; columns in ``INPUT_SCHEMAS``),
    the lab results as ``lab_days``: one row per patient and sample day (``store.labs``,
    ``sql/feat_lab_days.sql``), never the raw rows."""

    patients: pl.DataFrame
    lab_days: pl.DataFrame
    medications: pl.DataFrame
    diagnoses: pl.DataFrame
    relations: pl.DataFrame
    family_history: pl.DataFrame
    clinic_outcomes: pl.DataFrame


def load_inputs(con: db.Connection, as_of: date, scope: str | None = None, family_scope: str | None = None,
                relations: bool = True) -> Inputs:
    """Read the curated tables, restricted to what was known on ``as_of`` (``read_input``).

    ``scope`` names a table of ``patient_id`` (code, not input): only those patients' rows
    are read, and the relations that touch them or, when given, that touch the patients of
    ``family_scope`` (an incremental night, ``store.changes``: the recomputed patients'
    relatives, whose own features are taken from the store). ``relations=False`` leaves the
    relations empty: a patient's own features read none (``own_features``).
    """
    if any(name is not None and not name.isidentifier() for name in (scope, family_scope)):
        raise ValueError(f"bad scope table {scope!r} / {family_scope!r}")
    tables = [name for name in INPUT_SCHEMAS if relations or name != "relations"]
    frames = {name: read_input(con, name, as_of, family_scope if name == "relations" and family_scope else scope)
              for name in tables}
    labs = frames.pop("lab_results")
    return Inputs(lab_days=labs, **{name: frames.get(name, _typed(None, INPUT_SCHEMAS[name]))
                                    for name in INPUT_SCHEMAS if name != "lab_results"})


def read_input(con: db.Connection, name: str, as_of: date, among: str | None = None) -> pl.DataFrame:
    """One input table as known on ``as_of`` (``sql/feat_<name>.sql``, which reads the stored
    table ``name``), typed as ``INPUT_SCHEMAS``; the lab results as day rows, reduced where they
    are stored (``store.labs``). With ``among`` (a table of ``patient_id``, named by code),
    only the rows that name one of its patients (either end of a relation).

    The scope is applied to the stored table itself, before the ``feat_*`` query (a CTE of
    the table's name, which the query and the macros it calls read instead): a filter around
    the query is not pushed below its ``DISTINCT``, and the relations of 31,000 patients
    took 0.62 CPU s to read instead of 0.19 (1M people, 1.9M relations rows).
    """
    if name not in INPUT_SCHEMAS or (among is not None and not among.isidentifier()):
        raise ValueError(f"bad input {name!r} or scope table {among!r}")
    text = db.sql(f"feat_{name}")
    if among is not None:
        keys = ("patient_id", "relative_id") if name == "relations" else ("patient_id",)
        inside = " OR ".join(f"{key} IN (SELECT patient_id FROM {among})" for key in keys)
        text = f"WITH {name} AS (SELECT * FROM main.{name} WHERE {inside}) {text}"
    params = {"as_of": as_of} if "$as_of" in text else {}
    if name == "lab_results":
        return lab_store.lab_days(con, text, params)
    return _typed(con.execute(text, params).pl(), INPUT_SCHEMAS[name])


def make_inputs(**tables: pl.DataFrame | list[dict]) -> Inputs:
    """``Inputs`` from frames or row dicts, cast to ``INPUT_SCHEMAS``; tables or columns not
    given are empty (NULL); ``sample_date`` defaults to the day of ``sampled_at``. The lab rows
    are reduced to day rows by the same SQL as the store's (``store.labs.lab_days_of``).

    Lets tests and what-if analyses build features without a store.
    """
    frames = {name: _typed(tables.get(name), schema) for name, schema in INPUT_SCHEMAS.items()}
    labs = frames.pop("lab_results").with_columns(pl.coalesce("sample_date", pl.col("sampled_at").dt.date()))
    return Inputs(lab_days=lab_store.lab_days_of(labs), **frames)


def _typed(data: pl.DataFrame | list[dict] | None, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data.select(pl.col(c).cast(t) if c in data.columns else pl.lit(None, dtype=t).alias(c)
                           for c, t in schema.items())
    return pl.DataFrame(data or [], schema=schema)



def feature_frame(rows: list[dict], as_of: date) -> pl.DataFrame:
    """``patient_features`` rows from explicit values (spec tests, benchmarks, what-if).

    Each row gives some columns (``patient_id`` defaults to ``P<i>``, ``age_years`` to 45,
    ``sex`` to ``M``); every other column takes the value a patient with no records gets, so
    rules see a complete schema. Age- and sex-derived flags follow the given values.
    """
    blank_frame = _blank_frame(as_of)
    blank = blank_frame.row(0, named=True)
    out = []
    for i, r in enumerate(rows):
        row = {**blank, "patient_id": f"P{i}", **r}
        age, sex = row["age_years"], row["sex"]
        treated = row.get("ldl_estimate_treated")
        basis = None if row.get("ldl_untreated_estimate_mmol") is None else (
            "estimated_from_treated" if treated else "measured_untreated")
        derived = {"is_child": age < 18, "sex_male": {"M": 1, "F": 0}.get(sex), "age_exact_years": float(age),
                   "ldl_estimate_basis": basis}
        row.update({k: v for k, v in derived.items() if k not in r})
        out.append(row)
    return pl.DataFrame(out, schema=blank_frame.schema)


@lru_cache(maxsize=8)
def _blank_frame(as_of: date) -> pl.DataFrame:
    """Features of one patient with no records (cached: frames are immutable)."""
    person = {"patient_id": "P0", "sex": "M", "birth_date": as_of.replace(year=as_of.year - 45)}
    return build_features(make_inputs(patients=[person]), as_of)


# --------------------------------------------------------------------------- helpers


def _top(frame: pl.DataFrame, by: list[str], descending: list[bool], cols: dict[str, str]) -> pl.DataFrame:
    """Per patient, the first row after sorting (e.g. the highest value, latest on ties).

    Each patient's rows are ordered inside the group and only the winning row number is kept,
    then those rows are gathered: a global sort led by the string ``patient_id`` cost several
    times more at 1M people. Rows that tie on every ``by`` column are alike in ``cols`` where
    this is used (``sample_date`` is unique per patient in samples; ``_near`` and the drug pick
    return only their sort columns), so which of them wins does not show.
    """
    rows = (
        frame.with_row_index("_row")
        .group_by("patient_id")
        .agg(pl.col("_row").sort_by(by, descending=descending, nulls_last=True).first())
    )
    return frame[rows["_row"]].select("patient_id", *[pl.col(src).alias(dst) for src, dst in cols.items()])


def _lipid_drugs(meds: pl.DataFrame) -> pl.DataFrame:
    """Lipid-lowering dispensings with drug and class (``reference/lipid_drugs.csv``)."""
    drugs = reference.csv("lipid_drugs").select("atc_code", "drug", "class")
    out = meds.join(drugs, on="atc_code", how="left").with_columns(
        pl.when(pl.col("class").is_not_null())
        .then(pl.col("class"))
        .when(pl.col("atc_code").str.starts_with("C10BX"))
        .then(pl.lit("statin"))             # statin + other agent, statin unknown -> fallback factor
        .when(pl.col("atc_code").str.starts_with("C10"))
        .then(pl.lit("other_ldl"))
        .alias("class"),
        pl.col("drug").fill_null("unknown"),
    )
    return out.filter(pl.col("class").is_not_null() & (pl.col("class") != "not_ldl"))


def _strength_text(col: str) -> pl.Expr:
    s = pl.col(col)
    return pl.when(s == s.round(0)).then(s.cast(pl.Int64).cast(pl.Utf8)).otherwise(s.cast(pl.Utf8))


# --------------------------------------------------------------------------- lipid samples


def lipid_samples(lab_days: pl.DataFrame, persons: pl.DataFrame, meds: pl.DataFrame) -> pl.DataFrame:
    """One row per patient and sample day with LDL-C (and its source), TC, HDL, TG, the
    treatment at that day and the estimated untreated LDL-C.

    ``lab_days`` (``Inputs.lab_days``) already holds each day's last result of each lipid kind
    (``sql/feat_lab_days.sql``); a day with any of them is a sample."""
    samples = lab_days.filter(pl.any_horizontal(pl.col(k).is_not_null() for k in LIPID_KINDS)).select(
        "patient_id", "sample_date", *LIPID_KINDS)
    eq_value, eq_name = lipids.derived_ldl(pl.col("tc"), pl.col("hdl"), pl.col("tg"))
    samples = samples.with_columns(
        pl.coalesce("ldl_meas", "ldl_calc", eq_value).alias("ldl"),
        pl.when(pl.col("ldl_meas").is_not_null())
        .then(pl.lit("measured"))
        .when(pl.col("ldl_calc").is_not_null())
        .then(pl.lit("calculated_lab"))
        .otherwise(eq_name)
        .alias("ldl_source"),
    ).join(persons.select("patient_id", "birth_date", "sex"), on="patient_id", how="left")
    samples = samples.with_columns(age_at(pl.col("birth_date"), pl.col("sample_date")).alias("age_at_sample"))
    return treatment_at_samples(samples, meds).with_columns(
        (pl.col("ldl") * pl.col("factor")).alias("ldl_estimate"),
        pl.when(~pl.col("treated")).then(pl.lit("measured_untreated"))
        .when(pl.col("early_treatment")).then(pl.lit("measured_early_treatment"))
        .otherwise(pl.lit("estimated_from_treated")).alias("ldl_basis"),
    )


def scoring_ldl(samples: pl.DataFrame) -> pl.DataFrame:
    """Per patient, THE LDL-C sample that scores (decision ``ldl_precedence``).

    The one definition used for the DLCN LDL group, the LDL-C percentile, a relative's
    likelihood by the cut-offs for relatives (features and cascade alike) and the worklist:
    the highest measured untreated LDL-C; if none, the highest estimate from samples taken
    after the drug had time to act; if none, the highest sample taken before it had.
    Returns one row per patient with the sample's columns (``ldl``, ``ldl_estimate``,
    ``ldl_basis``, ``sample_date``, ``age_at_sample``, regimen, factor ...).
    """
    order = reference.load("ldl_estimation_v2")["basis_order"]
    ranked = samples.filter(pl.col("ldl").is_not_null()).with_columns(
        pl.col("ldl_basis").replace_strict({b: i for i, b in enumerate(order)}, return_dtype=pl.Int8)
        .alias("_basis_rank"))
    rows = (ranked.with_row_index("_row").group_by("patient_id")
            .agg(pl.col("_row").sort_by(["_basis_rank", "ldl_estimate", "sample_date"],
                                        descending=[False, True, True], nulls_last=True).first()))
    return ranked[rows["_row"]].drop("_basis_rank")


def _latest_before(samples: pl.DataFrame, disp: pl.DataFrame, coverage: int, prefix: str) -> pl.DataFrame:
    """For each sample, the latest dispensing of ``disp`` in the ``coverage`` days before it."""
    right = disp.select(
        "patient_id",
        pl.col("dispensed_on").alias(f"{prefix}_on"),
        pl.col("drug").alias(f"{prefix}_drug"),
        pl.col("strength_mg").alias(f"{prefix}_mg"),
        pl.col("class").alias(f"{prefix}_class"),
    ).sort(f"{prefix}_on")
    joined = samples.sort("lookup_date").join_asof(
        right, left_on="lookup_date", right_on=f"{prefix}_on", by="patient_id", strategy="backward",
        check_sortedness=False,
    )
    active = (pl.col("sample_date") - pl.col(f"{prefix}_on")).dt.total_days() <= coverage
    cols = [f"{prefix}_on", f"{prefix}_drug", f"{prefix}_mg", f"{prefix}_class"]
    return joined.with_columns(pl.when(active).then(pl.col(c)).alias(c) for c in cols)


def treatment_at_samples(samples: pl.DataFrame, meds: pl.DataFrame) -> pl.DataFrame:
    """Add the lipid-lowering regimen at each sample and the untreated-LDL factor."""
    coverage = reference.load("ldl_estimation_v2")["treatment"]["coverage_days"]
    disp = _lipid_drugs(meds)
    out = samples.with_columns((pl.col("sample_date") - timedelta(days=1)).alias("lookup_date"))
    groups = {
        "statin": ("statin", "statin_ezetimibe"),
        "eze": ("ezetimibe", "statin_ezetimibe"),
        "pcsk9": ("pcsk9_mab", "pcsk9_sirna"),
        "other": ("other_ldl",),
    }
    for prefix, classes in groups.items():
        out = _latest_before(out, disp.filter(pl.col("class").is_in(classes)), coverage, prefix)
    out = _episode_start(out, disp, coverage)
    return _regimen_factor(out.drop("lookup_date"))


def _episode_start(samples: pl.DataFrame, disp: pl.DataFrame, coverage: int) -> pl.DataFrame:
    """Add ``treatment_start``: the first dispensing of the lipid-lowering episode a sample
    falls in (an episode starts at a dispensing with no other in the ``coverage`` days before),
    so that a sample days after the first tablet is not read as fully treated (decision
    ``ldl_time_to_effect``)."""
    days = disp.select("patient_id", "dispensed_on").unique().sort("patient_id", "dispensed_on")
    gap = (pl.col("dispensed_on") - pl.col("dispensed_on").shift(1).over("patient_id")).dt.total_days()
    starts = days.filter(gap.is_null() | (gap > coverage)).select(
        "patient_id", pl.col("dispensed_on").alias("treatment_start")).sort("treatment_start")
    return samples.sort("lookup_date").join_asof(
        starts, left_on="lookup_date", right_on="treatment_start", by="patient_id", strategy="backward",
        check_sortedness=False)


# Which drug group is on at a sample: the latest dispensing of the group in the coverage days
# before it (``treatment_at_samples``).
ON_STATIN = pl.col("statin_on").is_not_null()
ON_EZETIMIBE = pl.col("eze_on").is_not_null()
ON_OTHER = pl.col("other_on").is_not_null()
ON_PCSK9 = pl.col("pcsk9_on").is_not_null()
FALLBACK_PROVENANCE = "fallback_1.43"


def base_regimen_cases(ezetimibe: dict, fallback: float) -> list[tuple[pl.Expr, pl.Expr, pl.Expr]]:
    """The base regimen's factor and provenance (before a PCSK9 add-on), as rows of
    (applies when, factor, provenance); the first row that applies wins, no treatment -> 1.0.

    ``f_statin``/``p_statin`` and ``f_combo``/``p_combo`` are the tabulated statin and
    statin + ezetimibe rows of ``ldl_correction_factors.csv`` for the sample's statin and
    dose (``_with_tabulated_factors``); ``ezetimibe`` is the ezetimibe row; ``fallback`` the
    factor for a drug or dose the table lacks (``ldl_estimation_v2`` treatment.fallback_factor).
    """
    statin_known = pl.col("f_statin").is_not_null()
    return [
        # statin + ezetimibe with a tabulated combination factor
        (ON_STATIN & ON_EZETIMIBE & pl.col("f_combo").is_not_null(), pl.col("f_combo"), pl.col("p_combo")),
        # statin + ezetimibe, no combination row: the product of the two factors
        (ON_STATIN & ON_EZETIMIBE & statin_known, pl.col("f_statin") * ezetimibe["factor"], pl.lit("rdrf_product")),
        # a tabulated statin and dose alone
        (ON_STATIN & statin_known & ~ON_EZETIMIBE, pl.col("f_statin"), pl.col("p_statin")),
        # a statin or dose the table lacks
        (ON_STATIN, pl.lit(fallback), pl.lit(FALLBACK_PROVENANCE)),
        (ON_EZETIMIBE, pl.lit(ezetimibe["factor"]), pl.lit(ezetimibe["provenance"])),
        # another LDL-lowering drug (resin, ...)
        (ON_OTHER, pl.lit(fallback), pl.lit(FALLBACK_PROVENANCE)),
    ]


def first_case(cases: list[tuple[pl.Expr, ...]], pick: int, otherwise: pl.Expr | None = None) -> pl.Expr:
    """Column ``pick`` of the first row of ``cases`` whose condition (column 0) holds, else
    ``otherwise`` (null when not given)."""
    expr = pl.when(cases[0][0]).then(cases[0][pick])
    for case in cases[1:]:
        expr = expr.when(case[0]).then(case[pick])
    return expr if otherwise is None else expr.otherwise(otherwise)


def pcsk9_addon(addon: dict[str, dict]) -> tuple[pl.Expr, pl.Expr]:
    """A PCSK9 inhibitor's factor (multiplied onto the base regimen; 1.0 without one) and its
    provenance, from the ``addon`` rows of the factor table by class."""
    factor = first_case([(pl.col("pcsk9_class") == k, pl.lit(v["factor"])) for k, v in addon.items()], 1, pl.lit(1.0))
    provenance = pl.when(ON_PCSK9).then(
        pl.col("pcsk9_class").replace_strict({k: v["provenance"] for k, v in addon.items()}, default=None))
    return factor, provenance


def applied_factor(raw: pl.Expr, early: pl.Expr, cap: float) -> pl.Expr:
    """The factor applied to a sample: 1.0 before the drug had time to act (decision
    ``ldl_time_to_effect``), at most ``cap`` (decision ``ldl_factor_cap``), else ``raw``."""
    return pl.when(early).then(pl.lit(1.0)).when(raw > cap).then(pl.lit(cap)).otherwise(raw)


def regimen_text() -> pl.Expr:
    """The regimen in words, e.g. ``atorvastatin 40 mg + ezetimibe`` (null when untreated)."""
    statin = pl.when(ON_STATIN).then(
        pl.when(pl.col("statin_mg").is_not_null())
        .then(pl.format("{} {} mg", pl.col("statin_drug"), _strength_text("statin_mg")))
        .otherwise(pl.col("statin_drug")))
    parts = [statin, pl.when(ON_EZETIMIBE).then(pl.lit("ezetimibe")), pl.when(ON_PCSK9).then(pl.col("pcsk9_drug")),
             pl.when(ON_OTHER).then(pl.col("other_drug"))]
    return pl.when(ON_STATIN | ON_EZETIMIBE | ON_OTHER | ON_PCSK9).then(
        pl.concat_str(parts, separator=" + ", ignore_nulls=True))


def _with_tabulated_factors(s: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """Add the factor table's statin row (``f_/p_/i_statin``) and statin + ezetimibe row
    (``f_/p_/i_combo``) for each sample's statin and dose (null where the table has none)."""

    def lookup(regimen: str, alias: str) -> pl.DataFrame:
        return table.filter(pl.col("regimen") == regimen).select(
            pl.col("drug").alias("statin_drug"),
            pl.col("strength_mg").cast(pl.Float64).alias("statin_mg"),
            pl.col("factor").alias(f"f_{alias}"),
            pl.col("provenance").alias(f"p_{alias}"),
            pl.col("nice_intensity").alias(f"i_{alias}"),
        )

    s = s.with_columns(pl.col("statin_mg").cast(pl.Float64))
    s = s.join(lookup("statin", "statin"), on=["statin_drug", "statin_mg"], how="left")
    return s.join(lookup("statin_ezetimibe", "combo"), on=["statin_drug", "statin_mg"], how="left")


def _regimen_factor(s: pl.DataFrame) -> pl.DataFrame:
    """Correction factor, its provenance, statin intensity and a readable regimen per sample."""
    table = reference.csv("ldl_correction_factors")
    cfg = reference.load("ldl_estimation_v2")["treatment"]
    cap, onset = cfg["max_factor"], cfg["time_to_effect_days"]
    ezetimibe = table.filter(pl.col("regimen") == "ezetimibe").row(0, named=True)
    addon = {r["drug"]: r for r in table.filter(pl.col("regimen") == "addon").iter_rows(named=True)}
    s = _with_tabulated_factors(s, table)
    cases = base_regimen_cases(ezetimibe, cfg["fallback_factor"])
    addon_factor, addon_provenance = pcsk9_addon(addon)
    raw = first_case(cases, 1, pl.lit(1.0)) * addon_factor
    treated = ON_STATIN | ON_EZETIMIBE | ON_OTHER | ON_PCSK9
    days_on = pl.when(treated).then((pl.col("sample_date") - pl.col("treatment_start")).dt.total_days())
    early = treated & (days_on < onset).fill_null(False)
    intensity = pl.coalesce(pl.when(ON_EZETIMIBE).then(pl.col("i_combo")), pl.col("i_statin")).replace_strict(
        {"low": 1, "medium": 2, "high": 3}, default=None, return_dtype=pl.Int8)
    s = s.with_columns(
        treated.alias("treated"),
        early.alias("early_treatment"),
        applied_factor(raw, early, cap).alias("factor"),
        days_on.cast(pl.Int32).alias("days_on_treatment"),
        pl.when(early).then(pl.lit("time_to_effect"))
        .when(treated).then(pl.concat_str(
            [first_case(cases, 2), addon_provenance, pl.when(raw > cap).then(pl.lit(f"capped at {cap:g}"))],
            separator="+", ignore_nulls=True))
        .alias("factor_source"),
        # 0 = no statin; 1-3 = NICE low/medium/high; null = statin of unknown intensity.
        pl.when(ON_STATIN).then(intensity).otherwise(pl.lit(0, dtype=pl.Int8)).alias("statin_intensity"),
        regimen_text().alias("regimen"),
    )
    return s.drop(
        [c for c in s.columns if c[:2] in ("f_", "p_", "i_")]
        + [f"{p}_{k}" for p in ("eze", "pcsk9", "other") for k in ("mg", "class")] + ["treatment_start"]
    )


# --------------------------------------------------------------------------- per-patient summaries


# Columns whose value moves every day for everyone (the run date and exact age): an
# incremental night refreshes them for the patients it does not recompute (``daily_values``).
DAILY_COLUMNS = ("as_of", "age_exact_years")


def boundary_day_counts() -> dict[str, list[int]]:
    """Day counts after a dispensing (``medication_days``: every ``*_days`` number of the LDL-C
    estimation rule - coverage, time to effect) and after a clinic outcome (``outcome_days``:
    those of the exclusions rule) on which a patient's result may change with no new data,
    each with the day before and the two after (whichever way a rule compares). The current
    version of each rule is its highest-numbered file."""

    def counts(rule: str) -> list[int]:
        (path,) = sorted(reference.RULES_DIR.glob(f"{rule}_v*.yaml"),
                         key=lambda p: int(p.stem.rsplit("_v", 1)[1]))[-1:]
        found: set[int] = set()

        def walk(node) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if isinstance(value, int) and str(key).endswith("_days"):
                        found.update((value - 1, value, value + 1, value + 2))
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(reference.load(path.stem))
        return sorted(found)

    return {"medication_days": counts("ldl_estimation"), "outcome_days": counts("exclusions")}


def daily_values(patients: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """``patient_id`` and the ``DAILY_COLUMNS`` other than ``as_of`` for everyone in ``patients``."""
    return _persons(patients, as_of).select("patient_id", *[c for c in DAILY_COLUMNS if c != "as_of"])


def _persons(patients: pl.DataFrame, as_of: date) -> pl.DataFrame:
    at = pl.lit(as_of)
    return patients.with_columns(
        age_at(pl.col("birth_date"), at).alias("age_years"),
        ((at - pl.col("birth_date")).dt.total_days() / 365.25).alias("age_exact_years"),
        pl.col("sex").replace_strict({"M": 1, "F": 0}, default=None, return_dtype=pl.Int8).alias("sex_male"),
        (pl.col("deceased_date") <= at).fill_null(False).alias("is_deceased"),
        (pl.col("moved_out_date") <= at).fill_null(False).alias("is_moved_out"),
    ).with_columns(
        (pl.col("age_years") < 18).alias("is_child"),
        # Dates after the run date were not known on it.
        pl.when(pl.col("is_deceased")).then(pl.col("deceased_date")).alias("deceased_date"),
        pl.when(pl.col("is_moved_out")).then(pl.col("moved_out_date")).alias("moved_out_date"),
    )


# THE scoring sample's columns (``scoring_ldl``) -> their feature names.
INDEX_SAMPLE_COLUMNS = {
    "ldl_estimate": "ldl_untreated_estimate_mmol", "sample_date": "ldl_estimate_date",
    "age_at_sample": "ldl_estimate_age", "ldl": "ldl_estimate_measured_mmol",
    "ldl_source": "ldl_estimate_source", "treated": "ldl_estimate_treated",
    "regimen": "ldl_estimate_regimen", "factor": "ldl_correction_factor",
    "factor_source": "ldl_correction_source", "statin_intensity": "ldl_estimate_statin_intensity",
    "tc": "tc_at_estimate_mmol", "hdl": "hdl_at_estimate_mmol", "tg": "tg_at_estimate_mmol",
    "ldl_basis": "ldl_estimate_basis", "days_on_treatment": "ldl_estimate_days_on_treatment",
}


def child_ldl() -> list[pl.Expr]:
    """Paediatric criteria (EAS 2015): the highest and second-highest untreated LDL-C sampled
    before 18, and the day of the highest (per-patient aggregations)."""
    untreated_child = (pl.col("age_at_sample") < 18) & ~pl.col("treated")
    values = pl.col("ldl").filter(untreated_child).sort(descending=True)
    return [
        values.first().alias("child_ldl_max_mmol"),
        values.slice(1, 1).first().alias("child_ldl_second_mmol"),
        pl.col("sample_date").filter(untreated_child).sort_by(pl.col("ldl").filter(untreated_child), descending=True)
        .first().alias("child_ldl_max_date"),
    ]


def ldl_by_age() -> list[pl.Expr]:
    """The highest LDL-C sampled in the age bands the rules read (per-patient aggregations);
    the adult laboratory flag reads adults' samples only (decision children_eas2015)."""
    ldl, age = pl.col("ldl"), pl.col("age_at_sample")
    return [
        pl.when(age < 40).then(ldl).max().alias("ldl_max_age_lt40_mmol"),
        pl.when(age.is_between(18, 39)).then(ldl).max().alias("ldl_max_age_18_39_mmol"),
        pl.when(age >= 40).then(ldl).max().alias("ldl_max_age_ge40_mmol"),
    ]


def _ldl_history(ldl: pl.DataFrame) -> pl.DataFrame:
    """Per patient: how many LDL-C samples, first and last, median, trend, and the
    ``child_ldl`` and ``ldl_by_age`` values."""
    years = pl.col("years")
    below_40, adult_below_40, from_40 = ldl_by_age()
    return ldl.group_by("patient_id").agg(
        pl.len().cast(pl.Int32).alias("n_ldl_results"),
        pl.col("sample_date").min().alias("ldl_first_date"),
        pl.col("sample_date").max().alias("ldl_last_date"),
        pl.col("ldl").sort_by("sample_date").last().alias("ldl_last_mmol"),
        pl.col("ldl").median().alias("ldl_median_mmol"),
        (pl.cov(years, pl.col("ldl")) / pl.cov(years, years)).alias("ldl_slope_mmol_per_year"),
        years.max().alias("ldl_span_years"),
        pl.col("treated").sum().cast(pl.Int32).alias("n_samples_treated"),
        below_40,
        adult_below_40,
        *child_ldl(),
        from_40,
    ).with_columns(pl.col("ldl_slope_mmol_per_year").fill_nan(None))


def _ldl_summary(samples: pl.DataFrame) -> pl.DataFrame:
    # Years since the patient's first LDL sample, as a column: the slope's cov/var over plain
    # columns takes polars' fast grouped path (an expression inside the group-by took the slow
    # per-group one, ~3x the CPU). var(x) is written cov(x, x), the same two-pass sum that the
    # per-group var() computes, so the slope keeps every bit.
    first = pl.col("sample_date").min().over("patient_id")
    ldl = samples.filter(pl.col("ldl").is_not_null()).with_columns(
        ((pl.col("sample_date") - first).dt.total_days() / 365.25).alias("years"))
    highest = _top(ldl, ["ldl", "sample_date"], [True, True], {
        "ldl": "ldl_max_mmol", "sample_date": "ldl_max_date", "age_at_sample": "ldl_max_age",
        "ldl_source": "ldl_max_source", "treated": "ldl_max_treated", "regimen": "ldl_max_regimen",
    })
    untreated = _top(ldl.filter(~pl.col("treated")), ["ldl", "sample_date"], [True, True], {
        "ldl": "ldl_max_untreated_mmol", "sample_date": "ldl_max_untreated_date",
        "age_at_sample": "ldl_max_untreated_age",
    })
    index = scoring_ldl(ldl).select("patient_id", *[pl.col(k).alias(v) for k, v in INDEX_SAMPLE_COLUMNS.items()])
    return _ldl_history(ldl).join(highest, on="patient_id").join(untreated, on="patient_id", how="left") \
        .join(index, on="patient_id").with_columns(
            (pl.col("tc_at_estimate_mmol") - pl.col("hdl_at_estimate_mmol")).alias("non_hdl_at_estimate_mmol")
        )


def _other_lipids(samples: pl.DataFrame, lab_days: pl.DataFrame) -> pl.DataFrame:
    """Per patient: the highest TC, HDL-C, TG (and the TC sample's day, age and treatment),
    Lp(a) and apoB."""
    tc = samples.filter(pl.col("tc").is_not_null())
    out = samples.group_by("patient_id").agg(
        pl.col("tc").max().alias("tc_max_mmol"),
        pl.col("hdl").max().alias("hdl_max_mmol"),
        pl.col("tg").max().alias("tg_max_mmol"),
    )
    top_tc = _top(tc, ["tc", "sample_date"], [True, True], {
        "sample_date": "tc_max_date", "age_at_sample": "tc_max_age", "treated": "tc_max_treated"})
    top_tc_untreated = _top(tc.filter(~pl.col("treated")), ["tc", "sample_date"], [True, True], {
        "tc": "tc_max_untreated_mmol", "sample_date": "tc_max_untreated_date",
        "age_at_sample": "tc_max_untreated_age"})
    others = lab_days.group_by("patient_id").agg(
        pl.col("lpa_max").max().alias("lpa_max_mg_l"),
        pl.col("lpa_molar_max").max().alias("lpa_molar_max_nmol_l"),
        pl.col("apob_max").max().alias("apob_max_g_l"),
    )
    return out.join(top_tc, on="patient_id", how="left").join(top_tc_untreated, on="patient_id", how="left") \
        .join(others, on="patient_id", how="full", coalesce=True)


def _treatment_summary(meds: pl.DataFrame, as_of: date) -> pl.DataFrame:
    coverage = reference.load("ldl_estimation_v2")["treatment"]["coverage_days"]
    disp = _lipid_drugs(meds)
    now = disp.filter((pl.lit(as_of) - pl.col("dispensed_on")).dt.total_days() <= coverage)
    now_samples = now.group_by("patient_id").agg(pl.lit(as_of + timedelta(days=1)).alias("sample_date"))
    now_regimen = treatment_at_samples(now_samples, meds).select(
        "patient_id", pl.col("statin_intensity").alias("statin_intensity_now"),
        pl.col("regimen").alias("regimen_now"))
    return disp.group_by("patient_id").agg(
        pl.lit(True).alias("lipid_lowering_ever"),
        pl.col("dispensed_on").min().alias("lipid_lowering_first_date"),
        pl.col("class").is_in(["ezetimibe", "statin_ezetimibe"]).any().alias("ezetimibe_ever"),
        pl.col("class").str.starts_with("pcsk9").any().alias("pcsk9_ever"),
        ((pl.lit(as_of) - pl.col("dispensed_on")).dt.total_days() <= coverage).any().alias("lipid_lowering_now"),
    ).join(now_regimen, on="patient_id", how="left")


def _near(rows: pl.DataFrame, how: str, before: int, after: int, name: str, date_name: str) -> pl.DataFrame:
    """The highest (``how='max'``) or lowest value among one analyte's ``rows`` from ``before``
    days before to ``after`` days after each patient's index sample (``index_date``), with its date."""
    delta = (pl.col("sample_date") - pl.col("index_date")).dt.total_days()
    rows = rows.filter((delta >= -before) & (delta <= after))
    return _top(rows, ["value", "sample_date"], [how == "max", True],
                {"value": name, "sample_date": date_name})


def _secondary(lab_days: pl.DataFrame, meds: pl.DataFrame, ldl: pl.DataFrame) -> pl.DataFrame:
    cfg = reference.load("secondary_v2")
    w, chol = cfg["window_days"], cfg["cholestasis_days_before"]
    index = ldl.select("patient_id", pl.col("ldl_estimate_date").alias("index_date"))
    specs = [
        ("tsh", "max", w, w, "sec_tsh_max_miu_l"),
        ("hba1c", "max", w, w, "sec_hba1c_max_mmol_mol"),
        ("tg", "max", w, w, "sec_tg_max_mmol"),
        ("albumin", "min", w, w, "sec_albumin_min_g_l"),
        ("uacr", "max", w, w, "sec_uacr_max_mg_mmol"),
        ("alp", "max", chol, 0, "sec_alp_max_u_l"),
        ("ggt", "max", chol, 0, "sec_ggt_max_u_l"),
        ("alat", "max", w, w, "sec_alat_max_u_l"),
        ("egfr", "min", w, w, "sec_egfr_min"),
        ("creatinine", "max", w, w, "sec_creatinine_max_umol_l"),
    ]
    # The day's highest (lowest) value of each analyte (``lab_days``: ``<analyte>_max``/``_min``)
    # is all the highest (lowest) near the index needs; one join for all analytes.
    near = lab_days.select("patient_id", "sample_date", *[f"{a}_{how}" for a, how, *_ in specs]).join(index, on="patient_id")
    out = index.select("patient_id")
    for analyte, how, before, after, name in specs:
        rows = near.select("patient_id", "sample_date", "index_date", pl.col(f"{analyte}_{how}").alias("value"))
        rows = rows.drop_nulls("value")
        out = out.join(_near(rows, how, before, after, name, f"sec_{analyte}_date"), on="patient_id", how="left")
    prefixes = tuple(cfg["drug_atc_prefixes"])
    drugs = meds.filter(pl.any_horizontal(pl.col("atc_code").str.starts_with(p) for p in prefixes))
    drugs = drugs.join(index, on="patient_id").filter(
        (pl.col("dispensed_on") <= pl.col("index_date"))
        & ((pl.col("index_date") - pl.col("dispensed_on")).dt.total_days() <= cfg["drug_window_days"])
    )
    drug = _top(drugs, ["dispensed_on", "atc_code"], [True, False],
                {"atc_code": "sec_drug_atc", "dispensed_on": "sec_drug_date"})
    return out.join(drug, on="patient_id", how="left")


def _diagnoses(dx: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    ex = reference.load("exclusions_v2")
    code = pl.col("icd10_code")
    dx = dx.join(persons.select("patient_id", "birth_date"), on="patient_id", how="left")

    def first(cond: pl.Expr, stem: str) -> list[pl.Expr]:
        d = pl.col("diagnosed_on").filter(cond).min()
        return [d.alias(f"{stem}_first_date"), age_at(pl.col("birth_date").first(), d).alias(f"{stem}_first_age")]

    # fh_diagnosis: the recorded E78.0 family (a model input, unchanged); fh_diagnosis_specific:
    # FH itself (SKS DE780B, ICD-10-CM E78.01), the only codes that mean "already diagnosed".
    fh_cond = pl.any_horizontal(code.str.starts_with(p) for p in ex["hypercholesterolaemia_code_prefixes"])
    specific = code.is_in(ex["already_diagnosed_codes"])
    plain = fh_cond & ~specific
    return dx.group_by("patient_id").agg(
        code.filter(specific).sort_by(pl.col("diagnosed_on").filter(specific)).first().alias("fh_specific_code"),
        pl.col("diagnosed_on").filter(specific).min().alias("fh_specific_date"),
        code.filter(plain).sort_by(pl.col("diagnosed_on").filter(plain)).first().alias("e780_code"),
        pl.col("diagnosed_on").filter(plain).min().alias("e780_date"),
        *first(pl.any_horizontal(code.str.starts_with(p) for p in CHD_PREFIXES), "chd"),
        *first(pl.any_horizontal(code.str.starts_with(p) for p in OTHER_CVD_PREFIXES), "other_cvd"),
        fh_cond.any().alias("fh_diagnosis"),
        code.filter(fh_cond).sort_by(pl.col("diagnosed_on").filter(fh_cond)).first().alias("fh_diagnosis_code"),
        pl.col("diagnosed_on").filter(fh_cond).min().alias("fh_diagnosis_date"),
        specific.any().alias("fh_diagnosis_specific"),
    )


def _family_history(fam: pl.DataFrame) -> pl.DataFrame:
    return fam.group_by("patient_id").agg(
        *[(pl.col("item") == item).any().alias(f"fhx_{item}") for item in FAMILY_HISTORY_ITEMS],
        pl.col("recorded_on").max().alias("fhx_recorded_on"),
        pl.lit(True).alias("fhx_any_recorded"),
    )


def _clinic(outcomes: pl.DataFrame) -> pl.DataFrame:
    confirmed = reference.load("exclusions_v2")["confirmed_outcomes"]
    is_conf = pl.col("outcome").is_in(confirmed)
    ordered = outcomes.sort("patient_id", "outcome_date")
    return ordered.group_by("patient_id", maintain_order=True).agg(
        is_conf.any().alias("clinic_confirmed_fh"),
        pl.col("outcome_date").filter(is_conf).min().alias("clinic_confirmed_date"),
        pl.col("gene").drop_nulls().last().alias("clinic_gene"),
        # A causative variant only where the clinic concluded genetic FH: a gene named beside
        # another outcome (e.g. a variant of uncertain significance) is not one (decision dna_causative_only).
        (pl.col("outcome") == "fh_genetic").any().alias("clinic_dna_variant"),
        pl.col("outcome_date").filter(pl.col("outcome") == "not_fh").max().alias("clinic_not_fh_date"),
        pl.col("outcome").last().alias("clinic_last_outcome"),
        pl.col("outcome_date").last().alias("clinic_last_outcome_date"),
    )


# The columns of a person's own features that ``relative_evidence`` reads: an incremental
# night takes them from the stored ``patient_features`` of relatives it does not recompute.
EVIDENCE_COLUMNS = ("patient_id", "sex", "clinic_confirmed_fh", "fh_diagnosis_specific", "chd_first_age",
                    "ldl_percentile", "age_years", "ldl_untreated_estimate_mmol", "ldl_estimate_age", "tc_max_age",
                    "tc_max_mmol", "fhx_tendon_xanthoma", "fhx_arcus_before_45", "clinic_dna_variant")


def relative_evidence(person: pl.DataFrame) -> pl.DataFrame:
    """What each person's own features say about them as someone's relative (``relative_id``
    and one flag per item the family criteria ask about: DLCN, Simon Broome, MEDPED, EAS 2015).
    Reads only ``EVIDENCE_COLUMNS``."""
    dlcn = reference.load("dlcn_v1")
    sb = reference.load("simon_broome_v1")
    premature = pl.when(pl.col("sex") == "F").then(dlcn["premature_age"]["F"]).when(
        pl.col("sex") == "M").then(dlcn["premature_age"]["M"]).otherwise(dlcn["premature_age"]["U"])
    tc_raised = pl.when(pl.col("tc_max_age") < sb["child_age"]).then(
        pl.col("tc_max_mmol") > sb["family_tc"]["child_relative_above"]).otherwise(
        pl.col("tc_max_mmol") > sb["family_tc"]["adult_relative_above"])
    starr = lipids.relative_ldl_category(pl.col("ldl_untreated_estimate_mmol"), pl.col("ldl_estimate_age"), pl.col("sex"))
    person = person.select(EVIDENCE_COLUMNS)
    return person.select(
        pl.col("patient_id").alias("relative_id"),
        (pl.col("clinic_confirmed_fh").fill_null(False) | pl.col("fh_diagnosis_specific").fill_null(False))
        .alias("confirmed"),
        (pl.col("chd_first_age") < premature).fill_null(False).alias("premature_chd"),
        (pl.col("chd_first_age") < sb["family_mi_age"]["first_degree_before"]).fill_null(False).alias("chd60"),
        (pl.col("chd_first_age") < sb["family_mi_age"]["second_degree_before"]).fill_null(False).alias("chd50"),
        pl.col("ldl_percentile"),
        (pl.col("age_years") < dlcn["adult_age"]).alias("is_child"),
        (starr == "likely").fill_null(False).alias("ldl_likely"),
        tc_raised.fill_null(False).alias("tc_raised"),
        (pl.col("fhx_tendon_xanthoma").fill_null(False) | pl.col("fhx_arcus_before_45").fill_null(False))
        .alias("xanthoma_or_arcus"),
        pl.col("fhx_tendon_xanthoma").fill_null(False).alias("xanthoma"),
        pl.col("clinic_dna_variant").fill_null(False).alias("genetic"),
        ((starr == "likely").fill_null(False) | tc_raised.fill_null(False)
         | pl.col("clinic_confirmed_fh").fill_null(False)).alias("high_cholesterol"),
    )


def _any(flag: str, name: str) -> pl.Expr:
    return pl.col(flag).fill_null(False).any().alias(name)


def first_degree_summary() -> list[pl.Expr]:
    """Per patient, from their first-degree relatives' ``relative_evidence`` (with
    ``relationship``): the family items of the criteria (aggregations)."""
    parent = pl.col("relationship") == "parent"
    return [
        pl.len().cast(pl.Int32).alias("n_fdr"),
        _any("confirmed", "fdr_confirmed_fh"),
        _any("premature_chd", "fdr_premature_chd"),
        _any("chd60", "fdr_chd_before_60"),
        pl.col("ldl_percentile").max().alias("fdr_ldl_pct_max"),
        pl.when((pl.col("relationship") == "child") & pl.col("is_child")).then(pl.col("ldl_percentile"))
        .max().alias("child_ldl_pct_max"),
        _any("ldl_likely", "fdr_ldl_likely"),
        _any("tc_raised", "fdr_tc_raised"),
        _any("xanthoma_or_arcus", "fdr_xanthoma_or_arcus"),
        _any("xanthoma", "fdr_tendon_xanthoma"),
        # EAS 2015 paediatric criteria: a parent with a genetic diagnosis / high cholesterol.
        (parent & pl.col("genetic")).fill_null(False).any().alias("parent_genetic_fh"),
        (parent & pl.col("high_cholesterol")).fill_null(False).any().alias("parent_high_cholesterol"),
    ]


def second_degree_summary() -> list[pl.Expr]:
    """Per patient, from their second-degree relatives' ``relative_evidence`` (aggregations)."""
    return [
        pl.len().cast(pl.Int32).alias("n_sdr"),
        _any("confirmed", "sdr_confirmed_fh"),
        _any("chd50", "sdr_chd_before_50"),
        _any("tc_raised", "sdr_tc_raised"),
        _any("xanthoma", "sdr_tendon_xanthoma"),
    ]


def _relatives(relations: pl.DataFrame, person: pl.DataFrame, known: pl.DataFrame | None) -> pl.DataFrame:
    """Relatives' evidence per patient from the relatives' own features (``person``; for
    relatives not in it, their stored features ``known``: ``EVIDENCE_COLUMNS``)."""
    # The one family graph (``family.relatives``): siblings through a shared recorded parent
    # are first degree, half-siblings second degree, exactly as the cascade sees them.
    # Only the patients of ``person`` are index cases: a relations table read for an
    # incremental night's 26,000 patients names 83,000 people, whose own relatives nobody here needs.
    graph = family.relatives(relations, person["patient_id"], None).rename({"index_patient_id": "patient_id"})
    first = graph.filter(pl.col("degree") == 1).select("patient_id", "relative_id", "relationship")
    second = graph.filter(pl.col("degree") == 2).select("patient_id", "relative_id")
    ev = relative_evidence(person if known is None else pl.concat(
        [person.select(EVIDENCE_COLUMNS), known.join(person, on="patient_id", how="anti").select(
            pl.col(c).cast(t) for c, t in person.select(EVIDENCE_COLUMNS).schema.items())]))
    fdr = first.join(ev, on="relative_id", how="left").group_by("patient_id").agg(*first_degree_summary())
    sdr = second.join(ev, on="relative_id", how="left").group_by("patient_id").agg(*second_degree_summary())
    return fdr.join(sdr, on="patient_id", how="full", coalesce=True)


# --------------------------------------------------------------------------- assembly

_FALSE_IF_MISSING = (
    "lipid_lowering_ever", "lipid_lowering_now",
    "ezetimibe_ever", "pcsk9_ever", "fh_diagnosis", "fh_diagnosis_specific",
    *(f"fhx_{i}" for i in FAMILY_HISTORY_ITEMS), "fhx_any_recorded", "clinic_confirmed_fh",
    "clinic_dna_variant", "fdr_confirmed_fh", "sdr_confirmed_fh", "fdr_premature_chd", "fdr_chd_before_60",
    "sdr_chd_before_50", "fdr_ldl_likely", "fdr_tc_raised", "sdr_tc_raised", "fdr_xanthoma_or_arcus",
    "fdr_tendon_xanthoma", "sdr_tendon_xanthoma", "parent_genetic_fh", "parent_high_cholesterol",
)
_ZERO_IF_MISSING = ("n_ldl_results", "n_samples_treated", "n_fdr", "n_sdr", "n_lab_results")


def build_features(inputs: Inputs, as_of: date, known: pl.DataFrame | None = None) -> pl.DataFrame:
    """``patient_features``: one row per patient in ``inputs.patients`` as of ``as_of``.
    ``known``: the stored own features (``EVIDENCE_COLUMNS``) of relatives whose inputs were
    not read (an incremental night: their own features have not changed)."""
    return with_relatives(own_features(inputs, as_of), inputs.relations, as_of, known)


def own_features(inputs: Inputs, as_of: date) -> pl.DataFrame:
    """The features that each patient's own records decide (all but the relatives' summaries,
    ``n_missing_core`` and ``as_of``), one row per patient in ``inputs.patients``. An
    incremental night builds them once, when its plan checks whose evidence as a relative
    changed, and finishes them with ``with_relatives`` in the partition."""
    persons = _persons(inputs.patients, as_of)
    samples = lipid_samples(inputs.lab_days, persons, inputs.medications)
    ldl = _ldl_summary(samples).join(persons.select("patient_id", "sex"), on="patient_id", how="left") \
        .with_columns(lipids.ldl_percentile(pl.col("ldl_untreated_estimate_mmol"), pl.col("ldl_estimate_age"),
                                            pl.col("sex")).alias("ldl_percentile")).drop("sex")
    person = persons.drop("birth_date")
    for part in (
        ldl,
        _other_lipids(samples, inputs.lab_days),
        _treatment_summary(inputs.medications, as_of),
        _secondary(inputs.lab_days, inputs.medications, ldl),
        _diagnoses(inputs.diagnoses, persons),
        _family_history(inputs.family_history),
        _clinic(inputs.clinic_outcomes),
        inputs.lab_days.group_by("patient_id").agg(pl.col("n_results").sum().cast(pl.Int32).alias("n_lab_results")),
    ):
        person = person.join(part, on="patient_id", how="left")
    return person.join(_ldl_before_not_fh(samples, person), on="patient_id", how="left")


# The own feature that follows the relatives' summaries in ``patient_features`` (column order).
_AFTER_RELATIVES = "ldl_max_to_not_fh_mmol"


def with_relatives(own: pl.DataFrame, relations: pl.DataFrame, as_of: date,
                   known: pl.DataFrame | None = None) -> pl.DataFrame:
    """``patient_features`` from the patients' ``own_features``: their relatives' summaries
    (from ``relations``, the relatives' own features in ``own`` or else ``known``), what a
    score still needs (``n_missing_core``) and the run date."""
    relatives = _relatives(relations, own, known)
    person = own.join(relatives, on="patient_id", how="left").select(
        *(c for c in own.columns if c != _AFTER_RELATIVES), *(c for c in relatives.columns if c != "patient_id"),
        _AFTER_RELATIVES)
    person = person.with_columns(
        [pl.col(c).fill_null(False) for c in _FALSE_IF_MISSING]
        + [pl.col(c).fill_null(0) for c in _ZERO_IF_MISSING]
    )
    return person.with_columns(*_completeness(), pl.lit(as_of).alias("as_of")).sort("patient_id")


def _ldl_before_not_fh(samples: pl.DataFrame, person: pl.DataFrame) -> pl.DataFrame:
    """``ldl_max_to_not_fh_mmol``: the highest LDL-C sampled up to a lipid clinic's not_fh
    outcome, against which a later value counts as new evidence (exclusions_v2)."""
    dates = person.filter(pl.col("clinic_not_fh_date").is_not_null()).select("patient_id", "clinic_not_fh_date")
    return samples.join(dates, on="patient_id").filter(
        pl.col("ldl").is_not_null() & (pl.col("sample_date") <= pl.col("clinic_not_fh_date"))
    ).group_by("patient_id").agg(pl.col("ldl").max().alias("ldl_max_to_not_fh_mmol"))


def _completeness() -> list[pl.Expr]:
    """What is missing that a score needs (counted; the rules name the items)."""
    missing = [
        pl.col("ldl_untreated_estimate_mmol").is_null(),
        pl.col("tc_max_mmol").is_null(),
        ~pl.col("fhx_any_recorded") & (pl.col("n_fdr") == 0),
        ~(pl.col("fhx_tendon_xanthoma") | pl.col("fhx_arcus_before_45")),
        pl.col("clinic_gene").is_null() & ~pl.col("clinic_dna_variant"),
        pl.col("sec_tsh_max_miu_l").is_null(),
        pl.col("sec_hba1c_max_mmol_mol").is_null(),
    ]
    return [pl.sum_horizontal(m.cast(pl.Int8) for m in missing).cast(pl.Int32).alias("n_missing_core")]


def ldl_series(con, patient_ids: list[str], as_of: date,
               labs: pl.DataFrame | None = None) -> dict[str, list[tuple[date, float]]]:
    """Per patient, the LDL-C of every sample day exactly as the features see it
    (``features.build.lipid_samples``: measured, lab-calculated or derived), so the trend chart
    and its "highest" agree with the table's highest LDL-C. ``labs``: these patients' usable
    lipid results when the caller has read them already (the worklist does, for its table)."""
    if not patient_ids:
        return {}
    con.register("_listed", pl.DataFrame({"patient_id": patient_ids}, schema={"patient_id": pl.Utf8}))
    try:
        if labs is None:
            labs = con.execute(
                """SELECT patient_id, result_id, sampled_at, sample_date, analyte, method, value
                   FROM usable_lipid_results(?) WHERE patient_id IN (SELECT patient_id FROM _listed)""",
                [as_of]).pl()
        people = con.execute("SELECT patient_id, birth_date, sex FROM patients "
                             "WHERE patient_id IN (SELECT patient_id FROM _listed)").pl()
    finally:
        con.unregister("_listed")
    inputs = make_inputs(patients=people, lab_results=labs)
    samples = lipid_samples(inputs.lab_days, inputs.patients, inputs.medications)
    series = samples.filter(pl.col("ldl").is_not_null()).sort("patient_id", "sample_date") \
        .group_by("patient_id", maintain_order=True).agg("sample_date", "ldl")
    return {r["patient_id"]: list(zip(r["sample_date"], r["ldl"])) for r in series.iter_rows(named=True)}
