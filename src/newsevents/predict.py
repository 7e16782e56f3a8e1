"""Label sentences and articles with an exported model.

This is the prediction path: it must start fast and install lean, so it never imports MLflow,
``datasets`` or the training modules. It loads model directories only: a ``models:/`` or
``runs:/`` URI is fetched into a directory first by :func:`newsevents.tracking.fetch_model`
(``newsevents predict --model models:/...`` does this).

A model directory holds ``model.joblib`` (a fitted scikit-learn pipeline), ``metadata.json``
(labels, the schema type, per-label thresholds for a multi-label model, metrics and the sha256 of
every model file) and, for linear pipelines, the same model as plain arrays (``scorer.json``,
``scorer.npz``; see :mod:`newsevents.scorer`).
The predictor prefers the arrays: they load without scikit-learn and without unpickling.
A multi-label model gives each sentence the labels whose score reaches their threshold (maybe
none); a multiclass model gives each sentence exactly one label, the one that scores highest.
joblib files are pickles and loading one runs code: :meth:`Predictor.load` refuses any file whose
digest does not match the metadata. Load only models you trained or whose digest you trust.

Examples
--------
>>> predictor = Predictor.load("models/champion")  # doctest: +SKIP
>>> predictor.predict(["Japan pledged $50 million in aid to Kenya."])[0].labels  # doctest: +SKIP
['aid_pledge']
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from newsevents import paths, scorer
from newsevents.corpus import Sentence, split_article
from newsevents.labels import MULTICLASS, MULTILABEL, SCHEMA_TYPES

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
ENGINES = ("auto", "numpy", "sklearn")
# Locations that name a model in MLflow rather than a directory.
MLFLOW_URI_SCHEMES = ("models:/", "runs:/")


class ModelError(RuntimeError):
    """A model that is missing, unreadable, tampered with or does not fit the input."""


@dataclass(frozen=True)
class Prediction:
    """Labels and per-label scores for one sentence."""

    text: str
    labels: list[str]
    scores: dict[str, float]


@dataclass(frozen=True)
class LabeledSentence(Prediction):
    """A :class:`Prediction` with its place in an article."""

    article_id: str = ""
    index: int = 0
    sentence_id: str = ""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model_dir(directory: Path, pipeline: Any, labels: Sequence[str],
                   thresholds: Sequence[float] | None, check_texts: Sequence[str] = (),
                   schema_type: str = MULTILABEL, **metadata: Any) -> Path:
    """Write ``model.joblib``, the numpy scorer when it reproduces the pipeline, and metadata.

    ``thresholds``: one per label for a multi-label model, ``None`` for a multiclass one
    (``schema_type``), which takes the highest-scoring label. ``check_texts`` (say, the training
    sentences) join a built-in list of awkward inputs on which the saved scorer must match
    ``pipeline.predict_proba``; see :func:`_save_scorer`.
    """
    import joblib

    if (schema_type == MULTICLASS) != (thresholds is None):
        raise ValueError("a multiclass model has no thresholds, a multi-label one needs them")
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, directory / MODEL_FILE, compress=3)
    cuts = {} if thresholds is None else {
        "thresholds": [round(float(t), 6) for t in thresholds]}
    meta = {"labels": list(labels), "type": schema_type, **cuts,
            **metadata, "sha256": file_sha256(directory / MODEL_FILE),
            **_save_scorer(directory, pipeline, check_texts)}
    (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return directory


# Inputs that stress the re-implemented text handling: accents, ligatures, dotted capitals,
# other scripts, symbols, nothing at all.
PROBE_TEXTS = (
    "", "   ", "A probe sentence.", "İstanbul talks: Erdoğan and Zelenskyy met in ANKARA.",
    "L'ONU a promis 5 M€ d'aide humanitaire au Soudan — ﬁnancement « immédiat ».",
    "Президент України зустрівся з генсеком НАТО у Вільнюсі.", "北约峰会在华盛顿举行。",
    "U.S.-led talks in Doha on 3/4 July (2024) ended; NATO's $40bn pledge 🙂 stands.",
    "pledge pledged pledging PLEDGES aid aid aid " * 40,
)
SCORER_TOLERANCE = 1e-9
# A contextual encoder batches sentences by length, and float rounding in its matrix products
# depends on the batch (~1e-7 on a unit vector): its scores agree to this instead.
ENCODER_SCORER_TOLERANCE = 1e-5


def _save_scorer(directory: Path, pipeline: Any, check_texts: Sequence[str]) -> dict[str, Any]:
    """Save the numpy scorer if the pipeline converts and the reloaded copy matches it.

    Returns the metadata that records the outcome: the scorer's files and digests, or why the
    model is served from its pickle only.
    """
    for name in scorer.FILES:  # a previous export's scorer must not outlive its pickle
        (directory / name).unlink(missing_ok=True)
    try:
        converted = scorer.from_pipeline(pipeline)
        names = converted.save(directory)
    except scorer.NotConvertible as exc:
        return {"scorer_skipped": str(exc)}
    tolerance = (ENCODER_SCORER_TOLERANCE
                 if any(isinstance(b, scorer.Encoder) for b in converted.blocks)
                 else SCORER_TOLERANCE)
    texts = [*check_texts, *PROBE_TEXTS]
    expected = np.asarray(pipeline.predict_proba(texts), dtype=float)
    difference = float(np.max(np.abs(scorer.LinearScorer.load(directory).predict_proba(texts)
                                     - expected)))
    if not difference <= tolerance:
        for name in names:
            (directory / name).unlink()
        return {"scorer_skipped": f"scores differ from the pipeline's by up to {difference:.1e}"}
    return {"scorer": {"files": {n: file_sha256(directory / n) for n in names},
                       "checked_sentences": len(texts), "max_abs_difference": difference}}


class Predictor:
    """A fitted model (anything with ``predict_proba``) plus how it decides: per-label
    thresholds (multi-label), or the highest score (``multiclass``, no thresholds)."""

    def __init__(self, model: Any, labels: Sequence[str], thresholds: Sequence[float] | None,
                 metadata: dict[str, Any] | None = None, directory: Path | None = None,
                 engine: str = "auto", *, multiclass: bool = False):
        if multiclass and thresholds is not None:
            raise ModelError("a multiclass model takes the highest score: no thresholds")
        if not multiclass and (thresholds is None or len(labels) != len(thresholds)):
            raise ModelError(f"{len(labels)} labels but "
                             f"{0 if thresholds is None else len(thresholds)} thresholds")
        self.model = model
        self.labels = list(labels)
        self.multiclass = multiclass
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=float)
        self.metadata = metadata or {}
        # Where and how the model was loaded: worker processes re-load it the same way.
        self.directory = directory
        self.engine = engine

    @classmethod
    def load(cls, location: str | Path | None = None, engine: str = "auto") -> Predictor:
        """Load from a model directory (default ``models/champion``).

        A model in MLflow is fetched first: ``Predictor.load(tracking.fetch_model(uri))``.

        ``engine``: ``"numpy"`` scores with the pickle-free :mod:`newsevents.scorer` arrays,
        ``"sklearn"`` unpickles ``model.joblib``, ``"auto"`` (default) takes the arrays when
        the model has them. Both give the same scores (export checks it).

        Raises :class:`ModelError` (one line, naming the file) for a missing directory, bad
        metadata, a model file whose sha256 differs from the metadata, or a model whose
        scores do not match the metadata's labels.
        """
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if location is None:
            location = paths.CHAMPION_DIR
        if str(location).startswith(MLFLOW_URI_SCHEMES):
            raise ModelError(f"{location}: an MLflow URI, not a model directory; fetch it with "
                             "newsevents.tracking.fetch_model() first (the CLI's --model does)")
        directory = Path(location)
        meta_file = directory / METADATA_FILE
        if not meta_file.is_file():
            hint = (" (run `make train` to create one)"
                    if directory.resolve() == paths.CHAMPION_DIR.resolve()
                    else " (`make train` exports one to models/champion)")
            raise ModelError(f"{directory}: no model found: expected {MODEL_FILE} and "
                             f"{METADATA_FILE}{hint}")
        metadata, labels, thresholds, multiclass = _read_metadata(meta_file)
        scorer_files = metadata.get("scorer", {}).get("files")
        if engine == "numpy" and not scorer_files:
            why = metadata.get("scorer_skipped", "exported without one")
            raise ModelError(f"{directory}: no numpy scorer in this model ({why}); use "
                             "engine='sklearn'")
        if scorer_files and engine != "sklearn":
            model, engine = _load_scorer(directory, scorer_files), "numpy"
            probe_file = directory / scorer.ARRAYS_FILE
        else:
            model, engine = _load_pickle(directory / MODEL_FILE, metadata["sha256"]), "sklearn"
            probe_file = directory / MODEL_FILE
        predictor = cls(model, labels, thresholds, metadata, directory, engine,
                        multiclass=multiclass)
        predictor._check_outputs(probe_file)
        return predictor

    def _check_outputs(self, model_file: Path) -> None:
        """Fail at load, not mid-batch, when the model does not score the metadata's labels."""
        try:
            shape = np.shape(self.model.predict_proba(["A probe sentence."]))
        except Exception as exc:
            _raise_if_encoder_unavailable(model_file.parent, exc)
            raise ModelError(f"{model_file}: model cannot predict ({type(exc).__name__}: "
                             f"{exc})") from None
        if shape != (1, len(self.labels)):
            width = shape[1] if len(shape) == 2 else shape
            raise ModelError(f"{model_file}: model gives {width} scores per sentence but "
                             f"{METADATA_FILE} lists {len(self.labels)} labels "
                             f"({', '.join(self.labels)}); model and metadata do not match")

    def scores(self, sentences: Sequence[str]) -> np.ndarray:
        """The ``(n, n_labels)`` score matrix."""
        if len(sentences) == 0:
            return np.zeros((0, len(self.labels)))
        scores = np.asarray(self.model.predict_proba(list(sentences)), dtype=float)
        if scores.shape != (len(sentences), len(self.labels)):
            raise ModelError(f"model returned scores of shape {scores.shape} for "
                             f"{len(sentences)} sentences and {len(self.labels)} labels")
        return scores

    def _decide(self, texts: Sequence[str]) -> Iterator[tuple[list[str], dict[str, float]]]:
        """Per sentence: the labels whose score reaches its threshold (multiclass: the label
        that scores highest), and the rounded scores."""
        scores = self.scores(texts)
        # Whole-matrix numpy ops, then plain lists: per-element float()/round() calls cost
        # more than the model itself on short sentences.
        if self.multiclass:
            on = (np.arange(len(self.labels)) == scores.argmax(axis=1)[:, None]).tolist()
        else:
            on = (scores >= self.thresholds).tolist()
        names = self.labels
        for flags, row in zip(on, np.round(scores, 4).tolist(), strict=True):
            yield [n for n, o in zip(names, flags, strict=True) if o], dict(zip(names, row,
                                                                                strict=True))

    def predict(self, sentences: Sequence[str]) -> list[Prediction]:
        """Labels (score ≥ the label's threshold; multiclass: the top label) and scores for
        each sentence."""
        return [Prediction(text, labels, scores)
                for text, (labels, scores) in zip(sentences, self._decide(sentences),
                                                   strict=True)]

    def label_sentences(self, sentences: Sequence[Sentence]) -> list[LabeledSentence]:
        """Label already-split sentences (one model call for all of them)."""
        decided = self._decide([s.text for s in sentences])
        return [LabeledSentence(s.text, labels, scores, s.article_id, s.index, s.id)
                for s, (labels, scores) in zip(sentences, decided, strict=True)]

    def label_article(self, text: str, article_id: str = "") -> list[LabeledSentence]:
        """Clean and split an article as training did, then label every sentence."""
        return self.label_sentences(split_article(text, article_id))


