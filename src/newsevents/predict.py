"""Label sentences and articles with an exported model.

This is the prediction path: it must start fast and install lean, so it never imports MLflow,
``datasets`` or the training modules (except to resolve a ``models:/`` URI, on request).

A model directory holds ``model.joblib`` (a fitted scikit-learn pipeline) and
``metadata.json`` (labels, thresholds, metrics and the joblib file's sha256). joblib files are
pickles and loading one runs code: :meth:`Predictor.load` refuses a file whose digest does not
match its metadata. Load only models you trained or whose digest you trust.

Examples
--------
>>> predictor = Predictor.load("models/champion")  # doctest: +SKIP
>>> predictor.predict(["Japan pledged $50 million in aid to Kenya."])[0].labels  # doctest: +SKIP
['aid_pledge']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from newsevents import paths
from newsevents.corpus import split_article

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


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
                   thresholds: Sequence[float], **metadata: Any) -> Path:
    """Write ``model.joblib`` and ``metadata.json`` (with the joblib file's sha256)."""
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, directory / MODEL_FILE, compress=3)
    meta = {"labels": list(labels), "thresholds": [round(float(t), 6) for t in thresholds],
            **metadata, "sha256": file_sha256(directory / MODEL_FILE)}
    (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return directory


class Predictor:
    """A fitted pipeline plus its per-label thresholds."""

    def __init__(self, pipeline: Any, labels: Sequence[str], thresholds: Sequence[float],
                 metadata: dict[str, Any] | None = None):
        if len(labels) != len(thresholds):
            raise ModelError(f"{len(labels)} labels but {len(thresholds)} thresholds")
        self.pipeline = pipeline
        self.labels = list(labels)
        self.thresholds = np.asarray(thresholds, dtype=float)
        self.metadata = metadata or {}

    @classmethod
    def load(cls, location: str | Path | None = None) -> Predictor:
        """Load from a model directory (default ``models/champion``) or a ``models:/`` URI."""
        if location is None:
            location = paths.CHAMPION_DIR
        if str(location).startswith(("models:/", "runs:/")):
            location = _download_mlflow_model(str(location))
        directory = Path(location)
        model_file, meta_file = directory / MODEL_FILE, directory / METADATA_FILE
        if not model_file.is_file() or not meta_file.is_file():
            hint = " (run `make train` to create one)" if directory == paths.CHAMPION_DIR else ""
            raise ModelError(f"{directory}: no model found: expected {MODEL_FILE} and "
                             f"{METADATA_FILE}{hint}")
        try:
            metadata = json.loads(meta_file.read_text(encoding="utf-8"))
            expected = metadata["sha256"]
            labels, thresholds = metadata["labels"], metadata["thresholds"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{meta_file}: unreadable model metadata ({exc})") from None
        actual = file_sha256(model_file)
        if actual != expected:
            raise ModelError(f"{model_file}: sha256 {actual[:12]}… does not match the metadata "
                             f"({str(expected)[:12]}…); refusing to load a modified model file")
        import joblib

        try:
            pipeline = joblib.load(model_file)
        except Exception as exc:
            raise ModelError(f"{model_file}: cannot load model ({type(exc).__name__}: "
                             f"{exc})") from None
        return cls(pipeline, labels, thresholds, metadata)

    def scores(self, sentences: Sequence[str]) -> np.ndarray:
        """The ``(n, n_labels)`` score matrix."""
        if len(sentences) == 0:
            return np.zeros((0, len(self.labels)))
        scores = np.asarray(self.pipeline.predict_proba(list(sentences)), dtype=float)
        if scores.shape != (len(sentences), len(self.labels)):
            raise ModelError(f"model returned scores of shape {scores.shape} for "
                             f"{len(sentences)} sentences and {len(self.labels)} labels")
        return scores

    def predict(self, sentences: Sequence[str]) -> list[Prediction]:
        """Labels (score ≥ the label's threshold) and scores for each sentence."""
        scores = self.scores(sentences)
        on = scores >= self.thresholds
        return [Prediction(text, [n for n, o in zip(self.labels, row_on, strict=True) if o],
                           {n: round(float(s), 4) for n, s in zip(self.labels, row, strict=True)})
                for text, row, row_on in zip(sentences, scores, on, strict=True)]

    def label_article(self, text: str, article_id: str = "") -> list[LabeledSentence]:
        """Clean and split an article as training did, then label every sentence."""
        sentences = split_article(text, article_id)
        predictions = self.predict([s.text for s in sentences])
        return [LabeledSentence(p.text, p.labels, p.scores, s.article_id, s.index, s.id)
                for s, p in zip(sentences, predictions, strict=True)]


def _download_mlflow_model(uri: str) -> Path:
    """Fetch the model directory behind a registered MLflow model (imports MLflow)."""
    from newsevents.tracking import download_model_dir

    return download_model_dir(uri)
