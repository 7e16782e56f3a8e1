"""Annotations in, a validated Hugging Face ``DatasetDict`` out.

The annotation CSVs under ``data/annotations/`` are what people edit. This module checks them
against the label schema and the corpus, puts near-duplicate sentences (a quote syndicated in
several articles) into one *group*, and builds the dataset with two splits:

- ``corpus``: sentences of real articles; every metric is computed on these only;
- ``authored``: sentences written for the project; training only.

Cross-validation folds (:func:`group_folds`, :func:`story_folds`) never put one group, or one
story, on both sides.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from newsevents import paths
from newsevents.corpus import (
    CorpusError,
    decode,
    jsonl_records,
    normalize,
    sentence_id,
    split_article,
)
from newsevents.labels import LabelSchema, SchemaError

ANNOTATION_COLUMNS = ["sentence_id", "article_id", "text", "labels", "note"]
REQUIRED_COLUMNS = ("sentence_id", "text", "labels")
AUTHORED = "authored"
CORPUS = "corpus"
# Two sentences are near-duplicates when most words of the shorter one are in the longer one.
NEAR_DUPLICATE_CONTAINMENT = 0.8


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
                     source: str = CORPUS) -> pd.DataFrame:
    """Read and validate one annotation file (see :func:`validate_annotations`)."""
    path = Path(path)
    return validate_annotations(_read_table(path), path, schema, corpus, source)


def validate_annotations(frame: pd.DataFrame, path: Path, schema: LabelSchema,
                         corpus: CorpusIndex | None = None, source: str = CORPUS) -> pd.DataFrame:
    """Check annotation rows read from ``path``.

    Checks: required columns, empty text, unknown labels, duplicate ids, an id that no longer
    matches its text, and (when ``corpus`` is given) text that is not a sentence of the corpus.
    Raises :class:`AnnotationError` listing every problem, one line each.

    Returns a frame with columns ``sentence_id, article_id, text, labels (list), note, source``.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise AnnotationError([f"{path}: missing column(s) {', '.join(missing)} "
                               f"(has: {', '.join(map(str, frame.columns))})"])
    problems: list[str] = []
    seen: dict[str, int] = {}
    parsed: list[list[str]] = []
    for row_no, row in frame.iterrows():
        where = f"{path}:{row_no}"
        sid, text = row["sentence_id"].strip(), row["text"]
        try:
            parsed.append(schema.parse(row["labels"]))
        except SchemaError as exc:
            problems.append(f"{where}: {exc}")
            parsed.append([])
        if not text.strip():
            problems.append(f"{where}: empty text")
            continue
        if sid in seen:
            problems.append(f"{where}: duplicate sentence id {sid} (first at row {seen[sid]})")
        seen.setdefault(sid, row_no)
        if sid != sentence_id(text):
            problems.append(f"{where}: sentence id {sid} does not match the text "
                            f"(was the text edited? its id would be {sentence_id(text)})")
        elif corpus is not None and sid not in corpus.sentences:
            problems.append(f"{where}: text no longer matches any corpus sentence ({sid})")
    if problems:
        raise AnnotationError(problems)
    out = pd.DataFrame({
        "sentence_id": frame["sentence_id"].str.strip(),
        "article_id": frame.get("article_id", pd.Series("", index=frame.index)),
        "text": frame["text"],
        "labels": parsed,
        "note": frame.get("note", pd.Series("", index=frame.index)),
        "source": source,
    })
    return out.reset_index(drop=True)


def write_annotations(frame: pd.DataFrame, path: Path, schema: LabelSchema) -> None:
    """Write annotations as a spreadsheet-friendly CSV, atomically (temp file + rename)."""
    table = frame.assign(labels=[schema.format(ls) for ls in frame["labels"]])
    columns = [c for c in ANNOTATION_COLUMNS if c in table.columns]
    tmp = path.with_suffix(path.suffix + ".tmp")
    table.to_csv(tmp, columns=columns, index=False, quoting=csv.QUOTE_MINIMAL)
    tmp.replace(path)


# --------------------------------------------------------------------------- near-duplicate groups

def _word_sets(texts: Sequence[str]) -> sparse.csr_matrix:
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        words = {w for w in "".join(c if c.isalnum() else " " for c in normalize(text)).split()
                 if len(w) > 2}
        for w in words:
            rows.append(i)
            cols.append(vocab.setdefault(w, len(vocab)))
    data = np.ones(len(rows), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(texts), max(len(vocab), 1)))


