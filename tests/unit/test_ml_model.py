"""The scorer: labelled-vs-unlabelled training, artefact identity, refusal of mismatches."""

import json
from datetime import date

import duckdb

import numpy as np
import polars as pl
import pytest

from fh_screen.errors import UserError
from fh_screen.stages.score import step as score
from fh_screen.stages.score.outcomes import assessed_referrals
from fh_screen.stages.score import artefact, model, spec
from fh_screen.training import train, validation


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


def test_scorer_ranks_unlabelled_carriers_above_non_carriers():
    table = toy_features(2000, seed=1)
    estimator, meta = train.fit(table, "fh_baseline", seed=3)
    p = estimator.predict_proba(spec.matrix(table, spec.names()))[:, 1]
    unlabelled = table["labelled"].to_numpy() == 0
    carrier = table["carrier"].to_numpy() == 1
    assert p[unlabelled & carrier].mean() > 5 * p[unlabelled & ~carrier].mean()
    assert np.all((p > 0) & (p < 1))


def test_held_out_scores_come_from_the_fold_that_did_not_train_on_the_row():
    table = toy_features(1500, seed=2)
    X, s = spec.matrix(table, spec.names()), table["labelled"].to_numpy()
    estimator = model.LabelledScorer(model.baseline(0), random_state=0).fit(X, s)
    held_out = estimator.held_out_score(X, s)
    in_sample = estimator.labelled_score(X)
    assert held_out.shape == in_sample.shape and not np.allclose(held_out, in_sample)
    # labelled rows look less certain to a model that never saw them
    assert held_out[s == 1].mean() < in_sample[s == 1].mean()


def test_the_mapping_set_by_training_is_saved_with_the_artefact(tmp_path):
    table = toy_features(800, seed=7)
    estimator, meta = train.fit(table, "fh_baseline", seed=1)
    estimator.intercept_, estimator.slope_ = -1.5, 0.7
    artefact.save(tmp_path / "m", estimator, dict(meta, version="test"))
    loaded, _ = artefact.load(tmp_path / "m")
    X = spec.matrix(table, spec.names())
    expected = 1 / (1 + np.exp(-(-1.5 + 0.7 * np.log(estimator.labelled_score(X) / (1 - estimator.labelled_score(X))))))
    assert np.allclose(loaded.predict_proba(X)[:, 1], np.clip(expected, 1e-6, 0.999))


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


def test_equal_mass_ece_sees_miscalibration_at_the_top():
    # 95 people at p = 0.01 with 1 carrier, 5 at p = 0.99 with 1 carrier: equal-width bins
    # average the top away, equal-mass bins (here 10 people each) do not hide it.
    p = np.r_[np.full(95, 0.01), np.full(5, 0.99)]
    y = np.r_[np.zeros(94), 1, np.zeros(4), 1]
    assert validation.equal_mass_ece(p, y) == pytest.approx(0.039)
    assert validation.equal_mass_ece(np.full(10, 0.3), np.r_[np.ones(3), np.zeros(7)], bins=1) == pytest.approx(0.0)


def test_world_figures_count_carriers_found_at_k_against_the_rules(monkeypatch):
    monkeypatch.setattr(validation, "KS", (2, 4))
    pool = pl.DataFrame({
        "patient_id": [f"P{i}" for i in range(6)],
        "fh_carrier": [0, 0, 1, 1, 0, 0],
        "p": [0.1, 0.05, 0.6, 0.5, 0.01, 0.001],
    })
    by_ldl = pl.Series(["P0", "P1", "P2", "P3", "P4", "P5"])
    by_model = pl.Series(["P2", "P3", "P0", "P1", "P4", "P5"])
    fig = validation.world_figures(pool, "p", {"highest LDL-C": by_ldl}, by_model, threshold=0.2)
    assert fig["found"] == {2: 2, 4: 2} and fig["best_rule"] == {2: 0, 4: 2}
    assert fig["ratio"][4] == 1.0 and fig["ratio"][2] is None
    assert fig["oe"] == pytest.approx(2 / 1.261, abs=1e-3)
    assert fig["high_n"] == 2 and fig["oe_high"] == pytest.approx(2 / 1.1, abs=1e-3)
    # net benefit at 0.2: two true positives, no false positives among 6 people
    assert fig["net_benefit"]["model"] == pytest.approx(2 / 6)
    targets = validation.meets_targets(fig)
    assert targets["oe"] is False and targets["oe_high"] is False and targets["ratio@2"] is False


def test_calibration_in_the_large_is_zero_when_observed_equals_expected():
    p = np.full(1000, 0.1)
    y = np.r_[np.ones(100), np.zeros(900)]
    assert validation.calibration_in_the_large(p, y) == pytest.approx(0.0, abs=1e-8)
    assert validation.calibration_in_the_large(p, np.r_[np.ones(200), np.zeros(800)]) > 0.5


def test_clinic_order_takes_only_candidates_a_clinic_would_receive():
    # the validation's clinic order is the referrals step's selection: no model-only referral, no child
    pool = pl.DataFrame({
        "patient_id": ["rules", "model_and_criterion", "model_only", "child", "nothing", "rules_low_p"],
        "selected_by_rules": ["dlcn", None, None, "paediatric", None, "lab_flag"],
        "clinical_criterion": [True, True, False, True, False, True],
        "probability": [0.30, 0.90, 0.95, 0.99, 0.10, 0.01],
        "age_years": [50, 60, 45, 12, 40, 70],
        "dlcn_points": [6, 3, 2, 0, 1, 5],
        "ldl_untreated_estimate_mmol": [6.0, 5.0, 4.0, 5.5, 3.0, 5.5],
        "ldl_max_mmol": [6.0, 5.0, 4.0, 5.5, 3.0, 5.5],
    })
    assert validation.clinic_order(pool, threshold=0.2).to_list() == ["model_and_criterion", "rules", "rules_low_p"]
    # below the clinics' threshold the model adds nobody; the rules' candidates stay
    assert validation.clinic_order(pool, threshold=0.95).to_list() == ["rules", "rules_low_p"]



