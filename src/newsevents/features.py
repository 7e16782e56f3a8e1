"""Text features and rule models that fitted pipelines contain.

Fitted pipelines are pickled with these classes inside, so the predictor imports this module
when it loads a model: it must stay light (numpy, scikit-learn base classes, model2vec).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from newsevents import paths
from newsevents.lexicon import keyword_counts, keyword_patterns

DEFAULT_EMBEDDINGS = paths.DATA / "embeddings" / "minilm-l6-static"


def _as_list(texts: Iterable[str]) -> list[str]:
    # A one-column DataFrame would iterate its column names; take the column instead.
    if hasattr(texts, "columns"):
        texts = texts.iloc[:, 0]
    return [str(t) for t in texts]


class LexiconFeatures(TransformerMixin, BaseEstimator):
    """Count keyword-stem matches per label (one column per label).

    Parameters
    ----------
    keywords : list of list of str
        For each label, word-start stems such as ``"pledg"`` or phrases such as ``"phone call"``.

    Examples
    --------
    >>> LexiconFeatures([["pledg"], ["accus"]]).fit_transform(["Japan pledged aid"]).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, keywords: Sequence[Sequence[str]] = ()):
        self.keywords = keywords

    def fit(self, X: Iterable[str], y: object = None) -> LexiconFeatures:
        self.patterns_ = keyword_patterns(self.keywords)
        return self

    def transform(self, X: Iterable[str]) -> np.ndarray:
        texts = _as_list(X)
        return np.array([keyword_counts(self.patterns_, t) for t in texts],
                        dtype=np.float64).reshape(len(texts), len(self.patterns_))

    def __setstate__(self, state: dict) -> None:
        # Compiled patterns are rebuilt rather than trusted from the pickle.
        self.__dict__.update(state)
        if "patterns_" in state:
            self.patterns_ = keyword_patterns(self.keywords)


class LexiconClassifier(ClassifierMixin, BaseEstimator):
    """A keyword baseline: a label's score rises with the number of its keywords in the text.

    ``score = 1 - exp(-matches)``: 0 with no match, 0.63 with one, 0.86 with two.
    Fitting learns nothing but the label count; it is a floor for the learned models.

    With ``one_label`` (a multiclass schema), scores are ``matches + prior`` normalised to sum
    to one, the prior being the labels' shares of the training sentences: the label with the
    most keyword matches wins, the prior breaks ties, and a sentence with no match gets the
    most frequent label (in practice the label without keywords, such as "none").
    """

    one_label = False  # models pickled before the parameter existed are multi-label

    def __init__(self, keywords: Sequence[Sequence[str]] = (), one_label: bool = False):
        self.keywords = keywords
        self.one_label = one_label

    def fit(self, X: Iterable[str], y: np.ndarray) -> LexiconClassifier:
        y = np.asarray(y)
        self.lexicon_ = LexiconFeatures(self.keywords).fit(X)
        self.classes_ = np.arange(y.shape[1])
        if self.one_label:
            self.prior_ = y.mean(axis=0)
        return self

    def predict_proba(self, X: Iterable[str]) -> np.ndarray:
        counts = self.lexicon_.transform(X)
        if not self.one_label:
            return 1.0 - np.exp(-counts)
        weights = counts + self.prior_
        return weights / weights.sum(axis=1, keepdims=True)

    def predict(self, X: Iterable[str]) -> np.ndarray:
        if self.one_label:
            return np.eye(len(self.classes_), dtype=int)[self.predict_proba(X).argmax(axis=1)]
        return (self.predict_proba(X) >= 0.5).astype(int)


# Sentence → vector, per loaded model: cross-validation embeds the same sentences many times.
_EMBEDDING_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_EMBEDDING_CACHE_SIZE = 50_000


@cache
def _static_model(directory: str):  # -> model2vec.StaticModel
    # Cross-validation fits this transformer dozens of times: load the weights once.
    from model2vec import StaticModel

    return StaticModel.from_pretrained(directory)


