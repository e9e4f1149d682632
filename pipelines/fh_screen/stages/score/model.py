"""Estimators: an interpretable baseline and a gradient-boosted model, both trained on the
labels a region really has, and the mapping from their score to a probability of FH.

Why labelled-vs-unlabelled: a region knows the people a lipid clinic confirmed and those
already diagnosed, and almost nobody it has ruled out. The classifier learns
g(x) = P(labelled | x) (Elkan & Noto, KDD 2008). Elkan & Noto then divide g by the labelling
rate c; that is only right when positives are labelled at random, which referral (favouring
very high LDL-C) breaks, and the quotient has to be clipped at 1, so every score above c
became "100 %". Here g is only a ranking score: the probability is
expit(a + b * logit(g)), with the slope b fitted on synthetic training worlds' ground truth
and the intercept a set in each region from its configured prevalence and known cases
(``fh_screen.stages.score.calibration``, ``docs/model-calibration.md``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from fh_screen.stages.score.calibration import Mapping


def baseline(seed: int) -> BaseEstimator:
    """Penalised logistic regression on standardised features."""
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=0.05, max_iter=5000, random_state=seed),
    )


def boosted(seed: int) -> BaseEstimator:
    """Gradient boosting. Missing values are imputed with indicators first, because an
    input that is absent for everyone in a fold (e.g. Lp(a) in a region that never
    measures it) breaks the booster's own binning."""
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        HistGradientBoostingClassifier(
            max_iter=250,
            learning_rate=0.05,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        ),
    )


