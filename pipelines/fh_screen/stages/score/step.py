"""The ``score`` step: a probability of FH for everyone the scorer is for, calibrated to
the region it runs in (``calibration``), with its plain-language reasons.

The model reads one patient's features at a time, so it runs inside each family partition's
task, right after its features and rules (``build_partition``: the partition's features file
in, its eligible patients' ``patient_id``, uncalibrated model score and known-case flag out,
memory set by the partition). The step is then the gather: the region calibration needs every
score, so it is fitted here over all the partitions' files, then the most probable are
explained and ``model_scores`` written (``score_region``). Each person's score depends on
their own row alone (``model.calibrated_positive``), so scores from the partitions are those
of scoring the whole region at once, to the last bit.

On an incremental night the only partition holds the patients whose features were rebuilt,
but every eligible person's score changes: the production model reads the exact age. The
step therefore scores everyone else from the store, in ranges of ``RANGE_PEOPLE`` patients,
with the same function (``scored_people``) on the rows the features step has just brought to
tonight (their age refreshed). A partition's patients' stored rows are the rows it built, so
both sources give the scores a full recomputation would. Scoring the partition's patients
apart saves little on such a night (a few per cent of the region), but keeps one rule: a
partition scores whom it built, the gather scores whom no partition holds. Where tonight's
partitions have no score files of this model (none made, one missing, the model changed since
they ran), the step scores everyone from the store, with the same function.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fh_screen.context import RunContext, log, measured
from fh_screen.errors import UserError
from fh_screen.reference import bands
from fh_screen.stages.features import partitions as feature_parts
from fh_screen.stages.score import artefact, calibration, explain, spec
from fh_screen.stages.score.outcomes import assessed_referrals
from fh_screen.stages.score.model import RegionScorer
from fh_screen.store import db, files

NAME = "score"

EXPLAIN_ABOVE = 0.05   # probability above which a patient gets model reasons ...
EXPLAIN_AT_MOST = 1000  # ... among the most probable (explaining costs one prediction per input)
# Patients whose model inputs (about 50 columns) the score step holds at a time when it scores
# from the store; only their id, model score and known-case flag (``SCORED``) are kept for the
# whole region (``score_region``).
RANGE_PEOPLE = 250_000
# What a partition (or a range of the store) hands to the region calibration: uncalibrated.
SCORED = {"patient_id": pl.Utf8, "model_score": pl.Float64, "known_case": pl.Boolean}

# model_logit: logit of the model's score behind the probability, kept with each listing
# (referral_events) so that outcome recalibration fits on the forecast made at listing.
SCHEMA = {"patient_id": pl.Utf8, "probability": pl.Float64, "probability_band": pl.Utf8, "known_case": pl.Boolean,
          "model_name": pl.Utf8, "model_version": pl.Utf8, "reasons": pl.Utf8, "reason_items": pl.Utf8,
          "model_logit": pl.Float64}


def explained_positions(probability: np.ndarray) -> np.ndarray:
    """Positions (ascending) of the people who get model reasons: the ``EXPLAIN_AT_MOST``
    most probable (ties in the order given), of those only above ``EXPLAIN_ABOVE``."""
    ranked = np.argsort(-probability, kind="stable")[:EXPLAIN_AT_MOST]
    return np.sort(ranked[probability[ranked] >= EXPLAIN_ABOVE])


def scores_table(patient_id: pl.Series, probability: np.ndarray, known: pl.Series, meta: dict,
                 reasons: tuple[np.ndarray, np.ndarray], model_logit: np.ndarray | None) -> pl.DataFrame:
    """``model_scores`` rows (``SCHEMA``) of the scored people, in the order given."""
    texts, items = reasons
    return pl.DataFrame(
        {
            "patient_id": patient_id,
            "probability": probability.astype(np.float64),
            "probability_band": pl.Series([bands.band_of(p) for p in probability], dtype=pl.Utf8),
            "known_case": known.cast(pl.Boolean),
            "model_name": meta["name"],
            "model_version": meta["version"],
            "reasons": pl.Series(texts.tolist(), dtype=pl.Utf8),
            "reason_items": pl.Series(items.tolist(), dtype=pl.Utf8),
            "model_logit": pl.Series(model_logit.tolist() if model_logit is not None else [None] * len(probability),
                                     dtype=pl.Float64),
        },
        schema=SCHEMA,
    )


def _reasons(estimator, X_chosen: np.ndarray, chosen: np.ndarray, n: int, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Reason texts and items for ``n`` people, filled in at the ``chosen`` positions (whose
    model inputs are ``X_chosen``), empty elsewhere."""
    texts = np.full(n, "", dtype=object)
    items = np.full(n, "[]", dtype=object)
    if chosen.size:
        reference_values = np.array([meta["reference_values"][c] for c in meta["feature_schema"]])
        texts[chosen], items[chosen] = explain.reasons(estimator, X_chosen, reference_values)
    return texts, items


