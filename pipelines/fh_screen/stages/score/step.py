"""The ``score`` step: a probability of FH for everyone the scorer is for, calibrated to
the region it runs in (``calibration``), with its plain-language reasons."""

from __future__ import annotations

import numpy as np
import polars as pl

from fh_screen.context import RunContext, log
from fh_screen.errors import UserError
from fh_screen.reference import bands
from fh_screen.stages.score import artefact, calibration, explain, spec
from fh_screen.stages.score.outcomes import assessed_referrals
from fh_screen.stages.score.model import RegionScorer
from fh_screen.store import db

EXPLAIN_ABOVE = 0.05   # probability above which a patient gets model reasons ...
EXPLAIN_AT_MOST = 1000  # ... among the most probable (explaining costs one prediction per input)
# Patients whose model inputs (about 50 columns) the score step holds at a time; only their
# id, model score and known-case flag are kept for the whole region (``score_region``).
RANGE_PEOPLE = 250_000

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
    """The columns ``model_inputs`` reads, as a select list: those of them that
    ``patient_features`` has (``spec.matrix`` names any model input it lacks)."""
    available = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'patient_features'").fetchall()}
    wanted = dict.fromkeys(["patient_id", *spec.ELIGIBILITY_COLUMNS, *spec.KNOWN_CASE_COLUMNS, *columns])
    return ", ".join(f'"{c}"' for c in wanted if c in available)


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


def _scored_ranges(con, estimator, columns: list[str], people: int) -> tuple[pl.Series, np.ndarray, pl.Series]:
    """patient_id, model score and known case of every eligible person, one range of
    ``model_input_chunks`` at a time (only these three are kept for the whole region)."""
    ids, scores, known = [pl.Series("patient_id", [], pl.Utf8)], [np.zeros(0)], [pl.Series("known", [], pl.Boolean)]
    for features in model_input_chunks(con, columns, people):
        chunk = spec.eligible(features)
        if chunk.height:
            ids.append(chunk["patient_id"])
            scores.append(estimator.labelled_score(spec.matrix(chunk, columns)))
            known.append(spec.known_case(chunk))
    return pl.concat(ids), np.concatenate(scores), pl.concat(known)


def score_region(con, estimator, meta: dict, prevalence: float,
                 people: int) -> tuple[pl.DataFrame, calibration.RegionCalibration]:
    """``model_scores`` of the whole region and tonight's calibration record, reading the
    model inputs in ranges of about ``people`` patients (``model_input_chunks``): the same
    rows as ``region_scorer`` over every patient at once (to the last bit when the region
    fits in one range). Only the explained people's inputs are read again, after the
    calibration."""
    columns = meta["feature_schema"]
    ids, score, known = _scored_ranges(con, estimator, columns, people)
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
    if not ctx.settings.model.enabled:
        ctx.feature_off("model_score", "switched off in settings (model.enabled: false)")
        estimator = meta = None
    else:
        estimator, meta = artefact.load(ctx.settings.model.artefact)
        if meta.get("role") == "comparison":
            raise UserError(f"{meta['name']} is a comparison model for validation only; it cannot score a region")
    con = ctx.connect()
    record = None
    try:
        if estimator is not None:
            scores, record = score_region(con, estimator, meta, ctx.settings.metrics.expected_prevalence,
                                          RANGE_PEOPLE)
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
    log.info("scored %d people", scores.height)
    return {"scored": scores.height, "explained": int((scores["reasons"] != "").sum()),
            "calibration": record.method if record else None}
