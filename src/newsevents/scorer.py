"""A fitted linear pipeline as plain arrays, scoring sentences with numpy alone.

Loading ``model.joblib`` unpickles a scikit-learn pipeline: that runs code and imports
scikit-learn (over a second on a small machine). A fitted *linear* pipeline is only a word
vocabulary with idf weights, keyword stems with scales, an embedding table and a weight matrix.
:class:`LinearScorer` keeps just those, stored as JSON and a pickle-free ``.npz``, and recomputes
``predict_proba``. :func:`from_pipeline` converts a fitted pipeline; export writes the result only
after checking that it reproduces the pipeline's scores (see ``predict.save_model_dir``).

Supported: a ``FeatureUnion`` of word TF-IDF, lexicon counts (max-abs scaled), static
embeddings and contextual-encoder vectors (named by encoder and digest; the encoder itself is
installed separately, see :mod:`newsevents.encoder`), followed by one-vs-rest binary logistic
regression (a multi-label schema: one sigmoid per label) or by one multinomial logistic
regression (a multiclass schema: a softmax over the labels). Anything else raises
:class:`NotConvertible` and the model is served from its pickle as before.

Examples
--------
>>> scorer = LinearScorer.load("models/champion")  # doctest: +SKIP
>>> scorer.predict_proba(["Japan pledged $50 million in aid to Kenya."]).round(2)  # doctest: +SKIP
array([[0.97, 0.02, 0.03, 0.04]])
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from newsevents.lexicon import count_keywords, keyword_patterns

SPEC_FILE = "scorer.json"
ARRAYS_FILE = "scorer.npz"
TOKENIZER_FILE = "scorer-tokenizer.json"
FILES = (SPEC_FILE, ARRAYS_FILE, TOKENIZER_FILE)
FORMAT = 1
# Softmax scorers carry a format of their own, so that a reader that knows only format 1 (and
# would apply sigmoids) refuses them instead of scoring them wrongly.
SOFTMAX_FORMAT = 2
SIGMOID, SOFTMAX = "sigmoid", "softmax"


class NotConvertible(ValueError):
    """The pipeline has a step this module cannot reproduce."""


class Block(Protocol):
    """One feature block: its share of the decision function."""

    width: int

    def decision(self, texts: Sequence[str], weights: np.ndarray) -> np.ndarray:
        """``(n_texts, n_labels)``: features times ``weights`` (``(width, n_labels)``)."""

    def spec(self) -> dict[str, Any]: ...

    def arrays(self) -> dict[str, np.ndarray]: ...


def _strip_accents_unicode(text: str) -> str:
    # As scikit-learn's strip_accents_unicode: decompose, drop combining marks. All combining
    # marks lie above U+02FF, and each distinct character is looked up once: most news
    # sentences are non-ASCII only for their curly quotes and dashes.
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    marks = {ord(c): None for c in set(decomposed) if c > "\u02ff" and unicodedata.combining(c)}
    return decomposed.translate(marks) if marks else decomposed


class WordTfidf:
    """``TfidfVectorizer(analyzer="word")``: tokens, n-grams, (sublinear) tf × idf, l2 norm."""

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray | None, *, lowercase: bool,
                 strip_accents: str | None, token_pattern: str, ngram_range: Sequence[int],
                 sublinear_tf: bool, binary: bool, norm: str | None):
        self.terms = list(vocabulary)
        self.index = {term: i for i, term in enumerate(self.terms)}
        self.idf = idf
        self.options = {"lowercase": lowercase, "strip_accents": strip_accents,
                        "token_pattern": token_pattern, "ngram_range": list(ngram_range),
                        "sublinear_tf": sublinear_tf, "binary": binary, "norm": norm}
        self.token_re = re.compile(token_pattern)
        self.width = len(self.terms)

    def analyze(self, text: str) -> list[str]:
        """Terms of ``text`` in scikit-learn's order (unigrams, then bigrams, …)."""
        if self.options["lowercase"]:
            text = text.lower()
        if self.options["strip_accents"] == "unicode":
            text = _strip_accents_unicode(text)
        tokens = self.token_re.findall(text)
        low, high = self.options["ngram_range"]
        terms = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            terms.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        return terms

    def decision(self, texts: Sequence[str], weights: np.ndarray) -> np.ndarray:
        # Sparse rows as (row, column, value) triples; the products are summed per row.
        rows: list[int] = []
        cols: list[int] = []
        vals: list[int] = []
        index = self.index
        for row, text in enumerate(texts):
            counts = Counter(j for term in self.analyze(text) if (j := index.get(term)) is not None)
            rows.extend([row] * len(counts))
            cols.extend(counts.keys())
            vals.extend(counts.values())
        row_ids = np.asarray(rows, dtype=np.intp)
        col_ids = np.asarray(cols, dtype=np.intp)
        values = np.asarray(vals, dtype=np.float64)
        if self.options["binary"]:
            values = np.minimum(values, 1.0)
        if self.options["sublinear_tf"]:
            values = np.log(values) + 1.0
        if self.idf is not None:
            values = values * self.idf[col_ids]
        n = len(texts)
        if self.options["norm"] == "l2":
            norms = np.sqrt(np.bincount(row_ids, weights=values * values, minlength=n))
            values = values / norms[row_ids]
        elif self.options["norm"] == "l1":
            norms = np.bincount(row_ids, weights=np.abs(values), minlength=n)
            values = values / norms[row_ids]
        contributions = values[:, None] * weights[col_ids]
        return np.stack([np.bincount(row_ids, weights=contributions[:, k], minlength=n)
                         for k in range(weights.shape[1])], axis=1)

    def spec(self) -> dict[str, Any]:
        return {"type": "tfidf_word", **self.options, "vocabulary": self.terms}

    def arrays(self) -> dict[str, np.ndarray]:
        return {} if self.idf is None else {"idf": self.idf}


