"""Annotations in, a validated Hugging Face ``DatasetDict`` out.

The annotation CSVs under ``data/annotations/`` are what people edit. This module checks them
against the label schema and the corpus, puts near-duplicate sentences (a quote syndicated in
several articles, a sentence a country repeats every year) into one *group*, and builds the
dataset with three splits:

- ``train``: real sentences (seed articles, labeled pool sentences, annotated articles) that
  training and cross-validation use; every cross-validated metric is computed on these only;
- ``test``: real sentences of the documents listed in ``data/splits/test-documents.csv``,
  never used for training, thresholds or model choice;
- ``authored``: sentences written for the project; training only, never scored.

Soft labels (a teacher model's scores on unlabeled pool sentences, :mod:`newsevents.soft_labels`)
join a table on request (:func:`add_soft_labels`) as a fourth split, ``soft``: training only,
never scored, and never in a fold that scores a sentence of their document.

Near-duplicate groups and fold units (what folds keep together) come from
:mod:`newsevents.groups`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from newsevents import paths
from newsevents.corpus import (
    CorpusError,
    decode,
    jsonl_records,
    normalize,
    sentence_id,
    split_article,
)
from newsevents.groups import LABELED, fold_units, near_duplicate_groups, training_only_units
from newsevents.labels import LabelSchema, SchemaError
from newsevents.soft_labels import HARD, SoftLabelError, read_soft_labels, soft_rows

ANNOTATION_COLUMNS = ["sentence_id", "article_id", "text", "labels", "note"]
REQUIRED_COLUMNS = ("sentence_id", "text", "labels")
# Where a labeled sentence comes from (the ``source`` column; pool files name their pool).
SEED, ANNOTATED, AUTHORED = "seed", "annotated", "authored"
# How it is used (the ``split`` column; authored rows have split ``authored``).
TRAIN, TEST = "train", "test"
SPLITS = (TRAIN, TEST, AUTHORED)
SOFT = "soft"  # soft-labeled pool sentences (add_soft_labels): training only, not in SPLITS
# Columns that name a sentence's document in a user's labeled file, in order of preference.
DOCUMENT_COLUMNS = ("document_id", "story_id", "article_id")


class AnnotationError(ValueError):
    """Annotations that do not validate; one line per problem, each naming file and row."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------- corpus index

@dataclass(frozen=True)
class CorpusIndex:
    """The sentences of the bundled articles, keyed by sentence id (first occurrence wins)."""

    sentences: dict[str, tuple[str, str]]  # id -> (article_id, text)
    stories: dict[str, str]  # article_id -> story_id

    def digest(self) -> str:
        blob = json.dumps(sorted(self.sentences.items())).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()


def read_manifest(path: Path = paths.MANIFEST) -> pd.DataFrame:
    """The article manifest: one row per raw article (id, file, outlet, date, story id...)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def load_corpus_index(manifest: Path = paths.MANIFEST) -> CorpusIndex:
    """Split every article listed in the manifest into sentences."""
    table = read_manifest(manifest)
    sentences: dict[str, tuple[str, str]] = {}
    for row in table.itertuples():
        text = decode((manifest.parent / row.file).read_bytes(), str(manifest.parent / row.file))
        for sent in split_article(text, row.article_id):
            sentences.setdefault(sent.id, (row.article_id, sent.text))
    return CorpusIndex(sentences, dict(zip(table.article_id, table.story_id, strict=True)))


# --------------------------------------------------------------------------- reading labeled files

def _read_table(path: Path) -> pd.DataFrame:
    """Read a labeled CSV or JSONL file as strings, with clear errors."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnnotationError([f"{path}: cannot read ({exc.strerror})"]) from None
    if not data.strip():
        raise AnnotationError([f"{path}: empty file"])
    try:
        text = decode(data, str(path))
    except CorpusError as exc:
        raise AnnotationError([str(exc)]) from None
    if path.suffix.lower() == ".jsonl":
        records, line_numbers = [], []
        for n, record in jsonl_records(text, str(path)):
            if isinstance(record, CorpusError):
                raise AnnotationError([str(record)])
            if isinstance(record.get("labels"), list):
                record["labels"] = ";".join(map(str, record["labels"]))
            records.append({k: "" if v is None else str(v) for k, v in record.items()})
            line_numbers.append(n)
        # Indexed by line number, so that problems are reported where they are in the file.
        return pd.DataFrame.from_records(records, index=line_numbers)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            on_bad_lines="error")
    except (pd.errors.ParserError, csv.Error) as exc:
        raise AnnotationError([f"{path}: malformed CSV ({str(exc).strip()})"]) from None
    frame.index = pd.RangeIndex(2, len(frame) + 2)  # spreadsheet row numbers (header is row 1)
    return frame


