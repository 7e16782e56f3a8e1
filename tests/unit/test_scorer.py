"""The numpy scorer reproduces the scikit-learn pipelines it is converted from."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from newsevents.config import parse_config
from newsevents.dataset import multi_hot
from newsevents.models import build_pipeline
from newsevents.predict import PROBE_TEXTS
from newsevents.scorer import LinearScorer, NotConvertible, from_pipeline

# Text the fitted vocabularies have never seen, in several scripts and registers.
UNSEEN = [
    "Kenya's parliament voted to suspend the fuel subsidy until further notice.",
    "ÉTATS-UNIS : Washington accuse Téhéran d'armer les rebelles houthis.",
    "The Straße-Straße talks (Bonn, 1990) were ﬁnal; ﬂags flew at half-mast.",
    "Ministers from ASEAN met their Pacific counterparts by video link.",
    "\t\n  ", "$$$ 100,000,000 !!!", "talks talks talks talks",
]

CONFIGS = {
    "tfidf": [{"type": "tfidf_word"}],
    "tfidf-variants": [{"type": "tfidf_word", "ngram_range": [1, 3], "sublinear_tf": False,
                        "strip_accents": None, "lowercase": False, "norm": "l1",
                        "min_df": 2}],
    "tfidf-unigrams-binary-noidf": [{"type": "tfidf_word", "ngram_range": [1, 1],
                                     "binary": True, "use_idf": False}],
    "champion-like": [{"type": "tfidf_word", "min_df": 2}, {"type": "embedding"},
                      {"type": "lexicon"}],
    "lexicon-only": [{"type": "lexicon"}],
}


def fitted(schema, table, features, model=None):
    config = parse_config({"name": "x", "features": features,
                           "model": model or {"type": "logreg"}})
    return build_pipeline(config, schema).fit(list(table["text"]), multi_hot(table, schema))


@pytest.mark.parametrize("features", CONFIGS.values(), ids=CONFIGS.keys())
def test_scorer_matches_the_pipeline_after_a_save_and_load(schema, table, features, tmp_path):
    pipeline = fitted(schema, table, features)
    from_pipeline(pipeline).save(tmp_path)
    scorer = LinearScorer.load(tmp_path)
    texts = [*table["text"].sample(300, random_state=0), *UNSEEN, *PROBE_TEXTS]
    expected = pipeline.predict_proba(texts)
    np.testing.assert_allclose(scorer.predict_proba(texts), expected, rtol=0, atol=1e-9)
    assert expected.std(axis=0).min() > 0.01  # the scores actually vary: the check has teeth


@pytest.mark.parametrize("config", ["tfidf", "tfidf-variants"])
def test_tfidf_terms_are_scikit_learns(schema, table, config):
    pipeline = fitted(schema, table, CONFIGS[config])
    vectorizer = pipeline.named_steps["features"].transformer_list[0][1]
    analyzer = vectorizer.build_analyzer()
    [block] = from_pipeline(pipeline).blocks
    for text in [*UNSEEN, *PROBE_TEXTS]:
        assert block.analyze(text) == analyzer(text)


def test_no_combining_mark_below_u0300():
    # _strip_accents_unicode skips the lookup for characters below U+0300.
    assert not any(unicodedata.combining(chr(c)) for c in range(0x300))


@pytest.mark.parametrize(("features", "model", "problem"), [
    ([{"type": "tfidf_char"}], {"type": "logreg"}, "only plain word TF-IDF"),
    ([{"type": "tfidf_word"}], {"type": "complementnb"}, "binary logistic regression"),
])
def test_other_pipelines_are_not_convertible(schema, table, features, model, problem):
    with pytest.raises(NotConvertible, match=problem):
        from_pipeline(fitted(schema, table, features, model))


def one_class_per_sentence(table, schema, classes):
    """A multiclass schema over ``classes`` (label names, plus "none") and a table relabeled to
    one class per sentence: its first label among ``classes``, else "none"."""
    from newsevents.labels import Label, LabelSchema

    multiclass = LabelSchema((*(schema.labels[schema.index(n)] for n in classes),
                              Label("none", "")), type="multiclass")
    relabeled = table.assign(labels=[[next((n for n in ls if n in classes), "none")]
                                     for ls in table["labels"]])
    return multiclass, relabeled


@pytest.mark.parametrize(("classes", "absent"), [
    (["aid_pledge", "threat_attribution", "diplomatic_meeting", "policy_shift"], False),
    ([], False),  # two classes in training: scikit-learn keeps one weight row
    (["aid_pledge", "policy_shift"], True),  # a label with no training sentence scores 0
])
def test_softmax_scorer_matches_a_multiclass_pipeline(schema, table, classes, absent,
                                                      tmp_path):
    multiclass, relabeled = one_class_per_sentence(table, schema, classes or ["aid_pledge"])
    train = relabeled[[ls != ["policy_shift"] for ls in relabeled["labels"]]] if absent \
        else relabeled
    pipeline = fitted(multiclass, train, CONFIGS["champion-like"])
    spec = from_pipeline(pipeline)
    assert spec.link == "softmax" and len(spec.columns) == len(multiclass) - absent
    spec.save(tmp_path)
    scorer = LinearScorer.load(tmp_path)
    texts = [*table["text"].sample(300, random_state=0), *UNSEEN, *PROBE_TEXTS]
    expected = pipeline.predict_proba(texts)
    np.testing.assert_allclose(scorer.predict_proba(texts), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0)
    assert expected[:, :-1].std(axis=0).max() > 0.01  # the scores actually vary
    if absent:
        assert (expected[:, multiclass.index("policy_shift")] == 0).all()


def test_scorer_matches_a_pipeline_trained_on_soft_targets(schema, table, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from newsevents.heads import WeightedOneVsRest

    base = fitted(schema, table.iloc[:50], CONFIGS["champion-like"])
    y = multi_hot(table, schema).astype(float)
    y[::3] = np.random.default_rng(0).uniform(size=y[::3].shape)  # teacher scores
    pipeline = Pipeline([("features", base.named_steps["features"]),
                         ("classifier", WeightedOneVsRest(LogisticRegression(C=8.0)))])
    pipeline.fit(list(table["text"]), y, classifier__sample_weight=np.linspace(0.2, 1, len(y)))
    from_pipeline(pipeline).save(tmp_path)
    texts = [*table["text"].sample(300, random_state=0), *UNSEEN, *PROBE_TEXTS]
    expected = pipeline.predict_proba(texts)
    np.testing.assert_allclose(LinearScorer.load(tmp_path).predict_proba(texts), expected,
                               rtol=0, atol=1e-9)
    assert expected.std(axis=0).min() > 0.01


def test_multilabel_scorer_files_keep_format_1(schema, table, tmp_path):
    import json

    from_pipeline(fitted(schema, table, CONFIGS["tfidf"])).save(tmp_path)
    spec = json.loads((tmp_path / "scorer.json").read_text())
    assert spec["format"] == 1 and "link" not in spec


def test_other_multiclass_pipelines_are_not_convertible(schema, table):
    multiclass, relabeled = one_class_per_sentence(table, schema, ["aid_pledge"])
    with pytest.raises(NotConvertible, match="only logistic regression"):
        from_pipeline(fitted(multiclass, relabeled, CONFIGS["tfidf"], {"type": "sgd"}))