def near_duplicate_groups(ids: Sequence[str], texts: Sequence[str],
                          threshold: float = NEAR_DUPLICATE_CONTAINMENT) -> list[str]:
    """Group id per sentence: sentences sharing ≥ ``threshold`` of the shorter one's words join.

    Containment (overlap / size of the smaller word set) catches a quote that one outlet
    prefixes with "Quote from X:" and another cuts in two. Groups are closed transitively.
    """
    n = len(texts)
    words = _word_sets(texts)
    sizes = np.asarray(words.sum(axis=1)).ravel()
    overlap = (words @ words.T).tocoo()
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, shared in zip(overlap.row, overlap.col, overlap.data, strict=True):
        if i < j and shared >= threshold * max(min(sizes[i], sizes[j]), 1) and shared >= 4:
            parent[find(i)] = find(j)
    members: dict[int, list[str]] = {}
    for i in range(n):
        members.setdefault(find(i), []).append(ids[i])
    return ["g" + min(members[find(i)])[1:] for i in range(n)]


# --------------------------------------------------------------------------- the dataset

def load_table(schema: LabelSchema, seed: Path = paths.SEED_ANNOTATIONS,
               authored: Path | None = paths.AUTHORED_ANNOTATIONS,
               annotated: Path | None = paths.ANNOTATED,
               manifest: Path = paths.MANIFEST) -> pd.DataFrame:
    """All validated annotations with story and group ids, one row per sentence.

    ``seed`` must cover every sentence of the bundled corpus; ``annotated`` (sentences of new
    articles labeled with ``newsevents annotate``) joins the scored corpus split, each article
    its own story; ``authored`` sentences are training-only.
    """
    corpus = load_corpus_index(manifest)
    frames = [load_annotations(seed, schema, corpus, CORPUS)]
    missing = sorted(set(corpus.sentences) - set(frames[0]["sentence_id"]))
    if missing:
        raise AnnotationError([f"{seed}: corpus sentence {sid} ({corpus.sentences[sid][1][:60]!r}) "
                               "has no annotation" for sid in missing])
    frames[0]["story_id"] = [corpus.stories.get(a, a) for a in frames[0]["article_id"]]
    if annotated is not None and annotated.exists():
        new = load_annotations(annotated, schema, None, CORPUS)
        new["story_id"] = new["article_id"]
        frames.append(new)
    if authored is not None and authored.exists():
        extra = load_annotations(authored, schema, None, AUTHORED)
        extra["article_id"] = AUTHORED
        extra["story_id"] = AUTHORED
        frames.append(extra)
    table = pd.concat(frames, ignore_index=True)
    clash = table["sentence_id"].duplicated(keep=False)
    if clash.any():
        raise AnnotationError([f"{paths.ANNOTATIONS}: sentence {sid} is annotated in two files"
                               for sid in table.loc[clash, "sentence_id"].unique()])
    table["group_id"] = near_duplicate_groups(list(table["sentence_id"]), list(table["text"]))
    return table


def load_labeled_file(path: str | Path, schema: LabelSchema) -> pd.DataFrame:
    """A generic labeled CSV/JSONL (``text`` + ``labels``; ids optional) as a corpus table.

    Lets an experiment train on another label set: ids are derived from the text when absent,
    ``story_id`` falls back to ``article_id`` and then to the near-duplicate group.
    """
    path = Path(path)
    frame = _read_table(path)
    if "text" not in frame.columns or "labels" not in frame.columns:
        raise AnnotationError([f"{path}: needs 'text' and 'labels' columns "
                               f"(has: {', '.join(map(str, frame.columns))})"])
    if "sentence_id" not in frame.columns:
        frame["sentence_id"] = [sentence_id(t) for t in frame["text"]]
    table = validate_annotations(frame, path, schema)
    table["group_id"] = near_duplicate_groups(list(table["sentence_id"]), list(table["text"]))
    stories = frame["story_id"] if "story_id" in frame.columns else table["article_id"]
    table["story_id"] = [s or a or g for s, a, g in zip(
        list(stories), list(table["article_id"]), list(table["group_id"]), strict=True)]
    return table