class Lexicon:
    """Keyword-stem counts per label, divided by the fitted max-abs scale."""

    def __init__(self, keywords: Sequence[Sequence[str]], scale: np.ndarray):
        self.keywords = [list(k) for k in keywords]
        self.patterns = keyword_patterns(self.keywords)
        self.scale = scale
        self.width = len(self.keywords)

    def decision(self, texts: Sequence[str], weights: np.ndarray) -> np.ndarray:
        counts = np.array([count_keywords(self.patterns, t) for t in texts],
                          dtype=np.float64).reshape(len(texts), self.width)
        return (counts / self.scale) @ weights

    def spec(self) -> dict[str, Any]:
        return {"type": "lexicon", "keywords": self.keywords}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"scale": self.scale}


class Embedding:
    """Mean-pooled static token vectors (a model2vec ``StaticModel``)."""

    def __init__(self, model: Any):
        if model.weights is not None or model.token_mapping is not None:
            raise NotConvertible("vocabulary-quantized embedding models are not supported")
        self.model = model
        self.width = int(model.dim)

    @classmethod
    def from_parts(cls, vectors: np.ndarray, tokenizer_json: str, normalize: bool,
                   max_length: int | None) -> Embedding:
        # The constructor, not StaticModel.from_pretrained: that one imports huggingface_hub
        # (a quarter of a second) to support downloads we never make.
        from model2vec import StaticModel
        from tokenizers import Tokenizer

        return cls(StaticModel(vectors, Tokenizer.from_str(tokenizer_json), normalize=normalize,
                               max_length=max_length))

    def decision(self, texts: Sequence[str], weights: np.ndarray) -> np.ndarray:
        vectors = self.model.encode(list(texts), show_progress_bar=False,
                                    use_multiprocessing=False)
        return np.asarray(vectors, dtype=np.float64).reshape(len(texts), self.width) @ weights

    def spec(self) -> dict[str, Any]:
        return {"type": "embedding", "normalize": bool(self.model.normalize),
                "max_length": self.model.max_length}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"vectors": np.asarray(self.model.embedding)}


class Encoder:
    """Vectors of an installed contextual encoder, identified by name and sha256.

    The encoder module (and ONNX Runtime) is imported only when a model has this block.
    """

    def __init__(self, name: str, sha256: str, dim: int):
        self.name, self.sha256, self.width = name, sha256, int(dim)
        self._encoder: Any = None

    def _load(self) -> Any:
        if self._encoder is None:
            from newsevents.encoder import EncoderUnavailable, load_encoder

            encoder = load_encoder(self.name, expected=self.sha256)
            if encoder.dim != self.width:
                raise EncoderUnavailable(f"encoder {self.name!r} gives {encoder.dim}-d vectors, "
                                         f"the model expects {self.width}")
            self._encoder = encoder
        return self._encoder

    def decision(self, texts: Sequence[str], weights: np.ndarray) -> np.ndarray:
        vectors = self._load().encode(list(texts))
        return np.asarray(vectors, dtype=np.float64).reshape(len(texts), self.width) @ weights

    def spec(self) -> dict[str, Any]:
        return {"type": "encoder", "name": self.name, "sha256": self.sha256, "dim": self.width}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}


