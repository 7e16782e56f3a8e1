"""Soft labels: a teacher model's scores on unlabeled pool sentences, one more training source.

A soft-label file (``data/annotations/soft/<name>.csv.gz``) holds one row per sentence: its id,
its pool (``source``), its ``document_id`` and the teacher's score per label, rounded. Its
sidecar ``<name>.json`` records the teacher (experiment, registered version, encoder digest),
the teacher's per-label thresholds and how the sentences were drawn. There is no text: the pools
may not be committed (``../shared/corpus/README.md``), so the text is re-split from the pools
at training time (sentence ids are hashes of the normalised text, so they match), and when the
pools are absent the source is skipped with one line saying so.

Soft-labeled sentences join training folds only; they are never scored (see
:func:`newsevents.dataset.add_soft_labels` for how they are kept apart from held-out sentences).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from newsevents import paths
from newsevents.corpus import Sentence, split_article
from newsevents.labels import LabelSchema

ID_COLUMNS = ("sentence_id", "source", "document_id")
# How soft-labeled rows train the student: the teacher's decisions (its scores against its
# thresholds) as ordinary 0/1 labels, or its scores themselves as targets.
HARD, SCORES = "hard", "scores"
TARGETS = (HARD, SCORES)
# A pool line starts with its id: documents that are not wanted are skipped unparsed.
_LEADING_ID = re.compile(r'\{"id": "([^"]+)"')


class SoftLabelError(ValueError):
    """A soft-label file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class SoftLabels:
    """A soft-label file as read: ids, the teacher's scores and thresholds, provenance."""

    path: Path
    labels: list[str]  # the schema's label names, in order
    ids: pd.DataFrame  # sentence_id, source, document_id
    scores: np.ndarray  # (n, n_labels), schema order
    thresholds: np.ndarray  # (n_labels,): the teacher's decision thresholds
    meta: dict[str, Any] = field(default_factory=dict)

    def decisions(self) -> np.ndarray:
        """The teacher's 0/1 labels: each score against its label's threshold."""
        return (self.scores >= self.thresholds).astype(np.int8)


def sidecar(path: Path) -> Path:
    """``x.csv.gz`` → ``x.json``: where a soft-label file's provenance and thresholds live."""
    name = path.name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return path.with_name(name + ".json")


def read_soft_labels(path: str | Path, schema: LabelSchema) -> SoftLabels:
    """Read and check a soft-label file and its sidecar (no pool is read here)."""
    path = Path(path)
    meta_path = sidecar(path)
    for file in (path, meta_path):
        if not file.is_file():
            raise SoftLabelError(f"{file}: soft-label file not found")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        frame = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS}, keep_default_na=False)
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as exc:
        raise SoftLabelError(f"{path}: unreadable soft labels ({str(exc).splitlines()[0]})"
                             ) from None
    score_columns = [f"score_{n}" for n in schema.names]
    missing = [c for c in (*ID_COLUMNS, *score_columns) if c not in frame.columns]
    if missing:
        raise SoftLabelError(f"{path}: missing column(s) {', '.join(missing)} "
                             f"(has: {', '.join(map(str, frame.columns))})")
    thresholds = meta.get("thresholds", {})
    if sorted(thresholds) != sorted(schema.names):
        raise SoftLabelError(f"{meta_path}: 'thresholds' must give one per label of "
                             f"{schema.source} ({', '.join(schema.names)})")
    scores = frame[score_columns].to_numpy(dtype=np.float64)
    if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
        raise SoftLabelError(f"{path}: scores must be numbers in [0, 1]")
    dup = frame["sentence_id"].duplicated()
    if dup.any():
        raise SoftLabelError(f"{path}:{int(np.flatnonzero(dup)[0]) + 2}: duplicate sentence id "
                             f"{frame['sentence_id'][dup].iloc[0]}")
    return SoftLabels(path, list(schema.names), frame[list(ID_COLUMNS)].reset_index(drop=True),
                      scores, np.array([thresholds[n] for n in schema.names], dtype=np.float64),
                      meta)


def pool_documents(pool: Path, documents: set[str] | None = None
                   ) -> Iterator[tuple[str, list[Sentence]]]:
    """``(document id, sentences)`` of a pool file (gzipped JSONL with ``id`` and ``text``),
    split as training and prediction split them; only ``documents`` when given."""
    with gzip.open(pool, "rt", encoding="utf-8") as handle:
        for line in handle:
            match = _LEADING_ID.match(line)
            if documents is not None and match and match.group(1) not in documents:
                continue  # most of a pool is skipped without parsing its JSON
            record = json.loads(line)
            doc = str(record["id"])
            if documents is None or doc in documents:
                yield doc, split_article(record["text"], doc)


def soft_rows(soft: SoftLabels, pools: Mapping[str, Path] = paths.POOLS,
              targets: str = HARD, weight: float = 1.0) -> tuple[pd.DataFrame | None, str]:
    """The soft-labeled sentences as table rows, their text re-split from the pools.

    Returns ``(rows, message)``: rows with ``sentence_id, article_id, text, labels, note,
    source, weight`` (and ``soft_scores`` with ``targets="scores"``), or ``None`` and the
    one-line reason when a pool is absent. ``labels`` are the teacher's decisions.
    """
    if targets not in TARGETS:
        raise SoftLabelError(f"soft-label targets must be one of {', '.join(TARGETS)}, "
                             f"got {targets!r}")
    wanted = soft.ids.groupby("source")["document_id"].agg(set).to_dict()
    unknown = sorted(set(wanted) - set(pools))
    if unknown:
        raise SoftLabelError(f"{soft.path}: unknown pool(s) {', '.join(unknown)} "
                             f"(known: {', '.join(pools)})")
    absent = [str(pools[name]) for name in sorted(wanted) if not Path(pools[name]).is_file()]
    if absent:
        return None, (f"soft labels {soft.path.name} skipped: pool text not found "
                      f"({', '.join(absent)}); training on the hand labels alone")
    texts: dict[tuple[str, str], str] = {}
    for name, documents in sorted(wanted.items()):
        for _doc, sentences in pool_documents(Path(pools[name]), documents):
            for sentence in sentences:
                texts.setdefault((name, sentence.id), sentence.text)
    keys = list(zip(soft.ids["source"], soft.ids["sentence_id"], strict=True))
    found = np.array([key in texts for key in keys])
    decisions = soft.decisions()[found]
    rows = pd.DataFrame({
        "sentence_id": soft.ids["sentence_id"][found].to_numpy(),
        "article_id": soft.ids["document_id"][found].to_numpy(),
        "text": [texts[key] for key, ok in zip(keys, found, strict=True) if ok],
        "labels": [[n for n, d in zip(soft.labels, row, strict=True) if d] for row in decisions],
        "note": "",
        "source": soft.ids["source"][found].to_numpy(),
        "weight": float(weight),
    })
    if targets == SCORES:
        rows["soft_scores"] = list(soft.scores[found])
    lost = int((~found).sum())
    message = (f"soft labels {soft.path.name}: {len(rows)} pool sentences re-split"
               + (f"; {lost} ids no longer match a pool sentence (splitter changed?) and are "
                  "left out" if lost else ""))
    return rows, message