class LabelledScorer(ClassifierMixin, BaseEstimator):
    """Score g(x) = P(labelled | x) from labelled positives vs everyone else, and the
    artefact's default mapping of g to a probability of FH.

    ``fit(X, s)`` takes s = 1 for a labelled positive, 0 otherwise; the inner classifier is
    sigmoid-calibrated over ``cv`` folds. ``intercept_``/``slope_`` are the mapping set by
    training (identity until then); the score step replaces the intercept per region.
    """

    def __init__(self, estimator=None, cv: int = 3, random_state: int = 0):
        self.estimator = estimator
        self.cv = cv
        self.random_state = random_state

    def _folds(self, X, s):
        return list(StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state).split(X, s))

    def fit(self, X, s):
        s = np.asarray(s).astype(int)
        self.classes_ = np.array([0, 1])
        self.model_ = CalibratedClassifierCV(clone(self.estimator), method="sigmoid", cv=self._folds(X, s)).fit(X, s)
        self.intercept_, self.slope_ = 0.0, 1.0
        return self

    def held_out_score(self, X, s) -> np.ndarray:
        """g(x) of each training row from the fold model that did not train on it (the same
        folds as ``fit``): what training uses to fit the mapping without optimism."""
        s = np.asarray(s).astype(int)
        out = np.empty(len(s))
        for (_, test), fold_model in zip(self._folds(X, s), self.model_.calibrated_classifiers_):
            out[test] = fold_model.predict_proba(X[test])[:, 1]
        return out

    def labelled_score(self, X) -> np.ndarray:
        return calibrated_positive(self.model_, X)

    def mapping(self) -> Mapping:
        return Mapping(float(self.intercept_), float(self.slope_))

    def predict_proba(self, X):
        p = self.mapping().apply(self.labelled_score(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class RegionScorer:
    """A fitted ``LabelledScorer`` with the mapping set for one region (never saved)."""

    def __init__(self, scorer: LabelledScorer, mapping: Mapping):
        self.scorer = scorer
        self.mapping = mapping

    def predict_proba(self, X):
        p = self.mapping.apply(self.scorer.labelled_score(X))
        return np.column_stack([1.0 - p, p])


class SexSpecific(ClassifierMixin, BaseEstimator):
    """One logistic regression per sex (column ``sex_index`` of X: 1 male, else female): the
    form of FAMCAT, used only for the comparison model ``fh_screen.training.famcat``. A sex
    without both outcomes in the training rows (a small fold) gets the model of both sexes."""

    def __init__(self, sex_index: int = 0, random_state: int = 0):
        self.sex_index = sex_index
        self.random_state = random_state

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        base = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                             StandardScaler(), LogisticRegression(max_iter=5000, random_state=self.random_state))
        male = X[:, self.sex_index] == 1
        rest = np.delete(X, self.sex_index, axis=1)
        both = clone(base).fit(rest, y)
        self.models_ = {sex: clone(base).fit(rest[mask], y[mask]) if len(np.unique(y[mask])) == 2 else both
                        for sex, mask in (("M", male), ("F", ~male))}
        return self

    def predict_proba(self, X):
        male = X[:, self.sex_index] == 1
        rest = np.delete(X, self.sex_index, axis=1)
        p = np.empty(len(X))
        for sex, mask in (("M", male), ("F", ~male)):
            if mask.any():
                p[mask] = self.models_[sex].predict_proba(rest[mask])[:, 1]
        return np.column_stack([1 - p, p])


# Rows per block when a calibrated boosted model predicts: blocks run on a thread per core.
BLOCK_ROWS = 50_000


def calibrated_positive(model: CalibratedClassifierCV, X: np.ndarray) -> np.ndarray:
    """P(class 1) of a fitted ``CalibratedClassifierCV``, each row's value computed from that
    row alone: the same person gets the same bits in a family partition, a range of the
    store or the whole region (``stages.score.step``), so scoring in partitions equals
    scoring in one pass exactly.

    For the boosted pipeline (sigmoid-calibrated folds of imputer + binary
    ``HistGradientBoostingClassifier``) the trees are walked on the booster's binned
    data, one byte per value instead of eight: scikit-learn's float path streams the
    whole float matrix through memory once per tree (3 folds x 250 trees), the binned
    one needs about half the CPU seconds (411k people: 20.6 -> 11.3); it is bit-identical to
    ``model.predict_proba(X)[:, 1]``. For the linear pipeline (imputer, scaler, binary
    ``LogisticRegression``) the decision is summed input by input (``_linear_decision``):
    scikit-learn's matrix product rounds a row differently with the rows around it. Row
    blocks run on one thread per core, each single-threaded: with shared cores, OpenMP's
    barrier after every tree costs more than the work. Any other model takes scikit-learn's
    own path.
    """
    folds = _boosted_folds(model) or _linear_folds(model)
    if folds is None or X.shape[0] == 0:
        return model.predict_proba(X)[:, 1]
    blocks = [X[start:start + BLOCK_ROWS] for start in range(0, X.shape[0], BLOCK_ROWS)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return np.concatenate(list(pool.map(lambda block: _mean_calibrated(folds, block), blocks)))


def _sigmoid_folds(model) -> list[tuple] | None:
    """(pipeline, sigmoid calibrator) per fold of a binary sigmoid-calibrated model, else None."""
    if getattr(model, "method", None) != "sigmoid":
        return None
    folds = []
    for fold in model.calibrated_classifiers_:
        pipe = fold.estimator
        if not isinstance(pipe, Pipeline) or len(fold.calibrators) != 1 or list(fold.classes) != [0, 1]:
            return None
        folds.append((pipe, fold.calibrators[0]))
    return folds


def _boosted_folds(model) -> list[tuple] | None:
    """(preprocessing, decision function, sigmoid calibrator) per fold of the boosted
    pipeline, or None for any other model."""
    folds = []
    for pipe, calibrator in _sigmoid_folds(model) or [(None, None)]:
        booster = pipe[-1] if pipe is not None else None
        if (not isinstance(booster, HistGradientBoostingClassifier) or booster.n_trees_per_iteration_ != 1
                or booster.is_categorical_ is not None or list(booster.classes_) != [0, 1]):
            return None
        folds.append((pipe[:-1], partial(_decision, booster), calibrator))
    return folds


def _linear_folds(model) -> list[tuple] | None:
    """(preprocessing, decision function, sigmoid calibrator) per fold of a pipeline whose
    preprocessing is elementwise (imputer, scaler) before a binary ``LogisticRegression``,
    or None for any other model."""
    folds = []
    for pipe, calibrator in _sigmoid_folds(model) or [(None, None)]:
        head = pipe[-1] if pipe is not None else None
        if (not isinstance(head, LogisticRegression) or head.coef_.shape[0] != 1 or list(head.classes_) != [0, 1]
                or not all(isinstance(s, (SimpleImputer, StandardScaler)) for s in pipe[:-1].named_steps.values())):
            return None
        folds.append((pipe[:-1], partial(_linear_decision, head), calibrator))
    return folds


def _mean_calibrated(folds: list[tuple], X: np.ndarray) -> np.ndarray:
    """The folds' calibrated probabilities summed in fold order, then divided by their
    number: the operations (and so the rounding) of ``CalibratedClassifierCV.predict_proba``."""
    mean = np.zeros(X.shape[0])
    for preprocessing, decision, calibrator in folds:
        mean += calibrator.predict(decision(preprocessing.transform(X)))
    mean /= len(folds)
    return mean


def _linear_decision(regression: LogisticRegression, X: np.ndarray) -> np.ndarray:
    """The regression's decision function, its terms added one input at a time in column
    order and the intercept last: every row goes through the same elementwise operations on
    its own values, so its result does not depend on which rows it is scored with (a matrix
    product's blocking does). Equal to scikit-learn's to rounding (about 1e-15)."""
    columns = np.asarray(X, dtype=np.float64).T.copy()   # one input's values side by side
    raw = np.zeros(columns.shape[1])
    for values, coefficient in zip(columns, regression.coef_[0]):
        raw += values * coefficient
    raw += regression.intercept_[0]
    return raw


def _decision(booster: HistGradientBoostingClassifier, X: np.ndarray) -> np.ndarray:
    """The booster's decision function from its binned data.

    A value goes left of a node when ``value <= threshold``; a node's float threshold is
    its bin's upper edge and a value's bin is the first edge it does not exceed, so
    ``bin <= bin_threshold`` decides exactly as the float comparison. The leaf values are
    added tree by tree to the baseline, as scikit-learn's ``_raw_predict`` adds them.
    """
    mapper = booster._bin_mapper
    X = np.asarray(X, dtype=np.float64)
    binned = np.empty(X.shape, dtype=np.uint8)
    for j, edges in enumerate(mapper.bin_thresholds_):
        column = X[:, j]
        binned[:, j] = np.where(np.isnan(column), mapper.missing_values_bin_idx_,
                                np.searchsorted(edges, column, side="left"))
    raw = np.zeros(X.shape[0], dtype=booster._baseline_prediction.dtype)
    raw += booster._baseline_prediction.ravel()[0]
    for (tree,) in booster._predictors:
        raw += tree.predict_binned(binned, mapper.missing_values_bin_idx_, 1)
    return raw