class LinearScorer:
    """Feature blocks, then one sigmoid per label (multi-label) or one softmax over the labels
    (multiclass): ``predict_proba`` without scikit-learn.

    Parameters
    ----------
    blocks : list
        Feature blocks in the order of the pipeline's ``FeatureUnion``.
    coef : ndarray of shape (n_outputs, n_features)
    intercept : ndarray of shape (n_outputs,)
    link : ``"sigmoid"`` (an output per label) or ``"softmax"``
    columns : ndarray of shape (n_outputs,), softmax only
        The label of each output: labels absent from the training data have none and score 0.
    n_labels : int, softmax only
    """

    def __init__(self, blocks: Sequence[Block], coef: np.ndarray, intercept: np.ndarray,
                 link: str = SIGMOID, columns: np.ndarray | None = None,
                 n_labels: int | None = None):
        width = sum(b.width for b in blocks)
        if coef.ndim != 2 or coef.shape[1] != width or intercept.shape != (coef.shape[0],):
            raise ValueError(f"coefficients of shape {coef.shape} and {intercept.shape} do not "
                             f"fit {width} features")
        if link == SOFTMAX:
            columns = np.asarray(columns, dtype=np.intp)
            if columns.shape != (coef.shape[0],) or n_labels is None or columns.max() >= n_labels:
                raise ValueError(f"softmax outputs {columns.shape} do not fit {n_labels} labels")
        elif link != SIGMOID:
            raise ValueError(f"unknown link {link!r}")
        self.blocks = list(blocks)
        self.coef = coef
        self.intercept = intercept
        self.link = link
        self.columns = columns
        self.n_labels = n_labels
        # Each block's slice of the weights, as (width, n_outputs) for a row-major product.
        edges = np.cumsum([0] + [b.width for b in self.blocks])
        self._weights = [np.ascontiguousarray(coef[:, a:b].T) for a, b in pairwise(edges)]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``(n_texts, n_labels)`` probabilities, as the source pipeline's ``predict_proba``."""
        texts = [str(t) for t in texts]
        decision = np.tile(self.intercept, (len(texts), 1))
        for block, weights in zip(self.blocks, self._weights, strict=True):
            decision += block.decision(texts, weights)
        if self.link == SIGMOID:
            return 1.0 / (1.0 + np.exp(-decision))
        # As scikit-learn's softmax: shift by the row maximum, exponentiate, normalise.
        decision -= decision.max(axis=1, keepdims=True)
        np.exp(decision, out=decision)
        decision /= decision.sum(axis=1, keepdims=True)
        out = np.zeros((len(texts), self.n_labels))
        out[:, self.columns] = decision
        return out

    def save(self, directory: Path) -> list[str]:
        """Write the scorer's files into ``directory``; return their names."""
        arrays = {"coef": self.coef, "intercept": self.intercept}
        head: dict[str, Any] = {"format": FORMAT}
        if self.link == SOFTMAX:
            head = {"format": SOFTMAX_FORMAT, "link": SOFTMAX, "n_labels": self.n_labels}
            arrays["columns"] = self.columns
        blocks, names = [], [SPEC_FILE, ARRAYS_FILE]
        for i, block in enumerate(self.blocks):
            blocks.append(block.spec())
            arrays.update({f"block{i}_{name}": a for name, a in block.arrays().items()})
            if isinstance(block, Embedding):  # at most one (see from_pipeline)
                (directory / TOKENIZER_FILE).write_text(block.model.tokenizer.to_str(),
                                                        encoding="utf-8")
                names.append(TOKENIZER_FILE)
        (directory / SPEC_FILE).write_text(json.dumps({**head, "blocks": blocks},
                                                      ensure_ascii=False), encoding="utf-8")
        with (directory / ARRAYS_FILE).open("wb") as handle:
            np.savez(handle, **arrays)
        return names

    @classmethod
    def load(cls, directory: Path | str) -> LinearScorer:
        """Read a scorer written by :meth:`save` (no pickle is ever loaded)."""
        directory = Path(directory)
        spec = json.loads((directory / SPEC_FILE).read_text(encoding="utf-8"))
        if spec.get("format") not in (FORMAT, SOFTMAX_FORMAT):
            raise ValueError(f"unsupported scorer format {spec.get('format')!r}")
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        blocks: list[Block] = []
        for i, block in enumerate(spec["blocks"]):
            own = {name.split("_", 1)[1]: a for name, a in arrays.items()
                   if name.startswith(f"block{i}_")}
            kind = block.pop("type")
            if kind == "tfidf_word":
                blocks.append(WordTfidf(block.pop("vocabulary"), own.get("idf"), **block))
            elif kind == "lexicon":
                blocks.append(Lexicon(block["keywords"], own["scale"]))
            elif kind == "embedding":
                tokenizer = (directory / TOKENIZER_FILE).read_text(encoding="utf-8")
                blocks.append(Embedding.from_parts(own["vectors"], tokenizer, **block))
            elif kind == "encoder":
                encoder = Encoder(**block)
                encoder._load()  # fail at load, with the fix, not at the first sentence
                blocks.append(encoder)
            else:
                raise ValueError(f"unknown feature block {kind!r}")
        if spec["format"] == SOFTMAX_FORMAT:
            return cls(blocks, arrays["coef"], arrays["intercept"], SOFTMAX, arrays["columns"],
                       int(spec["n_labels"]))
        return cls(blocks, arrays["coef"], arrays["intercept"])


