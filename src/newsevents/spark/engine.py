"""Spark jobs over the local engine's code: read, clean, split and label in ``mapInPandas``.

Articles reach :func:`newsevents.batch.label_articles`, the function the local engine labels
with, in chunks of :data:`newsevents.batch.CHUNK_CHARS` characters. The model's files are
broadcast once; each Python worker writes them to a scratch directory and loads them (digests
checked) the first time it labels, then keeps the model for its later tasks (an accurate-tier
model's encoder is not broadcast: it must be installed where the executors run). A record that
cannot be labeled becomes an error row (article id and a one-line reason), never a failed job.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pandas as pd
from pyspark import SparkFiles
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from newsevents.batch import (
    CHUNK_CHARS,
    STDIN,
    UNIT_SPLITTERS,
    UNITS,
    chunk_articles,
    expand_inputs,
    label_articles,
)
from newsevents.corpus import READABLE_SUFFIXES, Article, CorpusError, check_text_bytes, decode
from newsevents.corpus import read_bytes as read_file_bytes
from newsevents.predict import METADATA_FILE, MODEL_FILE, ModelError, Predictor

if TYPE_CHECKING:
    from newsevents.spark.output import SparkReport

# PySpark 4.3 warns about pandas 3 on every mapInPandas; the columns here are object or float,
# which it handles (the tests check every value against the local engine).
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                        category=FutureWarning)

ARTICLES = StructType([StructField(n, StringType()) for n in
                       ("article_id", "text", "source", "error")])
ERRORS = StructType([StructField("article_id", StringType()), StructField("error", StringType())])


@dataclass(frozen=True)
class ModelFiles:
    """A model directory's files as bytes, small enough to broadcast (the champion: ~6 MB)."""

    key: str  # sha256 over every file: a worker keeps one loaded model per key
    engine: str
    files: dict[str, bytes]

    @classmethod
    def of(cls, predictor: Predictor) -> ModelFiles:
        """The files ``predictor`` was loaded from, read again and checked against its
        metadata: a file changed since the load fails here, before any job starts."""
        if predictor.directory is None:
            raise ModelError("the Spark engine needs a model loaded from a directory")
        directory = Path(predictor.directory)
        digests = (predictor.metadata["scorer"]["files"] if predictor.engine == "numpy"
                   else {MODEL_FILE: predictor.metadata["sha256"]})
        files = {n: (directory / n).read_bytes() for n in [METADATA_FILE, *digests]}
        key = hashlib.sha256()
        for name, data in files.items():
            digest = hashlib.sha256(data).hexdigest()
            if name in digests and digest != digests[name]:
                raise ModelError(f"{directory / name}: sha256 {digest[:12]}… does not match "
                                 f"the metadata ({digests[name][:12]}…); it changed after "
                                 "the model was loaded")
            key.update(f"{name}:{digest};".encode())
        return cls(key.hexdigest(), predictor.engine, files)


_LOADED: dict[str, Predictor] = {}


def worker_predictor(model: ModelFiles) -> Predictor:
    """The model in this Python worker, loaded the first time (digests checked), then kept."""
    if model.key not in _LOADED:
        # The executor's per-application directory: Spark removes it when the job ends.
        root = SparkFiles.getRootDirectory() if SparkFiles._root_directory else None
        directory = Path(tempfile.mkdtemp(prefix=f"newsevents-model-{model.key[:12]}-",
                                          dir=root))
        for name, data in model.files.items():
            (directory / name).write_bytes(data)
        _LOADED[model.key] = Predictor.load(directory, model.engine)
    return _LOADED[model.key]


# --------------------------------------------------------------------------- reading

def _values(batch: pd.DataFrame, *columns: str) -> Iterator[tuple[Any, ...]]:
    """Rows of ``columns`` with missing values as ``None`` (pandas 3 gives strings NaN)."""
    return zip(*(batch[c].astype(object).where(batch[c].notna(), None) for c in columns),
               strict=True)


