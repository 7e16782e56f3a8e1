"""Every model family trains both schema types: multi-label and multiclass."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from newsevents.config import MODEL_TYPES, parse_config
from newsevents.heads import LinearSVMScores, OneLabelClassifier
from newsevents.labels import MULTICLASS, MULTILABEL, Label, LabelSchema
from newsevents.models import build_pipeline

LABELS = (Label("sport", "sport", ("match", "goal", "team", "race")),
          Label("weather", "weather", ("rain", "snow", "storm", "wind")),
          Label("other", "anything else"))
SPORT = ["The match ended with a late goal.", "The team won the race.",
         "A goal in the last minute won the match.", "The home team lost the cup match.",
         "The race was won by a young team.", "Their goal came from a corner in the match."]
WEATHER = ["Rain and snow are expected.", "A storm brought heavy rain.",
           "Strong wind and snow closed the pass.", "More rain fell overnight.",
           "The storm and the wind eased by noon.", "Snow will turn to rain on Friday."]
OTHER = ["The council approved the budget.", "Prices rose again in March.",
         "The library opened a new wing.", "The mayor signed the budget.",
         "The bank raised prices for loans.", "A new bridge opened in March.",
         "The museum closed for repairs.", "Parliament passed the law."]
TEXTS = SPORT + WEATHER + OTHER
CLASS = [0] * 6 + [1] * 6 + [2] * 8  # "other" the most frequent: the lexicon's fallback
UNSEEN = ["The team scored a goal in the match.", "Snow and rain in the storm.",
          "The council signed the budget."]


def schema(kind: str) -> LabelSchema:
    return LabelSchema(LABELS, name="toy", type=kind)


def pipeline(kind: str, family: str):
    features = [] if family in ("prior", "lexicon") else [{"type": "tfidf_word"}]
    config = parse_config({"name": "x", "features": features, "model": {"type": family}})
    return build_pipeline(config, schema(kind))


@pytest.mark.parametrize("family", MODEL_TYPES)
@pytest.mark.parametrize("kind", [MULTILABEL, MULTICLASS])
def test_every_family_fits_both_schema_types(kind, family):
    y = np.eye(3, dtype=int)[CLASS]
    model = pickle.loads(pickle.dumps(pipeline(kind, family).fit(TEXTS, y)))
    scores = model.predict_proba(UNSEEN)
    assert scores.shape == (3, 3) and ((scores >= 0) & (scores <= 1)).all()
    if kind == MULTICLASS:
        np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    # Everything but the floor tells these apart (a multi-label lexicon scores the label
    # without keywords 0, and so every label of the third sentence).
    if family != "prior":
        tops = 3 if kind == MULTICLASS or family != "lexicon" else 2
        assert list(scores.argmax(axis=1))[:tops] == [0, 1, 2][:tops]


@pytest.mark.parametrize("family", MODEL_TYPES)
def test_multiclass_family_survives_a_rare_and_an_absent_class(family):
    # One "other" sentence (too few for an inner calibration CV) and a fourth label never seen.
    labels = (*LABELS, Label("unused", "never seen"))
    texts, target = TEXTS[:13], CLASS[:13]
    config = parse_config({"name": "x", "model": {"type": family},
                           "features": [] if family in ("prior", "lexicon")
                           else [{"type": "tfidf_word"}]})
    model = build_pipeline(config, LabelSchema(labels, type=MULTICLASS)).fit(
        texts, np.eye(4, dtype=int)[target])
    scores = model.predict_proba(UNSEEN)
    assert scores.shape == (3, 4) and (scores[:, 3] == 0).all()
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)


def test_multiclass_lexicon_counts_keywords_and_falls_back_on_the_prior():
    y = np.eye(3, dtype=int)[[2, 2, 2, 0, 1]]  # "other" is the most frequent label
    model = pipeline(MULTICLASS, "lexicon").fit(["a", "b", "c", "d", "e"], y)
    scores = model.predict_proba(["rain and snow, then a match", "nothing to see"])
    assert list(scores.argmax(axis=1)) == [1, 2]
    np.testing.assert_allclose(scores[1], [0.2, 0.2, 0.6])  # no keyword: the prior


def test_one_label_head_with_a_single_class_predicts_it():
    from sklearn.linear_model import LogisticRegression

    head = OneLabelClassifier(LogisticRegression()).fit(np.ones((3, 2)),
                                                        np.eye(3, dtype=int)[[1, 1, 1]])
    assert head.predict_proba(np.ones((2, 2))).tolist() == [[0, 1, 0], [0, 1, 0]]


@pytest.mark.parametrize(("target", "calibrated"), [([0] * 6 + [1] * 3, True),
                                                    ([0] * 7 + [1] * 2, True),
                                                    ([0] * 8 + [1], False)])
def test_linear_svm_calibrates_when_the_rarest_class_allows(target, calibrated):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    x = np.arange(18, dtype=float).reshape(9, 2)
    model = LinearSVMScores(LinearSVC(), cv=3).fit(x, np.array(target))
    assert isinstance(model.model_, CalibratedClassifierCV) == calibrated
    scores = model.predict_proba(x)
    assert scores.shape == (9, 2)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)


def _features():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer().fit(TEXTS).transform(TEXTS + UNSEEN)


def test_weighted_one_vs_rest_on_hard_labels_is_one_vs_rest():
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from newsevents.heads import WeightedOneVsRest

    X, y = _features(), np.eye(3, dtype=int)[CLASS]
    estimator = LogisticRegression(C=4.0, class_weight="balanced", tol=1e-10, max_iter=10_000)
    plain = OneVsRestClassifier(estimator).fit(X[:len(TEXTS)], y)
    weighted = WeightedOneVsRest(estimator).fit(X[:len(TEXTS)], y)
    np.testing.assert_allclose(weighted.predict_proba(X), plain.predict_proba(X), atol=1e-6)


def test_weighted_one_vs_rest_follows_soft_targets_and_weights():
    from sklearn.linear_model import LogisticRegression

    from newsevents.heads import WeightedOneVsRest

    X = _features()[:len(TEXTS)]
    y = np.eye(3)[CLASS]
    soft = y.copy()
    soft[:6, 0] = 0.5  # the teacher unsure of every sport sentence
    estimator = LogisticRegression(C=4.0)
    sure = WeightedOneVsRest(estimator).fit(X, y).predict_proba(X)[:6, 0]
    unsure = WeightedOneVsRest(estimator).fit(X, soft).predict_proba(X)[:6, 0]
    assert (unsure < sure).all()
    light = WeightedOneVsRest(estimator).fit(
        X, soft, sample_weight=np.r_[np.full(6, 0.1), np.ones(14)]).predict_proba(X)[:6, 0]
    assert (light < unsure).all()  # the unsure rows weigh less: sport has less support