def model_inputs(con, columns: list[str]) -> pl.DataFrame:
    """The columns of ``patient_features`` that eligibility, calibration and the model read
    (about 50 of 129): DuckDB reads and converts only these, a fifth of the time of every column.
    In patient order: an incremental night leaves the table's rows in no particular order, and
    the scores, the calibration's sums and which ties are explained must not depend on it."""
    return con.execute(f"SELECT {_input_columns(con, columns)} FROM patient_features ORDER BY patient_id").pl()


def region_scorer(estimator, features: pl.DataFrame, outcomes: pl.DataFrame, meta: dict,
                  prevalence: float) -> tuple[RegionScorer, calibration.RegionCalibration, np.ndarray, np.ndarray]:
    """The artefact with tonight's region calibration (see ``calibration``), the record for
    the manifest, and the probability and logit of the model score of every eligible person
    (the model runs once). ``outcomes``: ``outcomes.assessed_referrals``."""
    people = spec.eligible(features)
    score = estimator.labelled_score(spec.matrix(people, meta["feature_schema"])) if people.height else np.zeros(0)
    record = _calibrated(score, spec.known_case(people), outcomes, estimator, prevalence)
    return RegionScorer(estimator, record.mapping()), record, record.mapping().apply(score), calibration.logit(score)


def _calibrated(score: np.ndarray, known: pl.Series, outcomes: pl.DataFrame, estimator,
                prevalence: float) -> calibration.RegionCalibration:
    """Tonight's region calibration of the model scores (``outcomes``: ``assessed_referrals``)."""
    return calibration.calibrate_region(
        score, known.to_numpy(), outcomes["confirmed"].to_numpy().astype(np.float64),
        outcomes["model_logit"].to_numpy(), estimator.mapping(), prevalence)


def _input_columns(con, columns: list[str]) -> str:
    """The columns ``model_inputs`` reads, as a select list (``_wanted``)."""
    available = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'patient_features'").fetchall()}
    return ", ".join(f'"{c}"' for c in _wanted(available, columns))


def _wanted(available, columns: list[str]) -> list[str]:
    """What scoring reads of the ``available`` feature columns: id, eligibility, known case and
    the model inputs, those of them that exist (``spec.matrix`` names any model input missing)."""
    present = set(available)
    wanted = dict.fromkeys(["patient_id", *spec.ELIGIBILITY_COLUMNS, *spec.KNOWN_CASE_COLUMNS, *columns])
    return [c for c in wanted if c in present]