def load_external(schema: LabelSchema, labels: Path = paths.EXTERNAL_ANNOTATIONS /
                  "un-general-debate.csv", corpus: Path = paths.UN_DEBATE) -> pd.DataFrame | None:
    """Real sentences from the UN General Debate corpus, labeled by sentence id only.

    The labels file holds ids and labels, never text: the text stays in ``shared/`` and is
    re-split here, so the ids must still match. Returns ``None`` when the corpus is absent.
    Speeches, not news: a second, independent check on sentences from other regions and years.
    """
    if not corpus.exists() or not labels.exists():
        return None
    import gzip

    frame = pd.read_csv(labels, dtype=str, keep_default_na=False)
    wanted = set(frame["speech_id"])
    texts: dict[str, str] = {}
    with gzip.open(corpus, "rt", encoding="utf-8") as handle:
        for line in handle:
            # Parse only the speeches we need: most of the 27 MB is skipped unread.
            match = re.match(r'\{"id": "([^"]+)"', line)
            if match and match.group(1) not in wanted:
                continue
            record = json.loads(line)
            if record["id"] in wanted:
                for sent in split_article(record["text"], record["id"]):
                    texts.setdefault(sent.id, sent.text)
    missing = [f"{labels}:{i + 2}: sentence {sid} not found in {corpus.name} (splitter changed?)"
               for i, sid in enumerate(frame["sentence_id"]) if sid not in texts]
    if missing:
        raise AnnotationError(missing)
    return pd.DataFrame({
        "sentence_id": frame["sentence_id"], "article_id": frame["speech_id"],
        "text": [texts[sid] for sid in frame["sentence_id"]],
        "labels": [schema.parse(cell) for cell in frame["labels"]],
    })


def multi_hot(table: pd.DataFrame, schema: LabelSchema) -> np.ndarray:
    """The (n_sentences, n_labels) 0/1 matrix of a table's labels, in schema order."""
    return np.array([schema.encode(ls) for ls in table["labels"]], dtype=np.int8).reshape(
        len(table), len(schema))


def to_dataset_dict(table: pd.DataFrame, schema: LabelSchema):  # -> datasets.DatasetDict
    """Build the ``DatasetDict`` (splits ``corpus`` and ``authored``) from a validated table."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    features = Features({
        "sentence_id": Value("string"), "article_id": Value("string"),
        "story_id": Value("string"), "group_id": Value("string"), "source": Value("string"),
        "text": Value("string"),
        "labels": Sequence(ClassLabel(names=schema.names)),
        "label_vector": Sequence(Value("int8"), length=len(schema)),
        "note": Value("string"),
    })
    splits = {}
    for name in (CORPUS, AUTHORED):
        part = table[table["source"] == name]
        splits[name] = Dataset.from_dict({
            "sentence_id": list(part["sentence_id"]), "article_id": list(part["article_id"]),
            "story_id": list(part["story_id"]), "group_id": list(part["group_id"]),
            "source": list(part["source"]), "text": list(part["text"]),
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


# --------------------------------------------------------------------------- folds

def group_folds(table: pd.DataFrame, n_splits: int, seed: int, stratify: bool = True
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """K folds over ``table`` rows that never split a near-duplicate group.

    ``stratify`` spreads each row's rarest label over the folds (StratifiedGroupKFold); its
    greedy search is slow on thousands of groups, so large inner splits turn it off.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if not stratify:
        folds = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        yield from folds.split(np.zeros(len(table)), groups=table["group_id"])
        return
    counts = pd.Series([n for ls in table["labels"] for n in ls]).value_counts()
    strata = [min(ls, key=lambda n: counts[n]) if ls else "none" for ls in table["labels"]]
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Expected with a few dozen corpus sentences: some labels have fewer members than folds.
        warnings.filterwarnings("ignore", message="The least populated class")
        yield from folds.split(np.zeros(len(table)), strata, groups=table["group_id"])


def story_folds(table: pd.DataFrame) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Leave-one-story-out folds: ``(story, train_idx, test_idx)``; groups never straddle."""
    stories = table["story_id"].to_numpy()
    groups = table["group_id"].to_numpy()
    for story in sorted(set(stories)):
        test = stories == story
        # A quote syndicated into another story's article must leave training too.
        leaked = np.isin(groups, groups[test])
        yield story, np.flatnonzero(~leaked), np.flatnonzero(test)