def _article_frame(rows: Iterable[tuple[str | None, str | None, str | None, str | None]]
                   ) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=ARTICLES.fieldNames(), dtype=object)


def _read_files(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """(path, content) of whole files -> articles, as the local engine reads them."""
    for batch in batches:
        rows: list[tuple[str | None, str | None, str | None, str | None]] = []
        for path, content in _values(batch, "path", "content"):
            # Spark gives URIs ("file:/in/a%20b.txt"); ids and messages use the plain path.
            source = unquote(path.removeprefix("file:") if path.startswith("file:/") else path)
            failures: list[str] = []
            try:
                rows.extend((a.id, a.text, a.source, None)
                            for a in read_file_bytes(bytes(content), source, failures))
            except CorpusError as exc:
                failures.append(str(exc))
            rows.extend((None, None, source, message) for message in failures)
        yield _article_frame(rows)


def _glob(suffixes: Iterable[str]) -> str:
    names = sorted(s.lstrip(".") for s in suffixes)
    return "*.{" + ",".join(names + [n.upper() for n in names]) + "}"


def read_inputs(spark: SparkSession, inputs: Sequence[str | Path]
                ) -> tuple[DataFrame, int, list[str]]:
    """Articles of files, directories and URIs Spark can read, one row each.

    Returns the articles (``article_id``, ``text``, ``source``, ``error``), the number of
    files, and the failures found on the driver (a missing local file, an empty directory, a
    URI that does not exist). Local paths are expanded as the local engine does; a URI
    (``hdfs://``, ``s3a://``...) is listed by Spark, recursively, readable suffixes only.
    """
    failures: list[str] = []
    local: list[str] = []
    n_local = 0
    frames: list[DataFrame] = []
    reader = spark.read.format("binaryFile")
    for item in map(str, inputs):
        if item == STDIN:
            raise ValueError("the Spark engine reads files, not stdin")
        if "://" not in item:
            named = expand_inputs([item], failures)
            n_local += len(named)
            for path in named:
                # Checked here: a file Spark cannot open fails the whole job.
                try:
                    os.close(os.open(path, os.O_RDONLY))
                    empty = os.stat(path).st_size == 0
                except OSError as exc:
                    failures.append(f"{path}: cannot read ({exc.strerror or exc})")
                    continue
                if empty:  # Spark's file scans skip empty files without a word
                    failures.append(f"{path}: empty file")
                else:
                    local.append(str(Path(path).resolve()))
            continue
        try:
            frames.append(reader.option("recursiveFileLookup", "true")
                          .option("pathGlobFilter", _glob(READABLE_SUFFIXES)).load(item))
        except AnalysisException as exc:
            failures.append(f"{item}: cannot read ({str(exc).strip().splitlines()[0]})")
    # Listing only: counting binaryFile rows does not read the files.
    files = n_local + sum(frame.count() for frame in frames)
    if local:
        frames.append(reader.load(local))
    if not frames:
        return spark.createDataFrame([], ARTICLES), files, failures
    data = frames[0]
    for frame in frames[1:]:
        data = data.unionByName(frame)
    articles = data.select("path", "content").mapInPandas(_read_files, ARTICLES)
    return articles, files, failures


def from_dataframe(df: DataFrame, text_col: str = "text", id_col: str | None = "id"
                   ) -> DataFrame:
    """A user's DataFrame as article rows. Without an id column (or for a null id) the id is
    ``a`` + 12 hex digits of the text's sha1, stable across runs. A binary text column is
    decoded with the file checks (empty, binary, not UTF-8)."""
    if text_col not in df.columns:
        raise ValueError(f"DataFrame has no {text_col!r} column (columns: "
                         f"{', '.join(df.columns)})")
    binary = isinstance(df.schema[text_col].dataType, BinaryType)
    text = F.col(text_col) if binary else F.col(text_col).cast("string")
    digest = F.concat(F.lit("a"), F.substring(F.sha1(text), 1, 12))
    given = (F.col(id_col).cast("string") if id_col is not None and id_col in df.columns
             else F.lit(None).cast("string"))
    article_id = F.coalesce(given, digest)
    if not binary:
        return df.select(article_id.alias("article_id"), text.alias("text"),
                         article_id.alias("source"), F.lit(None).cast("string").alias("error"))
    return df.select(article_id.alias("article_id"), text.alias("content")
                     ).mapInPandas(_decode_records, ARTICLES)


def _decode_records(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        rows = []
        for article_id, content in _values(batch, "article_id", "content"):
            try:
                if content is None:
                    raise CorpusError(f"{article_id}: no text")
                data = bytes(content)
                check_text_bytes(data, article_id, what="text")
                rows.append((article_id, decode(data, article_id), article_id, None))
            except CorpusError as exc:
                rows.append((article_id, None, article_id, str(exc)))
        yield _article_frame(rows)


# --------------------------------------------------------------------------- labeling

def sentence_schema(labels: Sequence[str] | None) -> StructType:
    """The local engine's row columns (scores when ``labels`` is given), plus ``error``."""
    fields = [StructField("article_id", StringType()), StructField("sentence_index",
                                                                   IntegerType()),
              StructField("sentence_id", StringType()), StructField("text", StringType())]
    if labels is not None:
        fields.append(StructField("labels", ArrayType(StringType())))
        fields.extend(StructField(f"score_{n}", DoubleType()) for n in labels)
    return StructType([*fields, StructField("error", StringType())])


def _rows(batches: Iterator[pd.DataFrame], unit: str, model: Any,
          schema: StructType) -> Iterator[pd.DataFrame]:
    """Article rows -> sentence rows (labeled when ``model`` is a broadcast model) and errors."""
    columns = schema.fieldNames()
    predictor = worker_predictor(model.value) if model is not None else None
    for batch in batches:
        articles, errors = [], []
        for article_id, text, source, error in _values(batch, *ARTICLES.fieldNames()):
            if error is not None or text is None:
                errors.append((article_id, error or f"{source or article_id}: no text"))
            else:
                articles.append(Article(article_id, text, source or article_id))
        for chunk in chunk_articles(articles, CHUNK_CHARS):
            rows = (_labeled(predictor, chunk, unit, errors) if predictor is not None
                    else _split(chunk, unit, errors))
            # object columns: pandas 3 would infer Arrow-backed strings, which PySpark 4.3
            # cannot hand back to the JVM; Arrow casts to the schema's types.
            yield pd.DataFrame(rows, columns=columns[:-1], dtype=object).assign(error=None)
        if errors:
            yield _error_frame(errors, columns)


def _labeled(predictor: Predictor, chunk: list[Article], unit: str,
             errors: list[tuple[str | None, str]]) -> list[list[Any]]:
    rows = []
    for article, sentences in label_articles(predictor, chunk, unit):
        if isinstance(sentences, str):
            errors.append((article.id, sentences))
            continue
        rows.extend([s.article_id, s.index, s.sentence_id, s.text, s.labels,
                     *(s.scores[n] for n in predictor.labels)] for s in sentences)
    return rows


def _split(chunk: list[Article], unit: str, errors: list[tuple[str | None, str]]
           ) -> list[list[Any]]:
    rows = []
    for article in chunk:
        sentences = UNIT_SPLITTERS[unit](article.text, article.id)
        if not sentences:
            errors.append((article.id, f"{article.source or article.id}: no sentences found"))
        rows.extend([s.article_id, s.index, s.id, s.text] for s in sentences)
    return rows


def _error_frame(errors: list[tuple[str | None, str]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([None] * len(errors), dtype=object) for c in columns})
    frame["article_id"] = pd.Series([a for a, _ in errors], dtype=object)
    frame["error"] = pd.Series([e for _, e in errors], dtype=object)
    return frame


@dataclass
class SentenceFrames:
    """One row per sentence (``sentences``) and one per record that failed (``errors``).

    Both come from one pass over the input (``combined``): write them with :meth:`write`,
    which computes that pass once.
    """

    combined: DataFrame
    failures: list[str] = field(default_factory=list)  # found on the driver
    files: int = 0
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def sentences(self) -> DataFrame:
        return self.combined.where(F.col("error").isNull()).drop("error")

    @property
    def errors(self) -> DataFrame:
        found = self.combined.where(F.col("error").isNotNull()).select("article_id", "error")
        if not self.failures:
            return found
        spark = self.combined.sparkSession
        return spark.createDataFrame([(None, m) for m in self.failures], ERRORS).union(found)

    def write(self, output: str | Path, fmt: str = "parquet") -> SparkReport:
        """Write both under ``output`` (see :func:`newsevents.spark.output.write_frames`)."""
        from newsevents.spark.output import write_frames

        return write_frames(self, output, fmt)


def _frames(articles: DataFrame, unit: str, predictor: Predictor | None) -> SentenceFrames:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    schema = sentence_schema(predictor.labels if predictor is not None else None)
    model, info = None, {}
    if predictor is not None:
        model = articles.sparkSession.sparkContext.broadcast(ModelFiles.of(predictor))
        info = {"directory": str(predictor.directory), "engine": predictor.engine,
                "sha256": predictor.metadata.get("sha256"),
                "experiment": predictor.metadata.get("experiment")}
    combined = articles.mapInPandas(lambda it: _rows(it, unit, model, schema), schema)
    return SentenceFrames(combined, model=info)


def label_dataframe(df: DataFrame, predictor: Predictor, *, text_col: str = "text",
                    id_col: str | None = "id", unit: str = "article") -> SentenceFrames:
    """Label a DataFrame of articles (``text_col``, optional ``id_col``): one row per sentence
    with the local engine's columns, and the records that failed."""
    return _frames(from_dataframe(df, text_col, id_col), unit, predictor)


def split_dataframe(df: DataFrame, *, text_col: str = "text", id_col: str | None = "id",
                    unit: str = "article") -> SentenceFrames:
    """Clean and split only (``article_id``, ``sentence_index``, ``sentence_id``, ``text``):
    the input for a model applied by other means, such as an MLflow ``spark_udf``."""
    return _frames(from_dataframe(df, text_col, id_col), unit, None)


def label_files(spark: SparkSession, inputs: Sequence[str | Path], predictor: Predictor, *,
                unit: str = "article") -> SentenceFrames:
    """Label files, directories or URIs (what ``newsevents predict --engine spark`` reads).

    A whole file is one read task, so a few large files would keep most cores idle: then the
    articles are spread over every core before labeling (a shuffle of their text).
    """
    articles, files, failures = read_inputs(spark, inputs)
    cores = spark.sparkContext.defaultParallelism
    if articles.rdd.getNumPartitions() < cores:
        articles = articles.repartition(cores)
    frames = _frames(articles, unit, predictor)
    frames.failures, frames.files = failures, files
    return frames


def apply_pyfunc_udf(sentences: DataFrame, udf: Callable[..., Column]) -> DataFrame:
    """Score split sentences with an MLflow pyfunc UDF (``tracking.spark_udf``) and give the
    local engine's columns: ``labels`` back from ``;``-joined text to an array."""
    scored = sentences.withColumn("_pred", udf("text"))
    names = scored.schema["_pred"].dataType.fieldNames()
    labels = F.col("_pred.labels")
    return scored.select(
        "article_id", "sentence_index", "sentence_id", "text",
        F.when(labels == "", F.array().cast("array<string>"))
         .otherwise(F.split(labels, ";")).alias("labels"),
        *(F.col(f"_pred.{n}").alias(n) for n in names if n != "labels"))