def _read_metadata(meta_file: Path
                   ) -> tuple[dict[str, Any], list[str], list[float] | None, bool]:
    """The metadata, its labels, thresholds (``None`` for a multiclass model) and whether the
    model is multiclass, checked for the types the predictor relies on."""
    try:
        metadata = json.loads(meta_file.read_text(encoding="utf-8"))
        labels = metadata["labels"]
        # Models exported before schema types existed are multi-label.
        kind = metadata.get("type", MULTILABEL)
        if kind not in SCHEMA_TYPES:
            raise ValueError(f"type must be {' or '.join(SCHEMA_TYPES)}, not {kind!r}")
        if not isinstance(metadata["sha256"], str):
            raise TypeError("sha256 is not a string")
        if not isinstance(labels, list) or not labels or not all(isinstance(n, str)
                                                                  for n in labels):
            raise TypeError("labels must be a non-empty list of names")
        if kind == MULTICLASS:
            if metadata.get("thresholds") is not None:
                raise ValueError("a multiclass model has no thresholds")
            thresholds = None
        else:
            thresholds = [float(t) for t in metadata["thresholds"]]
        section = metadata.get("scorer", {})
        files = section.get("files", {}) if isinstance(section, dict) else None
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise TypeError("scorer.files must map file names to sha256 digests")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{meta_file}: unreadable model metadata ({type(exc).__name__}: "
                         f"{exc})") from None
    if thresholds is not None and len(labels) != len(thresholds):
        raise ModelError(f"{meta_file}: {len(labels)} labels but {len(thresholds)} thresholds")
    return metadata, labels, thresholds, kind == MULTICLASS


