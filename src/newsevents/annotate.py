"""Active learning: queue the sentences the model is least sure about, and record their labels.

``newsevents annotate`` is built from the pieces below, so a Python user can reach each one:

- :func:`build_queue` splits new articles, drops sentences already labeled anywhere (by sentence
  id), scores the rest and ranks them by uncertainty, keeping one sentence per near-duplicate group;
- :class:`AnnotationStore` records each decision at once in ``data/annotations/annotated.csv``;
  the file is valid for :func:`newsevents.dataset.load_annotations` at every moment;
- :class:`Session` is the labeling loop without a screen (toggle, accept, skip, undo); the
  terminal screen in :mod:`newsevents.annotate_tui` only draws it and maps keys to it;
- :func:`export_queue` and :func:`import_annotations` do the same through a spreadsheet.

Examples
--------
>>> schema = load_schema()  # doctest: +SKIP
>>> store = AnnotationStore(paths.ANNOTATED, schema)  # doctest: +SKIP
>>> queue = build_queue(["new_articles/"], Predictor.load(), schema,
...                     already_labeled(store, schema))  # doctest: +SKIP
>>> export_queue(queue, Path("to_label.csv"), schema)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from newsevents import paths
from newsevents.corpus import CorpusError, Sentence, iter_input_files, read_file, split_article
from newsevents.dataset import (
    ANNOTATION_COLUMNS,
    AnnotationError,
    load_annotations,
    near_duplicate_groups,
    write_annotations,
)
from newsevents.labels import LabelSchema
from newsevents.predict import ModelError, Predictor

# Without --limit a run queues at most this many sentences: nobody labels more in one sitting,
# and the next run re-ranks with a model retrained on the new labels anyway.
MAX_QUEUE = 1000
# Files whose sentences never enter the queue (besides the store's own file).
LABELED_FILES = (paths.SEED_ANNOTATIONS, paths.AUTHORED_ANNOTATIONS,
                 *sorted(paths.POOL_ANNOTATIONS.glob("*.csv")))
EXPORT_COLUMNS = [*ANNOTATION_COLUMNS, "suggested", "uncertainty", "headline", "previous", "next"]
_EPS = 1e-6


# --------------------------------------------------------------------------- the queue

@dataclass(frozen=True)
class QueueItem:
    """A sentence to label, with its context and the model's opinion."""

    sentence: Sentence
    headline: str  # the article's first sentence ("" when this sentence is the headline)
    previous: str
    next: str
    scores: dict[str, float]  # by label name, for the labels the model knows
    suggested: tuple[str, ...]  # labels at or above their threshold, in schema order
    uncertainty: float  # 1 = a score sits exactly on its threshold, 0 = every score is extreme


@dataclass
class Queue:
    """The ranked queue and what was left out of it."""

    items: list[QueueItem]
    n_articles: int = 0
    n_sentences: int = 0
    n_labeled: int = 0  # dropped: already labeled
    n_near_duplicates: int = 0  # dropped: near-duplicate of a more uncertain queued sentence
    errors: list[str] = field(default_factory=list)  # inputs or records that could not be read

    def summary(self) -> str:
        return (f"{self.n_sentences} sentences in {self.n_articles} articles: "
                f"{self.n_labeled} already labeled, {self.n_near_duplicates} near-duplicates "
                f"skipped, {len(self.items)} queued (least certain first)")


def read_articles(inputs: Iterable[str | Path], errors: list[str]) -> list[list[Sentence]]:
    """The sentences of every article in the inputs; unreadable files and records go to
    ``errors`` (one line each) so one bad file does not end a labeling session."""
    articles: list[list[Sentence]] = []
    for path in iter_input_files(list(inputs)):
        try:
            for article in read_file(path, errors):
                sentences = split_article(article.text, article.id)
                if sentences:
                    articles.append(sentences)
        except CorpusError as exc:
            errors.append(str(exc))
    return articles


class _InContext(NamedTuple):
    sentence: Sentence
    headline: str
    previous: str
    next: str