def load_annotations(path: str | Path, schema: LabelSchema, corpus: CorpusIndex | None = None,
                     source: str = SEED) -> pd.DataFrame:
    """Read and validate one of the project's annotation files (:func:`validate_annotations`)."""
    path = Path(path)
    frame = _read_table(path)
    if "document_id" in frame.columns and "article_id" not in frame.columns:
        frame = frame.rename(columns={"document_id": "article_id"})
    return validate_annotations(frame, path, schema, corpus, source)


def validate_annotations(frame: pd.DataFrame, path: Path, schema: LabelSchema,
                         corpus: CorpusIndex | None = None, source: str = SEED,
                         check_ids: bool = True) -> pd.DataFrame:
    """Check annotation rows read from ``path``.

    Checks: required columns, empty text, unknown labels, duplicate ids, and, with
    ``check_ids``, an id that no longer matches its text (the project's ids are hashes of the
    text) and (when ``corpus`` is given) text that is not a sentence of the corpus.
    Raises :class:`AnnotationError` listing every problem, one line each.

    Returns a frame with columns ``sentence_id, article_id, text, labels (list), note, source``;
    a ``source`` column in the file (a pool's name) wins over the ``source`` argument.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise AnnotationError([f"{path}: missing column(s) {', '.join(missing)} "
                               f"(has: {', '.join(map(str, frame.columns))})"])
    problems: list[str] = []
    seen: dict[str, int] = {}
    parsed: list[list[str]] = []
    for row_no, sid, text, cell in zip(frame.index, frame["sentence_id"], frame["text"],
                                       frame["labels"], strict=True):
        where = f"{path}:{row_no}"
        sid = sid.strip()
        try:
            parsed.append(schema.parse(cell))
        except SchemaError as exc:
            problems.append(f"{where}: {exc}")
            parsed.append([])
        if not text.strip():
            problems.append(f"{where}: empty text")
            continue
        if not sid:
            problems.append(f"{where}: empty sentence id")
        elif sid in seen:
            problems.append(f"{where}: duplicate sentence id {sid} (first at row {seen[sid]})")
        seen.setdefault(sid, row_no)
        if not check_ids:
            continue
        if sid != sentence_id(text):
            problems.append(f"{where}: sentence id {sid} does not match the text "
                            f"(was the text edited? its id would be {sentence_id(text)})")
        elif corpus is not None and sid not in corpus.sentences:
            problems.append(f"{where}: text no longer matches any corpus sentence ({sid})")
    if problems:
        raise AnnotationError(problems)
    blank = pd.Series("", index=frame.index)
    out = pd.DataFrame({
        "sentence_id": frame["sentence_id"].str.strip(),
        "article_id": frame.get("article_id", blank),
        "text": frame["text"],
        "labels": parsed,
        "note": frame.get("note", blank),
        "source": frame["source"] if "source" in frame.columns else source,
    })
    return out.reset_index(drop=True)


def write_annotations(frame: pd.DataFrame, path: Path, schema: LabelSchema) -> None:
    """Write annotations as a spreadsheet-friendly CSV, atomically (temp file + rename)."""
    table = frame.assign(labels=[schema.format(ls) for ls in frame["labels"]])
    columns = [c for c in ANNOTATION_COLUMNS if c in table.columns]
    tmp = path.with_suffix(path.suffix + ".tmp")
    table.to_csv(tmp, columns=columns, index=False, quoting=csv.QUOTE_MINIMAL)
    tmp.replace(path)


# --------------------------------------------------------------------------- the dataset

def load_table(schema: LabelSchema, seed: Path = paths.SEED_ANNOTATIONS,
               authored: Path | None = paths.AUTHORED_ANNOTATIONS,
               annotated: Path | None = paths.ANNOTATED,
               pools: Path | None = paths.POOL_ANNOTATIONS,
               test_documents: Path | None = paths.TEST_DOCUMENTS,
               manifest: Path = paths.MANIFEST) -> pd.DataFrame:
    """All validated annotations, one row per sentence, with story, group, unit and split.

    ``seed`` must cover every sentence of the bundled corpus (its stories come from the
    manifest); every CSV under ``pools`` holds labeled sentences of one real pool (each document
    its own story); ``annotated`` holds sentences of new articles labeled with
    ``newsevents annotate`` (each article its own story); ``authored`` sentences are
    training-only. Documents listed in ``test_documents`` form the ``test`` split.
    """
    corpus = load_corpus_index(manifest)
    frames = [load_annotations(seed, schema, corpus, SEED)]
    missing = sorted(set(corpus.sentences) - set(frames[0]["sentence_id"]))
    if missing:
        raise AnnotationError([f"{seed}: corpus sentence {sid} ({corpus.sentences[sid][1][:60]!r}) "
                               "has no annotation" for sid in missing])
    frames[0]["story_id"] = [corpus.stories.get(a, a) for a in frames[0]["article_id"]]
    real_files = sorted(pools.glob("*.csv")) if pools is not None and pools.is_dir() else []
    if annotated is not None and annotated.exists():
        real_files.append(annotated)
    for path in real_files:
        frame = load_annotations(path, schema, None, ANNOTATED)
        frames.append(frame.assign(story_id=frame["article_id"]))
    if authored is not None and authored.exists():
        frames.append(load_annotations(authored, schema, None, AUTHORED).assign(
            article_id=AUTHORED, story_id=""))
    table = pd.concat(frames, ignore_index=True)
    clash = table["sentence_id"].duplicated(keep=False)
    if clash.any():
        raise AnnotationError([f"{paths.ANNOTATIONS}: sentence {sid} is annotated in two files"
                               for sid in table.loc[clash, "sentence_id"].unique()])
    table["group_id"] = near_duplicate_groups(list(table["sentence_id"]), list(table["text"]))
    table["unit_id"] = fold_units(table)
    held_out = read_test_documents(test_documents)
    table["split"] = [AUTHORED if source == AUTHORED else TEST if (source, doc) in held_out
                      else TRAIN for source, doc in zip(table["source"], table["article_id"],
                                                        strict=True)]
    return table


def read_test_documents(path: Path | None = paths.TEST_DOCUMENTS) -> set[tuple[str, str]]:
    """The ``(pool, document_id)`` pairs of the fixed test split (empty without the file)."""
    if path is None or not path.exists():
        return set()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return set(zip(frame["pool"], frame["document_id"], strict=True))


def leaking_rows(table: pd.DataFrame) -> pd.Series:
    """Training rows (``train`` or ``authored``) that near-duplicate a ``test`` row.

    Training on such a row would leak the held-out sentence it copies (a phrase a country
    repeats every year, a wire story's stock sentence); training leaves these rows out.
    """
    test_groups = set(table.loc[table["split"] == TEST, "group_id"])
    return (table["split"] != TEST) & table["group_id"].isin(test_groups)


def add_soft_labels(table: pd.DataFrame, schema: LabelSchema, path: Path, targets: str = HARD,
                    weight: float = 1.0, pools: dict[str, Path] | None = None
                    ) -> tuple[pd.DataFrame, str]:
    """``table`` with the soft-labeled sentences of ``path`` appended as split ``soft``, and a
    one-line account (or, when the pools' text is absent, ``table`` unchanged and why).

    A soft row is left out when its sentence is labeled by hand, when its document is in the
    test split, or when it near-duplicates a test sentence. The others get the fold unit of the
    labeled sentences of their document, or of those they near-duplicate, so that no fold is
    scored on a sentence whose document (or copy) its training saw; a row that would tie two
    units together is left out rather than merge them, which would change the folds.
    """
    try:
        soft = read_soft_labels(path, schema)
    except SoftLabelError as exc:
        raise AnnotationError([str(exc)]) from None
    rows, message = soft_rows(soft, paths.POOLS if pools is None else pools, targets, weight)
    if rows is None:
        return table, message
    real = table[table["split"] != AUTHORED].reset_index(drop=True)
    units = training_only_units(real.assign(held_out=real["split"] == TEST), rows)
    labeled = set(table["sentence_id"])
    units = [LABELED if sid in labeled else unit
             for sid, unit in zip(rows["sentence_id"], units, strict=True)]
    placed = np.array([not unit.startswith("!") for unit in units])
    rows = rows[placed].assign(story_id=lambda r: r["article_id"],
                               group_id=lambda r: "g" + r["sentence_id"],
                               unit_id=np.array(units)[placed], split=SOFT)
    left_out = "; ".join(f"{n} {why.lstrip('!')}" for why, n in
                         pd.Series(units)[~placed].value_counts().sort_index().items())
    return (pd.concat([table, rows], ignore_index=True),
            message + f", {len(rows)} used" + (f" (left out: {left_out})" if left_out else ""))


def target_matrix(table: pd.DataFrame, schema: LabelSchema) -> np.ndarray:
    """What a model fits: the 0/1 labels (:func:`multi_hot`), except that rows with teacher
    scores (``soft_scores``) give those scores (a float matrix then)."""
    y = multi_hot(table, schema)
    if "soft_scores" not in table.columns:
        return y
    soft = table["soft_scores"].notna().to_numpy()
    if not soft.any():
        return y
    out = y.astype(np.float64)
    out[soft] = np.stack(table["soft_scores"][soft].to_list())
    return out


def sample_weights(table: pd.DataFrame) -> np.ndarray | None:
    """Per-row training weights (soft-labeled rows may weigh less), or ``None``: all equal."""
    if "weight" not in table.columns:
        return None
    return table["weight"].fillna(1.0).to_numpy(dtype=np.float64)


def load_labeled_file(path: str | Path, schema: LabelSchema) -> pd.DataFrame:
    """A user's labeled CSV/JSONL (``text`` + ``labels``) as a training table.

    A ``sentence_id`` column is the user's own id and is kept as it is; without one, ids are
    derived from the text (the project's stable hash). A ``document_id``, ``story_id`` or
    ``article_id`` column names each sentence's document, and cross-validation then keeps
    documents whole. Rows with identical text and identical labels are merged (one warning with
    the count); identical text with different labels is an error naming both rows.
    """
    path = Path(path)
    frame = _read_table(path)
    missing = [c for c in ("text", "labels") if c not in frame.columns]
    if missing:
        raise AnnotationError([f"{path}: missing column(s) {', '.join(missing)} "
                               f"(has: {', '.join(map(str, frame.columns))})"])
    user_ids = "sentence_id" in frame.columns
    if not user_ids:
        frame["sentence_id"] = [sentence_id(t) for t in frame["text"]]
    frame = _merge_duplicate_texts(frame, path, schema)
    table = validate_annotations(frame, path, schema, check_ids=not user_ids)
    document = next((c for c in DOCUMENT_COLUMNS if c in frame.columns), None)
    table["story_id"] = list(frame[document]) if document else ""
    table["source"] = path.name
    table["group_id"] = near_duplicate_groups(list(table["sentence_id"]), list(table["text"]))
    table["unit_id"] = fold_units(table)
    table["split"] = TRAIN
    return table


def _merge_duplicate_texts(frame: pd.DataFrame, path: Path, schema: LabelSchema
                           ) -> pd.DataFrame:
    """Drop repeated rows of the same text and labels; refuse the same text labeled twice."""
    first: dict[str, tuple[int, list[str]]] = {}
    repeats, problems = [], []
    for row_no, text, cell in zip(frame.index, frame["text"], frame["labels"], strict=True):
        try:
            labels = schema.parse(cell)
        except SchemaError:
            continue  # reported, with its row, by validate_annotations
        if not text.strip():
            continue  # likewise
        key = normalize(text)
        if key not in first:
            first[key] = (row_no, labels)
        elif first[key][1] == labels:
            repeats.append(row_no)
        else:
            problems.append(f"{path}:{row_no}: same text as row {first[key][0]} with other "
                            f"labels ({schema.format(labels) or 'none'} vs "
                            f"{schema.format(first[key][1]) or 'none'})")
    if problems:
        raise AnnotationError(problems)
    if repeats:
        rows = "1 row that repeats" if len(repeats) == 1 else f"{len(repeats)} rows that repeat"
        warnings.warn(f"{path}: merged {rows} an earlier row's text and labels", UserWarning,
                      stacklevel=3)
    return frame.drop(index=repeats)


def multi_hot(table: pd.DataFrame, schema: LabelSchema) -> np.ndarray:
    """The (n_sentences, n_labels) 0/1 matrix of a table's labels, in schema order."""
    return np.array([schema.encode(ls) for ls in table["labels"]], dtype=np.int8).reshape(
        len(table), len(schema))


def to_dataset_dict(table: pd.DataFrame, schema: LabelSchema):  # -> datasets.DatasetDict
    """Build the ``DatasetDict`` (splits ``train``, ``test`` and ``authored``) from a table."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    text_columns = ("sentence_id", "article_id", "story_id", "group_id", "unit_id", "source",
                    "text")
    features = Features({
        **{name: Value("string") for name in text_columns},
        "labels": Sequence(ClassLabel(names=schema.names)),
        "label_vector": Sequence(Value("int8"), length=len(schema)),
        "note": Value("string"),
    })
    splits = {}
    for name in SPLITS:
        part = table[table["split"] == name]
        splits[name] = Dataset.from_dict({
            **{column: list(part[column]) for column in text_columns},
            "labels": [[schema.index(n) for n in ls] for ls in part["labels"]],
            "label_vector": multi_hot(part, schema).tolist(),
            "note": list(part["note"].fillna("")),
        }, features=features)
    return DatasetDict(splits)


def build_dataset(schema: LabelSchema, out_dir: Path = paths.PROCESSED / "dataset",
                  parquet_dir: Path | None = paths.PROCESSED / "parquet"):
    """Validate the shipped annotations, build the ``DatasetDict`` and save it (and Parquet)."""
    dataset = to_dataset_dict(load_table(schema), schema)
    dataset.save_to_disk(str(out_dir))
    if parquet_dir is not None:
        parquet_dir.mkdir(parents=True, exist_ok=True)
        for name, split in dataset.items():
            split.to_parquet(str(parquet_dir / f"{name}.parquet"))
    return dataset