def _verify(path: Path, expected: str) -> None:
    """Refuse a model file that is missing or whose sha256 is not the metadata's."""
    if not path.is_file():
        raise ModelError(f"{path}: model file missing (listed in {METADATA_FILE})")
    actual = file_sha256(path)
    if actual != expected:
        raise ModelError(f"{path}: sha256 {actual[:12]}… does not match the metadata "
                         f"({expected[:12]}…); refusing to load a modified model file")


def _load_pickle(model_file: Path, sha256: str) -> Any:
    _verify(model_file, sha256)
    import joblib  # here, not at module level: only this way of loading needs it

    try:
        return joblib.load(model_file)
    except Exception as exc:
        raise ModelError(f"{model_file}: cannot load model ({type(exc).__name__}: "
                         f"{exc})") from None


def _load_scorer(directory: Path, files: dict[str, str]) -> scorer.LinearScorer:
    for name, sha256 in files.items():
        _verify(directory / name, sha256)
    try:
        return scorer.LinearScorer.load(directory)
    except Exception as exc:  # digests matched: a missing encoder, a bug or a foreign format
        _raise_if_encoder_unavailable(directory, exc)
        raise ModelError(f"{directory}: cannot load the numpy scorer ({type(exc).__name__}: "
                         f"{exc})") from None


def _raise_if_encoder_unavailable(directory: Path, exc: BaseException) -> None:
    """An accurate-tier model whose encoder is missing: say so, with the fix, in one line."""
    # Looked up, not imported: only models that use an encoder ever load that module.
    module = sys.modules.get("newsevents.encoder")
    if module is not None and isinstance(exc, module.EncoderUnavailable):
        raise ModelError(f"{directory}: {exc}") from None