def model_input_chunks(con, columns: list[str], people: int):
    """``model_inputs`` in consecutive ranges of about ``people`` patients, in patient order:
    memory is set by the range, not by the region."""
    bounds = [r[0] for r in con.execute(
        "SELECT patient_id FROM (SELECT patient_id, row_number() OVER (ORDER BY patient_id) - 1 AS i "
        "FROM patient_features) WHERE i % $n = 0 ORDER BY 1", {"n": people}).fetchall()]
    select = f"SELECT {_input_columns(con, columns)} FROM patient_features"
    for lo, hi in zip(bounds, [*bounds[1:], None]):
        where = "WHERE patient_id >= $lo" + ("" if hi is None else " AND patient_id < $hi")
        params = {"lo": lo} if hi is None else {"lo": lo, "hi": hi}
        yield con.execute(f"{select} {where} ORDER BY patient_id", params).pl()


def scored_people(features: pl.DataFrame, estimator, columns: list[str]) -> pl.DataFrame:
    """``SCORED`` rows of the eligible people among ``features``: the per-patient part of the
    step, the same function in a family partition and in a range of the store. A person's
    score depends on their own row alone (``model.calibrated_positive``)."""
    people = spec.eligible(features)
    score = estimator.labelled_score(spec.matrix(people, columns)) if people.height else np.zeros(0)
    return pl.DataFrame({"patient_id": people["patient_id"], "model_score": score,
                         "known_case": spec.known_case(people)}, schema=SCORED)


def _scored(con, estimator, columns: list[str], people: int,
            gathered: tuple[list[str], pl.DataFrame | None] | None) -> pl.DataFrame:
    """``SCORED`` rows of every eligible person, in patient order: the partitions' files
    (``gathered``: the files and whom they hold, None for everyone), and whoever they do not
    hold scored from the store a range at a time."""
    paths, held = gathered if gathered is not None else ([], None)
    parts = [db.present_rows(con, paths)] if paths else []   # not someone erased since the partitions ran
    if not paths or held is not None:
        # The held patients (a few per cent of a range) are dropped from each range as read.
        parts += [scored_people(chunk if held is None else chunk.join(held, on="patient_id", how="anti"),
                                estimator, columns)
                  for chunk in model_input_chunks(con, columns, people)]
    return pl.concat([pl.DataFrame(schema=SCORED), *parts]).sort("patient_id")


def score_region(con, estimator, meta: dict, prevalence: float, people: int,
                 gathered: tuple[list[str], pl.DataFrame | None] | None = None
                 ) -> tuple[pl.DataFrame, calibration.RegionCalibration]:
    """``model_scores`` of the whole region and tonight's calibration record from the people
    ``_scored`` returns (the partitions' files, the store in ranges of about ``people``
    patients): the same rows as ``region_scorer`` over every patient at once. Only the
    explained people's inputs are read again, after the calibration."""
    columns = meta["feature_schema"]
    scored = _scored(con, estimator, columns, people, gathered)
    ids, score, known = scored["patient_id"], scored["model_score"].to_numpy(), scored["known_case"]
    record = _calibrated(score, known, assessed_referrals(con), estimator, prevalence)
    probability = record.mapping().apply(score)
    chosen = explained_positions(probability)
    con.register("_explained", pl.DataFrame({"patient_id": ids.gather(chosen)}))
    try:
        explained = con.execute(f"SELECT {_input_columns(con, columns)} FROM patient_features "
                                "WHERE patient_id IN (SELECT patient_id FROM _explained) ORDER BY patient_id").pl()
    finally:
        con.unregister("_explained")
    reasons = _reasons(RegionScorer(estimator, record.mapping()), spec.matrix(explained, columns), chosen,
                       len(probability), meta)
    return scores_table(ids, probability, known, meta, reasons, calibration.logit(score)), record


def scorer(settings):
    """(estimator, metadata) of the model the settings name, or (None, None) when it is
    switched off. Refuses a comparison model: it is for validation only."""
    if not settings.model.enabled:
        return None, None
    estimator, meta = artefact.load(settings.model.artefact)
    if meta.get("role") == "comparison":
        raise UserError(f"{meta['name']} is a comparison model for validation only; it cannot score a region")
    return estimator, meta


