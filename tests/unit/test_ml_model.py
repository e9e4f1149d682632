"""The scorer: positive-unlabelled training, artefact identity, refusal of mismatches."""

import json
from datetime import date

import numpy as np
import polars as pl
import pytest

from fh_screen.errors import UserError
from fh_screen.stages.score import artefact, model, spec
from fh_screen.app import evaluate
from fh_screen.training import measures, train


def toy_features(n: int, seed: int) -> pl.DataFrame:
    """People with the model's input columns; carriers stand apart on the first three inputs
    (well separated, where Elkan & Noto's estimate of the labelling rate is accurate)."""
    rng = np.random.default_rng(seed)
    carrier = rng.random(n) < 0.05
    cols = {}
    for j, name in enumerate(spec.names()):
        shift = 4.0 if j < 3 else 0.0
        cols[name] = rng.normal(size=n) + shift * carrier
    frame = pl.DataFrame(cols).with_columns(
        pl.Series("patient_id", [f"P{i:06d}" for i in range(n)]),
        pl.Series("carrier", carrier.astype(int)),
        # a clinic has confirmed about 40% of carriers: the practice labels
        pl.Series("labelled", (carrier & (rng.random(n) < 0.4)).astype(int)),
    )
    return frame


def test_pu_model_ranks_unlabelled_carriers_above_non_carriers():
    table = toy_features(2000, seed=1)
    estimator, meta = train.fit(table, "fh_baseline", seed=3)
    p = estimator.predict_proba(spec.matrix(table, spec.names()))[:, 1]
    unlabelled = table["labelled"].to_numpy() == 0
    carrier = table["carrier"].to_numpy() == 1
    assert p[unlabelled & carrier].mean() > 5 * p[unlabelled & ~carrier].mean()
    assert 0.2 < meta["labelling_rate"] < 0.8      # true rate is 0.4
    assert np.all((p >= 0) & (p <= 1))


def test_rescaling_by_labelling_rate_raises_probabilities():
    table = toy_features(1500, seed=2)
    X, s = spec.matrix(table, spec.names()), table["labelled"].to_numpy()
    pu = model.PositiveUnlabelled(model.baseline(0), random_state=0, pu=True).fit(X, s)
    plain = model.PositiveUnlabelled(model.baseline(0), random_state=0, pu=False).fit(X, s)
    assert plain.labelling_rate_ == 1.0
    assert pu.predict_proba(X)[:, 1].sum() > plain.predict_proba(X)[:, 1].sum()


def test_binned_prediction_is_bit_identical_to_scikit_learn(monkeypatch):
    table = toy_features(1200, seed=6)
    estimator, _ = train.fit(table, "fh_gbm", seed=2)
    X = spec.matrix(table, spec.names())
    X[::7, 2] = np.nan                       # missing inputs go through the imputer
    X[::11, 0] = X[:, 0].max() + 100         # beyond every bin edge
    monkeypatch.setattr(model, "BLOCK_ROWS", 100)
    fast = model.calibrated_positive(estimator.model_, X)
    assert model._boosted_folds(estimator.model_) is not None
    assert np.array_equal(fast.view(np.uint64), estimator.model_.predict_proba(X)[:, 1].view(np.uint64))


def test_same_seed_same_model_hash_and_other_seed_differs(tmp_path):
    table = toy_features(600, seed=3)
    a, _ = train.fit(table, "fh_gbm", seed=5)
    b, _ = train.fit(table, "fh_gbm", seed=5)
    c, _ = train.fit(table, "fh_gbm", seed=6)
    assert artefact.model_hash(a) == artefact.model_hash(b)
    assert artefact.model_hash(a) != artefact.model_hash(c)


