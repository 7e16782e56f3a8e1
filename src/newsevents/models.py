"""Model families: turn an experiment's ``features`` and ``model`` sections into a pipeline.

Every pipeline is fitted on a list of sentences and their ``(n_sentences, n_labels)`` multi-hot
matrix, and exposes ``predict_proba`` returning an ``(n_sentences, n_labels)`` array of scores:
one-vs-rest per-label scores for a multi-label schema, class probabilities summing to one for a
multiclass schema (one multiclass estimator, softmax for logistic regression). Every family
builds both.

Examples
--------
>>> from newsevents.config import parse_config
>>> from newsevents.labels import load_schema
>>> cfg = parse_config({"name": "x", "features": [{"type": "tfidf_word"}],
...                     "model": {"type": "logreg"}})
>>> build_pipeline(cfg, load_schema()).steps[-1][0]
'classifier'
"""

from __future__ import annotations

from typing import Any

from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.svm import LinearSVC

from newsevents import paths
from newsevents.config import ExperimentConfig, FeatureConfig
from newsevents.features import (
    ContextualEmbeddings,
    LexiconClassifier,
    LexiconFeatures,
    StaticEmbeddings,
)
from newsevents.heads import LinearSVMScores, OneLabelClassifier, WeightedOneVsRest
from newsevents.labels import LabelSchema


def _keywords(schema: LabelSchema) -> list[list[str]]:
    return [list(label.keywords) for label in schema.labels]


def _tfidf(params: dict[str, Any], analyzer: str, ngrams: tuple[int, int]) -> TfidfVectorizer:
    options: dict[str, Any] = {"analyzer": analyzer, "ngram_range": ngrams,
                               "sublinear_tf": True, "min_df": 1, "strip_accents": "unicode",
                               "lowercase": True}
    options.update(params)
    options["ngram_range"] = tuple(options["ngram_range"])
    return TfidfVectorizer(**options)


def build_feature(feature: FeatureConfig, schema: LabelSchema) -> Any:
    """One feature transformer (text in, matrix out)."""
    if feature.type == "tfidf_word":
        return _tfidf(feature.params, "word", (1, 2))
    if feature.type == "tfidf_char":
        return _tfidf(feature.params, "char_wb", (2, 5))
    if feature.type == "lexicon":
        # Counts are scaled so they sit beside TF-IDF weights without dominating them.
        return Pipeline([("counts", LexiconFeatures(_keywords(schema))),
                         ("scale", MaxAbsScaler())])
    if feature.type == "embedding":
        return StaticEmbeddings(**feature.params)
    if feature.type == "encoder":
        return ContextualEmbeddings(**feature.params, cache_dir=str(paths.ENCODER_CACHE))
    raise ValueError(f"unknown feature type {feature.type!r}")


def build_estimator(kind: str, params: dict[str, Any], seed: int) -> Any:
    """One estimator with ``predict_proba``, wrapped by the caller: one-vs-rest (a binary
    problem per label) or :class:`OneLabelClassifier` (one multiclass problem)."""
    if kind == "prior":
        return DummyClassifier(strategy="prior")
    if kind == "logreg":
        return LogisticRegression(**{"C": 4.0, "class_weight": "balanced", "max_iter": 2000,
                                     "random_state": seed, **params})
    if kind == "linearsvc":
        svc = LinearSVC(**{"C": 0.5, "class_weight": "balanced", "random_state": seed, **params})
        # Calibrated so that scores are probabilities, comparable across labels.
        return LinearSVMScores(svc, cv=3)
    if kind == "complementnb":
        return ComplementNB(**{"alpha": 0.3, **params})
    if kind == "sgd":
        return SGDClassifier(**{"loss": "modified_huber", "alpha": 1e-4, "class_weight": "balanced",
                                "random_state": seed, **params})
    raise ValueError(f"unknown model type {kind!r}")


def build_pipeline(config: ExperimentConfig, schema: LabelSchema) -> Pipeline:
    """The unfitted pipeline an experiment describes."""
    if config.model.type == "lexicon":
        return Pipeline([("classifier", LexiconClassifier(_keywords(schema),
                                                          one_label=schema.multiclass))])
    features = list(config.features) or [FeatureConfig("lexicon")]
    union = FeatureUnion([(f"{f.type}_{i}", build_feature(f, schema))
                          for i, f in enumerate(features)])
    estimator = build_estimator(config.model.type, config.model.params, config.seed)
    if schema.multiclass:
        head = OneLabelClassifier(estimator)
    elif config.data.soft_labels:  # soft scores as targets, and soft rows weighed apart
        head = WeightedOneVsRest(estimator)
    else:
        head = OneVsRestClassifier(estimator)
    return Pipeline([("features", union), ("classifier", head)])


def _contextual_steps(pipeline: Pipeline) -> list[ContextualEmbeddings]:
    union = dict(pipeline.steps).get("features")
    steps = union.transformer_list if isinstance(union, FeatureUnion) else []
    return [step for _, step in steps if isinstance(step, ContextualEmbeddings)]


def prefetch_features(pipeline: Pipeline, texts: list[str]) -> None:
    """Encode ``texts`` once with every contextual encoder of ``pipeline``, into the disk cache,
    so that cross-validation folds (in other processes) only read vectors."""
    for step in _contextual_steps(pipeline):
        step.prefetch(texts)


def encoders_used(pipeline: Pipeline) -> list[dict[str, str]]:
    """Name and digest of each contextual encoder a fitted pipeline needs (for its metadata)."""
    return [{"name": step.model, "sha256": step.digest_} for step in _contextual_steps(pipeline)]
