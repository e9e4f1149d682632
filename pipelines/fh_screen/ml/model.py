"""Estimators: an interpretable baseline and a gradient-boosted model, both wrapped for
positive-unlabelled training.

Why positive-unlabelled: a region knows the people a lipid clinic confirmed and those
already diagnosed, and almost nobody it has ruled out. Treating everyone else as
negative would teach the model that undiagnosed carriers are healthy. Elkan & Noto
(KDD 2008, "Learning classifiers from only positive and unlabeled data") show that a
calibrated classifier g(x) = P(labelled | x) relates to P(FH | x) by a constant
c = P(labelled | FH), estimated as the mean of g over held-out labelled positives.
Their assumption (positives labelled at random) does not hold exactly here, because
referrals favour very high LDL-C; the model card reports how the ranking fares on a
shifted held-out region against true carrier status.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def baseline(seed: int) -> BaseEstimator:
    """Penalised logistic regression on standardised features (in the spirit of FAMCAT)."""
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


class PositiveUnlabelled(ClassifierMixin, BaseEstimator):
    """P(FH | x) from labelled positives vs everyone else (Elkan & Noto 2008).

    ``fit(X, s)`` takes s = 1 for a labelled positive, 0 for unlabelled. The inner
    classifier is calibrated (sigmoid, ``cv`` folds); ``labelling_rate_`` is c.
    ``predict_proba`` returns min(g(x) / c, 1).
    """

    def __init__(self, estimator=None, cv: int = 3, random_state: int = 0, pu: bool = True):
        self.estimator = estimator
        self.cv = cv
        self.random_state = random_state
        self.pu = pu

    def fit(self, X, s):
        """One calibrated fit over ``cv`` folds; each fold's model, applied to the fold it
        did not train on, gives the held-out g(x) from which c is estimated."""
        s = np.asarray(s).astype(int)
        self.classes_ = np.array([0, 1])
        folds = list(StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state).split(X, s))
        self.model_ = CalibratedClassifierCV(clone(self.estimator), method="sigmoid", cv=folds).fit(X, s)
        if self.pu:
            held_out = np.empty(len(s))
            for (_, test), fold_model in zip(folds, self.model_.calibrated_classifiers_):
                held_out[test] = fold_model.predict_proba(X[test])[:, 1]
            self.labelling_rate_ = float(np.clip(held_out[s == 1].mean(), 1e-6, 1.0))
        else:
            self.labelling_rate_ = 1.0
        return self

    def predict_proba(self, X):
        p = np.clip(self.model_.predict_proba(X)[:, 1] / self.labelling_rate_, 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