class StaticEmbeddings(TransformerMixin, BaseEstimator):
    """Sentence vectors from a model2vec static model distilled from all-MiniLM-L6-v2.

    The model is read from ``model_dir`` at ``fit`` and pickled with the pipeline, so a fitted
    pipeline is self-contained and never touches the network.
    """

    def __init__(self, model_dir: str | None = None):
        self.model_dir = model_dir

    def fit(self, X: Iterable[str], y: object = None) -> StaticEmbeddings:
        directory = Path(self.model_dir) if self.model_dir else DEFAULT_EMBEDDINGS
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: embedding model not found "
                                    "(see data/embeddings/README.md)")
        self.model_ = _static_model(str(directory.resolve()))
        return self

    def transform(self, X: Iterable[str]) -> np.ndarray:
        texts = _as_list(X)
        cache = _EMBEDDING_CACHE.setdefault(self.model_, {})
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        fresh: dict[str, np.ndarray] = {}
        if missing:
            vectors = self.model_.encode(missing, show_progress_bar=False)
            fresh = dict(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
        out = np.array([fresh[t] if t in fresh else cache[t] for t in texts],
                       dtype=np.float32).reshape(len(texts), self.model_.dim)
        if len(cache) + len(fresh) > _EMBEDDING_CACHE_SIZE:
            cache.clear()  # bounded: a long prediction stream must not grow memory
        cache.update(fresh)
        return out


# Per encoder digest, text key → vector: loaded from the disk cache once per process.
_CONTEXTUAL_STORE: dict[str, dict[bytes, np.ndarray]] = {}
_CONTEXTUAL_STORE_SIZE = 200_000


class ContextualEmbeddings(TransformerMixin, BaseEstimator):
    """Sentence vectors from a frozen contextual encoder (the accurate tier; see
    :mod:`newsevents.encoder`), mean-pooled and unit length.

    Parameters
    ----------
    model : str
        An encoder of :data:`newsevents.encoder.ENCODERS`, installed with
        ``newsevents encoder install``.
    cache_dir : str or None
        Where :meth:`prefetch` files vectors by encoder digest (training sets this, under
        ``data/processed/``); :meth:`transform` reads it and never writes.

    The pickle holds the encoder's name and digest, never the encoder: an unpickled copy
    loads the installed encoder and refuses one with another digest.
    """

    def __init__(self, model: str = "mpnet-base", cache_dir: str | None = None):
        self.model = model
        self.cache_dir = cache_dir

    def fit(self, X: Iterable[str], y: object = None) -> ContextualEmbeddings:
        from newsevents.encoder import encoder_identity

        # The install record, checked; the encoder itself loads only if a vector is missing.
        self.digest_, self.dim_ = encoder_identity(self.model)
        return self

    def _store(self) -> dict[bytes, np.ndarray]:
        store = _CONTEXTUAL_STORE.get(self.digest_)
        if store is None:
            disk = self._disk()
            store = _CONTEXTUAL_STORE[self.digest_] = disk.load() if disk else {}
        return store

    def _disk(self):  # -> EmbeddingCache | None
        if not self.cache_dir:
            return None
        from newsevents.embedding_cache import EmbeddingCache

        return EmbeddingCache(Path(self.cache_dir) / f"{self.model}-{self.digest_[:16]}",
                              self.dim_)

    def _vectors(self, texts: list[str], persist: bool) -> np.ndarray:
        from newsevents.embedding_cache import text_key

        store = self._store()
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in store}
        fresh: dict[bytes, np.ndarray] = {}
        if missing:
            from newsevents.encoder import load_encoder

            encoder = load_encoder(self.model, expected=self.digest_)
            fresh = dict(zip(missing, encoder.encode(list(missing.values())), strict=True))
        out = np.array([fresh[k] if k in fresh else store[k] for k in keys],
                       dtype=np.float32).reshape(len(texts), self.dim_)
        if persist and (disk := self._disk()) is not None:
            # What the disk lacks, not what memory lacked: another run may have filled memory.
            on_disk = disk.load()
            absent = {k: i for i, k in enumerate(keys) if k not in on_disk}
            disk.add(list(absent), out[list(absent.values())])
        if len(store) + len(fresh) > _CONTEXTUAL_STORE_SIZE:
            store.clear()  # bounded: a long prediction stream must not grow memory
        store.update(fresh)
        return out

    def transform(self, X: Iterable[str]) -> np.ndarray:
        return self._vectors(_as_list(X), persist=False)

    def prefetch(self, texts: Iterable[str]) -> None:
        """Encode what the disk cache lacks and file it there (training, before the folds)."""
        if not hasattr(self, "digest_"):
            self.fit(texts)
        self._vectors(list(dict.fromkeys(_as_list(texts))), persist=True)