def _in_context(article: list[Sentence]) -> Iterable[_InContext]:
    """Each sentence with the article's headline and its previous and next sentences."""
    for i, sent in enumerate(article):
        yield _InContext(sent, article[0].text if i else "", article[i - 1].text if i else "",
                         article[i + 1].text if i + 1 < len(article) else "")


def uncertainty(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per sentence, how close its most doubtful label is to that label's threshold (0..1).

    A score's margin is its distance from the threshold as a fraction of the room on that side
    (a threshold of 0.2 leaves 0.2 below and 0.8 above), so labels with low and high thresholds
    compare fairly. The sentence's uncertainty is 1 minus its smallest margin.
    """
    t = np.clip(np.asarray(thresholds, dtype=float), _EPS, 1 - _EPS)
    s = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    margin = np.where(s >= t, (s - t) / (1 - t), (t - s) / t)
    return 1.0 - margin.min(axis=1)


def _check_labels(predictor: Predictor, schema: LabelSchema) -> None:
    unknown = [n for n in predictor.labels if n not in schema.names]
    if unknown:
        raise ModelError(f"model labels {', '.join(unknown)} are not in the label schema "
                         f"{schema.source} ({', '.join(schema.names)}); retrain the model")


def _diverse(order: Sequence[int], ids: Sequence[str], texts: Sequence[str],
             want: int) -> tuple[list[int], int]:
    """Walk the ranking keeping the first (most uncertain) sentence of each near-duplicate group.

    Grouping is quadratic, so it runs on the top of the ranking only, widened until ``want``
    sentences survive. Returns the kept positions and how many near-duplicates were dropped.
    """
    pool = min(len(order), max(2 * want, 50))
    while True:
        head = order[:pool]
        groups = near_duplicate_groups([ids[i] for i in head], [texts[i] for i in head])
        kept: list[int] = []
        seen: set[str] = set()
        for i, group in zip(head, groups, strict=True):
            if group not in seen:
                seen.add(group)
                kept.append(i)
        if len(kept) >= want or pool >= len(order):
            last = head.index(kept[want - 1]) + 1 if len(kept) >= want else len(head)
            return kept[:want], last - min(want, len(kept))
        pool = min(len(order), 2 * pool)


def build_queue(inputs: Iterable[str | Path], predictor: Predictor, schema: LabelSchema,
                labeled: Collection[str], limit: int | None = None) -> Queue:
    """Split the inputs, drop ``labeled`` sentence ids, rank the rest by :func:`uncertainty`."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    _check_labels(predictor, schema)
    errors: list[str] = []
    articles = read_articles(inputs, errors)
    queue = Queue([], n_articles=len(articles), errors=errors)
    candidates: list[_InContext] = []
    seen: set[str] = set()
    for article in articles:
        for entry in _in_context(article):
            queue.n_sentences += 1
            sid = entry.sentence.id
            if sid in labeled:
                queue.n_labeled += 1
            elif sid not in seen:  # the same sentence in two articles is shown once
                seen.add(sid)
                candidates.append(entry)
    if not candidates:
        return queue
    texts = [c.sentence.text for c in candidates]
    predictions = predictor.predict(texts)
    scores = np.array([[p.scores[n] for n in predictor.labels] for p in predictions])
    doubt = uncertainty(scores, predictor.thresholds)
    order = np.argsort(-doubt, kind="stable")  # ties keep reading order
    want = min(MAX_QUEUE if limit is None else limit, len(candidates))
    kept, queue.n_near_duplicates = _diverse(
        list(order), [c.sentence.id for c in candidates], texts, want)
    for i in kept:
        suggested = tuple(n for n in schema.names if n in predictions[i].labels)
        queue.items.append(QueueItem(*candidates[i], predictions[i].scores, suggested,
                                     round(float(doubt[i]), 4)))
    return queue


# --------------------------------------------------------------------------- the store

def _fsync_path(path: Path) -> None:
    # A directory fsync makes a rename durable; not every platform lets you open one.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AnnotationStore:
    """Labels recorded by ``annotate``, one row per sentence, kept in a CSV file.

    Every change rewrites the whole file through a temporary file that is flushed to disk and
    then renamed over it, so a crash, Ctrl-C or ``kill -9`` leaves either the previous or the new
    version, both valid. At a few thousand rows a rewrite takes milliseconds.
    """

    def __init__(self, path: str | Path, schema: LabelSchema):
        self.path = Path(path)
        self.schema = schema
        self._rows: dict[str, dict[str, object]] = {}
        if self.path.exists():  # an invalid file stops here, before anything overwrites it
            for row in load_annotations(self.path, schema).to_dict("records"):
                self._rows[str(row["sentence_id"])] = {c: row[c] for c in ANNOTATION_COLUMNS}
        self._stamp = self._disk_stamp()

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, sentence_id: object) -> bool:
        return sentence_id in self._rows

    @property
    def ids(self) -> set[str]:
        return set(self._rows)

    def add(self, sentence: Sentence, labels: Iterable[str], note: str = "") -> None:
        """Record one decision and write the file."""
        self.add_many([(sentence.id, sentence.article_id, sentence.text, list(labels), note)])

    def add_many(self, rows: Iterable[tuple[str, str, str, list[str], str]]) -> None:
        """Record ``(sentence_id, article_id, text, labels, note)`` rows with one write."""
        added: dict[str, dict[str, object]] = {}
        for sid, article_id, text, labels, note in rows:
            if sid in self._rows or sid in added:
                raise ValueError(f"sentence {sid} is already in {self.path}")
            added[sid] = {"sentence_id": sid, "article_id": article_id, "text": text,
                          "labels": self.schema.decode(self.schema.encode(labels)), "note": note}
        before = dict(self._rows)
        self._rows.update(added)
        self._commit(before)

    def remove(self, sentence_id: str) -> None:
        """Take a decision back (undo) and write the file."""
        before = dict(self._rows)
        del self._rows[sentence_id]
        self._commit(before)

    def _commit(self, before: dict[str, dict[str, object]]) -> None:
        try:
            self._write()
        except BaseException:
            self._rows = before  # memory keeps matching the file that is on disk
            raise

    def _disk_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _write(self) -> None:
        # Rewriting the whole file would silently drop rows another session (or a spreadsheet)
        # saved since we read it: refuse instead.
        if self._disk_stamp() != self._stamp:
            raise AnnotationError([f"{self.path}: changed by another program since it was read; "
                                   "not overwriting it (start annotate again to continue)"])
        frame = pd.DataFrame(list(self._rows.values()), columns=ANNOTATION_COLUMNS)
        # write_annotations is atomic but does not fsync: write next to the file, flush that to
        # disk, then rename it over the file and flush the directory, so even a power cut
        # leaves a whole file.
        staged = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_annotations(frame, staged, self.schema)
            _fsync_path(staged)
            os.replace(staged, self.path)
        except OSError as exc:
            raise AnnotationError([f"{self.path}: cannot write ({exc.strerror or exc})"]) from None
        _fsync_path(self.path.parent)
        self._stamp = self._disk_stamp()


