"""Labeled rows as output: formats, columns, one row per sentence or article, atomic files.

Output goes to a temporary file beside the target, renamed into place only when the writer
closes without an error, so a reader never sees half a file. (The Spark engine stages and
commits its directories its own way, in :mod:`newsevents.spark.output`.)
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from newsevents.labels import LABEL_SEPARATOR

if TYPE_CHECKING:
    from newsevents.corpus import Article
    from newsevents.predict import LabeledSentence

FORMATS = ("jsonl", "csv")
ROW_FIELDS = ("article_id", "sentence_index", "sentence_id", "text", "labels")


def infer_format(path: str | Path | None, default: str = "jsonl") -> str:
    """``csv`` for a ``.csv`` path, ``jsonl`` for ``.jsonl``/``.json``, else ``default``."""
    suffix = Path(path).suffix.lower() if path is not None else ""
    return {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}.get(suffix, default)


def row_columns(labels: Sequence[str]) -> list[str]:
    """Output columns: one row per sentence."""
    return [*ROW_FIELDS, *(f"score_{n}" for n in labels)]


def summary_columns(labels: Sequence[str]) -> list[str]:
    """Summary columns: one row per article, a count and the top-scoring sentence per label."""
    per_label = [[f"n_{n}", f"top_{n}_score", f"top_{n}_sentence_id", f"top_{n}_text"]
                 for n in labels]
    return ["article_id", "source", "sentences", *(c for cols in per_label for c in cols)]


def sentence_row(sentence: LabeledSentence) -> dict[str, Any]:
    return {"article_id": sentence.article_id, "sentence_index": sentence.index,
            "sentence_id": sentence.sentence_id, "text": sentence.text,
            "labels": sentence.labels,
            **{f"score_{n}": score for n, score in sentence.scores.items()}}


def summary_row(article: Article, sentences: Sequence[LabeledSentence],
                labels: Sequence[str]) -> dict[str, Any]:
    """Counts per label and, for each label, the sentence that scores highest for it."""
    row: dict[str, Any] = {"article_id": article.id, "source": article.source,
                           "sentences": len(sentences)}
    for name in labels:
        top = max(sentences, key=lambda s: s.scores[name], default=None)
        row[f"n_{name}"] = sum(name in s.labels for s in sentences)
        row[f"top_{name}_score"] = top.scores[name] if top else None
        row[f"top_{name}_sentence_id"] = top.sentence_id if top else None
        row[f"top_{name}_text"] = top.text if top else None
    return row


# One encoder: json.dumps with options builds a new one per call (a fifth of the row's cost).
_JSON = json.JSONEncoder(ensure_ascii=False)


@dataclass(frozen=True)
class Formatter:
    """Turns row dicts into JSONL or CSV text (labels as a list in JSONL, ``;``-joined in CSV)."""

    fmt: str
    columns: tuple[str, ...]

    def header(self) -> str:
        return ",".join(self.columns) + "\n" if self.fmt == "csv" else ""

    def format(self, rows: Iterable[dict[str, Any]]) -> str:
        if self.fmt == "jsonl":
            return "".join(_JSON.encode(row) + "\n" for row in rows)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow([LABEL_SEPARATOR.join(v) if isinstance(v, list) else v
                             for v in (row[c] for c in self.columns)])
        return buffer.getvalue()


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[str]]:
    """Write to a temporary file beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_file_mode(path: Path) -> int:
    # mkstemp creates 0600; give the result the mode a plain open() would have.
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def open_output(target: str | Path | IO[str] | None) -> Any:
    if target is None:
        return nullcontext(sys.stdout)
    if isinstance(target, (str, Path)):
        return atomic_writer(target)
    return nullcontext(target)