def test_artefact_round_trip_and_refusals(tmp_path):
    table = toy_features(800, seed=4)
    estimator, meta = train.fit(table, "fh_baseline", seed=1)
    meta["version"] = "test"
    saved = artefact.save(tmp_path / "m", estimator, meta)
    loaded, loaded_meta = artefact.load(tmp_path / "m")
    X = spec.matrix(table, spec.names())
    assert np.allclose(loaded.predict_proba(X), estimator.predict_proba(X))
    assert loaded_meta["model_hash"] == saved["model_hash"]

    # another feature schema is refused with a message naming the problem
    bad = dict(loaded_meta, feature_schema=loaded_meta["feature_schema"][:-1] + ["not_a_feature"])
    (tmp_path / "m" / "metadata.json").write_text(json.dumps(bad))
    with pytest.raises(spec.SchemaMismatch, match="feature schema does not match"):
        artefact.load(tmp_path / "m")

    # a model file that was changed after training is refused
    (tmp_path / "m" / "metadata.json").write_text(json.dumps(loaded_meta))
    with (tmp_path / "m" / "model.skops").open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(UserError, match="does not match its recorded hash"):
        artefact.load(tmp_path / "m")


def test_missing_input_column_is_refused():
    table = toy_features(10, seed=5).drop(spec.names()[0])
    with pytest.raises(spec.SchemaMismatch, match="lacks model inputs"):
        spec.matrix(table, spec.names())


def test_expected_calibration_error():
    p = np.array([0.1] * 10 + [0.9] * 10)
    y = np.array([0] * 9 + [1] + [1] * 9 + [0])
    assert measures.expected_calibration_error(p, y) == pytest.approx(0.0)
    assert measures.expected_calibration_error(np.full(10, 0.5), np.zeros(10)) == pytest.approx(0.5)


def test_compare_counts_carriers_found_by_each_ranking_at_k():
    # six people; the model puts the two carriers with moderate LDL-C first, LDL-C does not
    pool = pl.DataFrame({
        "patient_id": [f"P{i}" for i in range(6)],
        "fh_carrier": [0, 0, 1, 1, 0, 0],
        "ldl_max_mmol": [9.0, 8.0, 5.0, 4.5, 4.0, 3.0],
        "ldl_untreated_estimate_mmol": [9.0, 8.0, 5.0, 4.5, 4.0, 3.0],
        "dlcn_points": [5, 5, 3, 1, 1, 0],
        "lab_flag": [True, True, True, False, False, False],
        "probability": [0.1, 0.05, 0.6, 0.5, 0.01, 0.0],
    })
    rows = {r["ranking"]: r for r in evaluate.compare(pool, k=2)}
    assert rows["ML model probability"]["found@K"] == 2
    assert rows["worklist ranking"]["found@K"] == 2
    assert rows["top-K by highest LDL-C"]["found@K"] == 0
    assert rows["top-K by highest LDL-C"]["found@2K"] == 2
    assert rows["ML model probability"]["ppv@K/2"] == 1.0
    assert rows["DLCN points (>= 6 first)"]["sensitivity@K"] == 0.0


def test_score_frame_explains_only_the_most_probable_in_plain_language(monkeypatch):
    from fh_screen.stages.score import step as score

    table = toy_features(800, seed=6).with_columns(is_deceased=pl.lit(False), is_moved_out=pl.lit(False))
    estimator, meta = train.fit(table, "fh_baseline", seed=1)
    meta["version"] = "test"
    monkeypatch.setattr(score, "EXPLAIN_AT_MOST", 5)
    scored = score.score_frame(table, estimator, meta)
    assert scored.height == 800 and scored["probability"].is_between(0, 1).all()
    explained = scored.filter(pl.col("reasons") != "")
    assert 1 <= explained.height <= 5
    top = scored.sort("probability", descending=True).head(explained.height)
    assert set(explained["patient_id"]) == set(top["patient_id"])
    # reasons name the inputs in words, not column names
    assert not any("_" in text for text in explained["reasons"])
    assert all(json.loads(items) for items in explained["reason_items"])
