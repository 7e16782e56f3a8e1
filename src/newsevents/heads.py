"""Classifier heads that fitted pipelines contain besides scikit-learn's own.

Pipelines are pickled with these classes inside, so loading a model from its pickle imports
this module: it must stay light (numpy, scipy, scikit-learn).

- :class:`OneLabelClassifier` puts one multiclass estimator behind the multi-hot interface that
  every pipeline shares, for multiclass schemas;
- :class:`LinearSVMScores` is a linear SVM with probability-like scores that also trains when a
  class is too rare for the calibration's internal cross-validation;
- :class:`WeightedOneVsRest` is one-vs-rest that also fits scores in [0, 1] (a teacher's soft
  labels) and per-row weights.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import LinearSVC


def _one_hot(index: np.ndarray, width: int) -> np.ndarray:
    return np.eye(width, dtype=int)[index].reshape(len(index), width)


class OneLabelClassifier(ClassifierMixin, BaseEstimator):
    """A multiclass estimator behind the multi-hot interface of a multiclass schema.

    Fitted on a ``(n, n_labels)`` one-hot matrix, it trains ``estimator`` on the column
    indices; ``predict_proba`` returns one column per label, rows summing to one (a label
    absent from the training rows scores 0). Pipelines of both schema types thus take and
    give the same shapes, and evaluation, export and prediction treat them alike.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> head = OneLabelClassifier(DummyClassifier()).fit(np.zeros((4, 1)),
    ...                                                  np.eye(3, dtype=int)[[0, 2, 2, 2]])
    >>> head.predict_proba(np.zeros((1, 1))).tolist()
    [[0.25, 0.0, 0.75]]
    """

    def __init__(self, estimator: BaseEstimator | None = None):
        self.estimator = estimator

    def fit(self, X: object, y: np.ndarray) -> OneLabelClassifier:
        y = np.asarray(y)
        target = y.argmax(axis=1)
        self.classes_ = np.arange(y.shape[1])
        self.present_ = np.unique(target)
        # One class alone leaves nothing to learn (a small training fold): predict it.
        self.estimator_ = (clone(self.estimator).fit(X, target) if len(self.present_) > 1
                           else None)
        return self

    def predict_proba(self, X: object) -> np.ndarray:
        n = X.shape[0] if hasattr(X, "shape") else len(X)
        out = np.zeros((n, len(self.classes_)))
        if self.estimator_ is None:
            out[:, self.present_[0]] = 1.0
        else:
            out[:, self.estimator_.classes_] = self.estimator_.predict_proba(X)
        return out

    def predict(self, X: object) -> np.ndarray:
        return _one_hot(self.predict_proba(X).argmax(axis=1), len(self.classes_))


class LinearSVMScores(ClassifierMixin, BaseEstimator):
    """``svm`` (a ``LinearSVC``) with scores in [0, 1].

    Scores are sigmoid-calibrated by an internal ``cv``-fold cross-validation
    (``CalibratedClassifierCV``), with fewer folds when a class has fewer than ``cv`` members.
    A class with a single member leaves no cross-validation to run: the SVM is then fitted on
    everything and scores are the logistic (two classes) or softmax (more) of its margins.
    """

    def __init__(self, svm: LinearSVC | None = None, cv: int = 3):
        self.svm = svm
        self.cv = cv

    def fit(self, X: object, y: np.ndarray) -> LinearSVMScores:
        svm = clone(self.svm) if self.svm is not None else LinearSVC()
        folds = min(self.cv, int(np.unique(y, return_counts=True)[1].min()))
        self.model_ = (CalibratedClassifierCV(svm, cv=folds, method="sigmoid") if folds >= 2
                       else svm).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: object) -> np.ndarray:
        if isinstance(self.model_, CalibratedClassifierCV):
            return self.model_.predict_proba(X)
        margins = self.model_.decision_function(X)
        if margins.ndim == 1:
            positive = expit(margins)
            return np.column_stack([1 - positive, positive])
        return softmax(margins, axis=1)

    def predict(self, X: object) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class _Constant:
    """The score of a label that training saw with one value only (a small fold)."""

    def __init__(self, value: float):
        self.value = value

    def predict_proba(self, X: object) -> np.ndarray:
        n = X.shape[0] if hasattr(X, "shape") else len(X)
        return np.tile([1.0 - self.value, self.value], (n, 1))


class WeightedOneVsRest(ClassifierMixin, BaseEstimator):
    """One binary ``estimator`` per label, fitted on 0/1 labels or on scores in [0, 1] (a
    teacher's soft labels), with optional per-row ``sample_weight``.

    A row with target ``p`` and weight ``w`` enters its label's problem twice, as a positive
    weighing ``p·w`` and as a negative weighing ``(1 - p)·w``: for logistic regression that is
    the cross-entropy against ``p``. A 0/1 row enters once, so on hard labels with no weights
    this is one-vs-rest. The estimator's ``class_weight="balanced"`` is applied here, on the
    weighted class totals (``total / (2 · class total)``, scikit-learn's rule on counts).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> head = WeightedOneVsRest(LogisticRegression()).fit(X, [[0], [0.2], [0.9], [1]])
    >>> head.predict_proba(X).round(2).ravel().tolist()
    [0.23, 0.42, 0.64, 0.81]
    """

    def __init__(self, estimator: BaseEstimator | None = None):
        self.estimator = estimator

    def fit(self, X: object, y: np.ndarray, sample_weight: np.ndarray | None = None
            ) -> WeightedOneVsRest:
        y = np.asarray(y, dtype=np.float64)
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        balanced = getattr(self.estimator, "class_weight", None) == "balanced"
        base = clone(self.estimator)
        if balanced:
            base.set_params(class_weight=None)
        self.classes_ = np.arange(y.shape[1])
        self.estimators_: list = []
        for j in range(y.shape[1]):
            pos, neg = weight * y[:, j], weight * (1.0 - y[:, j])
            pos_rows, neg_rows = np.flatnonzero(pos > 0), np.flatnonzero(neg > 0)
            if not len(pos_rows) or not len(neg_rows):
                self.estimators_.append(_Constant(float(len(pos_rows) > 0)))
                continue
            w_pos, w_neg = pos[pos_rows], neg[neg_rows]
            if balanced:
                total = w_pos.sum() + w_neg.sum()
                w_pos, w_neg = w_pos * total / (2 * w_pos.sum()), w_neg * total / (2 * w_neg.sum())
            rows = np.concatenate([pos_rows, neg_rows])
            target = np.r_[np.ones(len(pos_rows)), np.zeros(len(neg_rows))]
            self.estimators_.append(clone(base).fit(X[rows], target,
                                                    sample_weight=np.r_[w_pos, w_neg]))
        return self

    def predict_proba(self, X: object) -> np.ndarray:
        return np.column_stack([e.predict_proba(X)[:, 1] for e in self.estimators_])

    def predict(self, X: object) -> np.ndarray:
        return (self.predict_proba(X) >= 0.5).astype(int)