def _scored_table(n: int = 800):
    table = toy_features(n, seed=6).with_columns(
        is_deceased=pl.Series([i % 50 == 0 for i in range(n)]), is_moved_out=pl.lit(False),
        fh_diagnosis=pl.Series([i % 97 == 0 for i in range(n)]), clinic_confirmed_fh=pl.lit(None, pl.Boolean))
    estimator, meta = train.fit(table, "fh_baseline", seed=1)
    meta["version"] = "test"
    con = duckdb.connect()
    con.register("_t", table.sample(fraction=1.0, shuffle=True, seed=3))   # stored in no particular order
    con.execute("CREATE TABLE patient_features AS SELECT * FROM _t")
    return con, estimator, meta


def test_scoring_in_ranges_of_patients_equals_scoring_everyone_at_once(monkeypatch):
    """The score step reads the model inputs a range of patients at a time (memory set by the
    range, not the region) and calibrates over all of them: the same rows as scoring every
    patient in one frame, to the last bit (each person's score depends on their row alone).
    It explains only the most probable, in plain language."""
    monkeypatch.setattr(score, "EXPLAIN_AT_MOST", 7)
    con, estimator, meta = _scored_table()
    features = score.model_inputs(con, meta["feature_schema"])
    _, record, probability, logit = score.region_scorer(estimator, features, assessed_referrals(con), meta, 0.004)
    in_one, one_record = score.score_region(con, estimator, meta, 0.004, 5000)
    assert in_one["patient_id"].equals(spec.eligible(features)["patient_id"]) and in_one.height == 800 - 16
    assert in_one["probability"].to_numpy().tolist() == probability.tolist()
    assert in_one["model_logit"].to_numpy().tolist() == logit.tolist()
    assert one_record.record() == record.record() and in_one["known_case"].sum() == 8
    assert in_one["probability"].is_between(0, 1, closed="none").all()
    assert set(in_one["probability_band"]) <= {"very_high", "high", "moderate", "low"}
    explained = in_one.filter(pl.col("reasons") != "")
    assert explained.height == 7
    assert set(explained["patient_id"]) == set(in_one.sort("probability", descending=True).head(7)["patient_id"])
    assert not any("_" in text for text in explained["reasons"])       # inputs in words, not column names
    assert all(json.loads(items) for items in explained["reason_items"])
    in_ranges, ranged_record = score.score_region(con, estimator, meta, 0.004, 97)
    assert in_ranges.equals(in_one) and ranged_record.record() == one_record.record()


def test_the_linear_model_scores_each_person_from_their_own_row_alone():
    """The same person, scored with any other rows (a family partition, a range of the store,
    the whole region), gets the same bits; within rounding of scikit-learn's own product,
    which does not promise that (a matrix product's blocking depends on the rows around)."""
    con, estimator, meta = _scored_table()
    X = spec.matrix(spec.eligible(score.model_inputs(con, meta["feature_schema"])), meta["feature_schema"])
    assert model._linear_folds(estimator.model_) is not None
    whole = estimator.labelled_score(X)
    rng = np.random.default_rng(0)
    for size in (1, 2, 3, 5, 40, 97, 399):
        rows = np.sort(rng.choice(len(X), size=size, replace=False))
        assert np.array_equal(estimator.labelled_score(np.ascontiguousarray(X[rows])).view(np.uint64),
                              whole[rows].view(np.uint64)), size
    assert np.allclose(whole, estimator.model_.predict_proba(X)[:, 1], rtol=1e-12, atol=0)


def test_the_gather_of_partition_scores_equals_scoring_the_store(tmp_path, monkeypatch):
    """The score step as the gather of the family partitions: each partition's file of
    ``scored_people`` (in no particular order of partitions or patients), and on an
    incremental night the patients no partition holds scored from the store, give the rows
    and calibration of scoring the whole store."""
    monkeypatch.setattr(score, "EXPLAIN_AT_MOST", 7)
    con, estimator, meta = _scored_table()
    con.execute("CREATE TABLE patients AS SELECT patient_id FROM patient_features")   # the gather reads whom the store holds
    columns = meta["feature_schema"]
    in_one, one_record = score.score_region(con, estimator, meta, 0.004, 5000)
    stored = con.execute("SELECT * FROM patient_features").pl()
    family = stored.with_columns(part=pl.col("patient_id").hash(seed=1) % 3)
    paths = []
    for k in (2, 0, 1):
        frame = score.scored_people(family.filter(pl.col("part") == k).drop("part"), estimator, columns)
        paths.append(str(tmp_path / f"score-part-{k}-of-3.parquet"))
        frame.write_parquet(paths[-1])
    gathered, gathered_record = score.score_region(con, estimator, meta, 0.004, 97, (paths, None))
    assert gathered.equals(in_one) and gathered_record.record() == one_record.record()
    held = family.filter(pl.col("part") == 1).select("patient_id")   # an incremental night's one partition
    mixed, mixed_record = score.score_region(con, estimator, meta, 0.004, 97, ([paths[2]], held))
    assert mixed.equals(in_one) and mixed_record.record() == one_record.record()