def labeled_elsewhere(schema: LabelSchema,
                      files: Iterable[Path] = LABELED_FILES) -> dict[str, Path]:
    """Sentence id -> the annotation file that labels it, for the other annotation files."""
    found: dict[str, Path] = {}
    for path in files:
        if path.exists():
            for sid in load_annotations(path, schema)["sentence_id"]:
                found.setdefault(sid, path)
    return found


def already_labeled(store: AnnotationStore, schema: LabelSchema,
                    files: Iterable[Path] = LABELED_FILES) -> set[str]:
    """Every labeled sentence id: the store's and those of the other annotation files."""
    return store.ids | set(labeled_elsewhere(schema, files))


# --------------------------------------------------------------------------- the session

@dataclass(frozen=True)
class Decision:
    position: int
    labels: tuple[str, ...] | None  # None: skipped


class Session:
    """The labeling loop without a screen: walk the queue, toggle labels, accept, skip, undo.

    Each accepted sentence goes to the store (and so to disk) before the next one is shown.
    Toggles start at the model's suggestion.
    """

    def __init__(self, items: Sequence[QueueItem], store: AnnotationStore, schema: LabelSchema):
        self.items = list(items)
        self.store = store
        self.schema = schema
        self.position = 0
        self.history: list[Decision] = []
        self.chosen: set[str] = set(self.items[0].suggested) if self.items else set()

    @property
    def current(self) -> QueueItem | None:
        return self.items[self.position] if self.position < len(self.items) else None

    @property
    def n_accepted(self) -> int:
        return sum(d.labels is not None for d in self.history)

    @property
    def n_skipped(self) -> int:
        return sum(d.labels is None for d in self.history)

    def toggle(self, label: str) -> None:
        self.schema.index(label)  # unknown label -> SchemaError
        self.chosen ^= {label}

    def accept(self) -> tuple[str, ...]:
        """Save the current sentence with the chosen labels (none is a valid answer)."""
        item = self._require_current()
        labels = tuple(n for n in self.schema.names if n in self.chosen)
        self.store.add(item.sentence, labels)
        self._advance(Decision(self.position, labels))
        return labels

    def skip(self) -> None:
        self._require_current()
        self._advance(Decision(self.position, None))

    def undo(self) -> Decision | None:
        """Go back one decision, taking an accepted label out of the file; None if none left."""
        if not self.history:
            return None
        decision = self.history[-1]
        if decision.labels is not None:
            self.store.remove(self.items[decision.position].sentence.id)
        self.history.pop()
        self.position = decision.position
        self.chosen = set(decision.labels if decision.labels is not None
                          else self.items[decision.position].suggested)
        return decision

    def _require_current(self) -> QueueItem:
        item = self.current
        if item is None:
            raise IndexError("the queue is finished")
        return item

    def _advance(self, decision: Decision) -> None:
        self.history.append(decision)
        self.position += 1
        self.chosen = set(self.current.suggested) if self.current else set()