def _companion(meta: dict) -> str:
    """How a partition's score file is named after the model that made it
    (``score-<model hash>-part-<k>-of-<n>.parquet``): a gather under another model (one
    promoted while the partitions ran) finds none and scores from the store."""
    return f"{NAME}-{meta['model_hash'][:16]}"


def build_partition(ctx: RunContext, part: int) -> dict:
    """Model scores of family partition ``part``'s eligible patients (``scored_people``) from
    its features file into its own score file; returns how many, with the seconds, CPU
    seconds and peak memory. Nothing when the model is switched off. Polars reads only the
    columns scoring needs from the file, as the rules do."""
    with measured() as cost:
        estimator, meta = scorer(ctx.settings)
        if estimator is None:
            return {"scored": 0, "model": "switched off"}
        features_file, out_file = feature_parts.partition_files(ctx, part, _companion(meta))
        columns = meta["feature_schema"]
        features = pl.scan_parquet(features_file)
        scored = scored_people(features.select(_wanted(features.collect_schema().names(), columns)).collect(),
                               estimator, columns)
        files.write_parquet(out_file, scored)
    return {"scored": scored.height, **cost}


def _gathered(ctx: RunContext, meta: dict) -> tuple[list[str], pl.DataFrame | None] | None:
    """Tonight's partitions' score files of this model and whom they hold: None as the second
    after a full features pass (everyone), the recomputed patients on an incremental night;
    None without a file for every partition."""
    found = feature_parts.companions(ctx, _companion(meta))
    if found is None:
        return None
    full, recompute, paths = found
    return paths, None if full else recompute.select("patient_id")


def population(con, as_of) -> dict:
    """Who could be scored tonight, and in words why nobody could when the count is 0: an
    empty population (a run date before the data, a first delivery without lipid panels)
    is a normal night with empty worklists, and the manifest says why."""
    people = con.sql("SELECT * FROM patient_features").pl(lazy=True).select(*spec.ELIGIBILITY_COLUMNS).collect()
    report = {"people": people.height, "eligible_for_scoring": spec.eligible(people).height}
    if report["eligible_for_scoring"] == 0:
        report["empty_because"] = (
            f"nobody in the store has an LDL-C result on or before {as_of.isoformat()} while alive and living "
            "in the region, so nobody can be scored or listed tonight"
            if people.height else "the store holds nobody as of this run date"
        )
    return report


def score_step(ctx: RunContext) -> dict:
    """The gather (see the module docstring): ``model_scores`` for tonight, calibrated."""
    estimator, meta = scorer(ctx.settings)
    if estimator is None:
        ctx.feature_off("model_score", "switched off in settings (model.enabled: false)")
    con = ctx.connect()
    record = gathered = None
    try:
        if estimator is not None:
            gathered = _gathered(ctx, meta)
            scores, record = score_region(con, estimator, meta, ctx.settings.metrics.expected_prevalence,
                                          RANGE_PEOPLE, gathered)
        else:
            scores = pl.DataFrame(schema=SCHEMA)
        with db.transaction(con):
            db.replace_table(con, "model_scores", scores)
        ctx.manifest["population"] = population(con, ctx.as_of)
    finally:
        con.close()
    if meta:
        ctx.manifest["model"] = {k: meta[k] for k in ("name", "version", "model_hash", "file_sha256", "labels")}
        ctx.manifest["model"]["calibration"] = record.record()
        ctx.manifest["model"]["bands"] = meta.get("bands", [])
        log.info("calibration: %s (expected carriers among the not yet known %.1f, target %.1f)",
                 record.method, record.expected_carriers_after, record.expected_unknown_target)
    log.info("scored %d people (%s)", scores.height, "with the partitions' files" if gathered else "from the store")
    return {"scored": scores.height, "explained": int((scores["reasons"] != "").sum()),
            "calibration": record.method if record else None}