def from_pipeline(pipeline: Any) -> LinearScorer:
    """Convert a fitted ``Pipeline([("features", FeatureUnion), ("classifier", OvR(LR))])``,
    or one whose classifier is a ``OneLabelClassifier(LR)`` (a multiclass schema).

    Runs at export, on the training side: it imports scikit-learn to recognise the steps.
    Raises :class:`NotConvertible` naming the first step it cannot reproduce.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import MaxAbsScaler

    from newsevents.features import ContextualEmbeddings, LexiconFeatures, StaticEmbeddings
    from newsevents.heads import OneLabelClassifier, WeightedOneVsRest

    steps = dict(getattr(pipeline, "steps", []))
    union, classifier = steps.get("features"), steps.get("classifier")
    if not isinstance(union, FeatureUnion) or not isinstance(
            classifier, OneVsRestClassifier | OneLabelClassifier | WeightedOneVsRest):
        raise NotConvertible("not a feature union followed by a one-vs-rest or one-label "
                             "classifier")
    if union.transformer_weights:
        raise NotConvertible("weighted feature unions are not supported")
    blocks: list[Block] = []
    for name, step in union.transformer_list:
        if isinstance(step, TfidfVectorizer):
            blocks.append(_word_tfidf(name, step))
        elif (isinstance(step, Pipeline) and len(step.steps) == 2
              and isinstance(step.steps[0][1], LexiconFeatures)
              and isinstance(step.steps[1][1], MaxAbsScaler)):
            blocks.append(Lexicon(step.steps[0][1].keywords,
                                  np.asarray(step.steps[1][1].scale_, dtype=np.float64)))
        elif isinstance(step, StaticEmbeddings):
            blocks.append(Embedding(step.model_))
        elif isinstance(step, ContextualEmbeddings):
            blocks.append(Encoder(step.model, step.digest_, step.dim_))
        else:
            raise NotConvertible(f"feature {name!r} ({type(step).__name__}) is not supported")
    if sum(isinstance(b, Embedding) for b in blocks) > 1:
        raise NotConvertible("more than one embedding feature is not supported")
    if isinstance(classifier, OneLabelClassifier):
        return _softmax_scorer(blocks, classifier)
    estimators = classifier.estimators_
    if not all(isinstance(e, LogisticRegression) and np.shape(e.coef_)[0] == 1
               for e in estimators):
        raise NotConvertible("only binary logistic regression per label is supported")
    coef = np.vstack([e.coef_ for e in estimators]).astype(np.float64)
    intercept = np.concatenate([e.intercept_ for e in estimators]).astype(np.float64)
    return LinearScorer(blocks, coef, intercept)


def _softmax_scorer(blocks: list[Block], head: Any) -> LinearScorer:
    """The scorer of a ``OneLabelClassifier`` around a logistic regression."""
    from sklearn.linear_model import LogisticRegression

    model = head.estimator_
    if model is None:
        raise NotConvertible("trained on one class only")
    if not isinstance(model, LogisticRegression):
        raise NotConvertible("only logistic regression is supported for a multiclass schema")
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:
        # Two classes: scikit-learn keeps one weight row w, p(second) = sigmoid(w·x), which is
        # the softmax of the margins (0, w·x).
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return LinearScorer(blocks, coef, intercept, SOFTMAX, np.asarray(model.classes_),
                        len(head.classes_))


def _word_tfidf(name: str, step: Any) -> WordTfidf:
    supported = (step.analyzer == "word" and step.input == "content" and step.preprocessor is None
                 and step.tokenizer is None and step.stop_words is None
                 and step.strip_accents in (None, "unicode") and step.norm in (None, "l1", "l2")
                 and re.compile(step.token_pattern).groups == 0)
    if not supported:
        raise NotConvertible(f"feature {name!r}: only plain word TF-IDF is supported")
    vocabulary = sorted(step.vocabulary_, key=step.vocabulary_.__getitem__)
    return WordTfidf(vocabulary, np.asarray(step.idf_, dtype=np.float64) if step.use_idf else None,
                     lowercase=step.lowercase, strip_accents=step.strip_accents,
                     token_pattern=step.token_pattern, ngram_range=step.ngram_range,
                     sublinear_tf=step.sublinear_tf, binary=step.binary, norm=step.norm)