# --------------------------------------------------------------------------- spreadsheets

def export_queue(queue: Queue, path: Path, schema: LabelSchema) -> int:
    """Write the queue as a CSV to fill in; ``labels`` starts as the model's suggestion.

    Refuses to overwrite a file (it may hold someone's work): raises :class:`FileExistsError`.
    """
    rows = [{
        "sentence_id": item.sentence.id, "article_id": item.sentence.article_id,
        "text": item.sentence.text, "labels": schema.format(item.suggested), "note": "",
        "suggested": schema.format(item.suggested), "uncertainty": f"{item.uncertainty:.3f}",
        "headline": item.headline, "previous": item.previous, "next": item.next,
    } for item in queue.items]
    # utf-8-sig: with the BOM, Excel reads the file as UTF-8 instead of mangling quotes and
    # accents, which would change the text and so its sentence id on import.
    with open(path, "x", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def import_annotations(path: str | Path, store: AnnotationStore, schema: LabelSchema,
                       elsewhere: dict[str, Path] | None = None) -> int:
    """Validate a filled-in CSV and merge it into the store (all rows or none).

    Errors, one line per problem naming file and row: those of
    :func:`~newsevents.dataset.load_annotations` (unknown label, edited text, duplicate id,
    missing column, empty text, bad encoding) and a sentence already labeled in the store or in
    another annotation file. Returns the number of rows merged.
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise AnnotationError([f"{path}: expected a .csv file (as written by --export)"])
    frame = load_annotations(path, schema)
    if elsewhere is None:
        elsewhere = labeled_elsewhere(schema)
    problems = []
    for row_no, sid in enumerate(frame["sentence_id"], start=2):  # row 1 is the header
        where = elsewhere.get(sid, store.path if sid in store else None)
        if where is not None:
            problems.append(f"{path}:{row_no}: sentence {sid} is already labeled in {where}")
    if problems:
        raise AnnotationError(problems)
    store.add_many(zip(frame["sentence_id"], frame["article_id"], frame["text"],
                       frame["labels"], frame["note"], strict=True))
    return len(frame)
