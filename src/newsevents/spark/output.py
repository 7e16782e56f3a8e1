"""Write a Spark job's sentences and errors as Parquet or JSONL, committed only on success."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from newsevents.spark.engine import SentenceFrames
from newsevents.spark.session import SparkEngineError

FORMATS = ("parquet", "jsonl")
REPORT_FILE = "report.json"
SENTENCES_DIR, ERRORS_DIR = "sentences", "errors"
# Errors listed in the report and on stderr; the errors output holds all of them.
LISTED_ERRORS = 20


@dataclass
class SparkReport:
    """What a Spark job did; ``failures`` lists the first few, the errors output all."""

    output: str
    files: int = 0
    articles: int = 0
    sentences: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def rate(self) -> float:
        return self.sentences / self.seconds if self.seconds > 0 else 0.0

    def summary_line(self) -> str:
        # The local engine's wording, so that scripts reading either line need one pattern.
        def count(n: int, noun: str) -> str:
            return f"{n:,} {noun}{'' if n == 1 else 's'}"

        return (f"{count(self.articles, 'article')}, {count(self.sentences, 'sentence')}, "
                f"{self.failed:,} failed, {self.seconds:.2f} s, {self.rate:,.0f} sentences/s")


class _FileSystem:
    """The Hadoop file system of ``output`` (local, HDFS, S3...), through the driver's JVM."""

    def __init__(self, spark: SparkSession, output: str):
        jvm = spark._jvm  # type: ignore[attr-defined]
        self._path = jvm.org.apache.hadoop.fs.Path
        target = self._path(output)
        conf = spark._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
        self.fs = target.getFileSystem(conf)
        self.target = self.fs.makeQualified(target)

    def sibling(self, suffix: str) -> Any:
        return self._path(self.target.getParent(), f".{self.target.getName()}.{suffix}")

    def child(self, parent: Any, name: str) -> Any:
        return self._path(parent, name)

    def check_replaceable(self) -> None:
        """A previous newsevents output may be replaced; anything else at the target may not."""
        if self.fs.exists(self.target) and not self.fs.exists(
                self.child(self.target, REPORT_FILE)):
            raise SparkEngineError(f"{self.target}: exists and is not a newsevents output (no "
                                   f"{REPORT_FILE}); remove it or choose another output")

    def write_text(self, path: Any, text: str) -> None:
        stream = self.fs.create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def commit(self, staging: Any) -> None:
        """Move ``staging`` to the target; a previous output is moved aside, then deleted."""
        self.check_replaceable()
        old = None
        if self.fs.exists(self.target):
            old = self.sibling(f"{uuid.uuid4().hex[:8]}.old")
            self.fs.rename(self.target, old)
        if not self.fs.rename(staging, self.target):
            if old is not None:
                self.fs.rename(old, self.target)
            raise SparkEngineError(f"{self.target}: cannot rename the finished output into place")
        if old is not None:
            self.fs.delete(old, True)


def write_frames(frames: SentenceFrames, output: str | Path, fmt: str = "parquet"
                 ) -> SparkReport:
    """Write ``sentences/``, ``errors/`` and ``report.json`` under ``output``, atomically.

    Everything goes to a hidden staging directory beside ``output`` first; it is renamed into
    place only when the job has succeeded (a previous newsevents output there is replaced). A
    failed or interrupted job leaves no directory that looks complete.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    started = time.perf_counter()
    spark = frames.combined.sparkSession
    fs = _FileSystem(spark, str(output))
    fs.check_replaceable()  # before the work, not after an hour of it
    staging = fs.sibling(f"{uuid.uuid4().hex[:8]}.part")
    combined = frames.combined.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        frames = SentenceFrames(combined, frames.failures, frames.files, frames.model)
        for name, frame in ((SENTENCES_DIR, frames.sentences), (ERRORS_DIR, frames.errors)):
            writer = frame.write.mode("errorifexists")
            target = str(fs.child(staging, name).toString())
            if fmt == "parquet":
                writer.parquet(target)
            else:
                writer.option("ignoreNullFields", "false").json(target)
        found = F.col("error").isNull()
        stats = combined.agg(F.count_if(found).alias("sentences"),
                             F.count_if(found & (F.col("sentence_index") == 0)).alias("articles"),
                             F.count_if(~found).alias("failed")).first()
        listed = [r.error for r in frames.errors.limit(LISTED_ERRORS).collect()]
        report = SparkReport(str(output), frames.files, stats["articles"], stats["sentences"],
                             stats["failed"] + len(frames.failures), listed,
                             time.perf_counter() - started)
        fs.write_text(fs.child(staging, REPORT_FILE), _report_json(report, frames, fmt))
        fs.commit(staging)
        return report
    finally:
        combined.unpersist()
        if fs.fs.exists(staging):
            fs.fs.delete(staging, True)


def _report_json(report: SparkReport, frames: SentenceFrames, fmt: str) -> str:
    body = {"engine": "spark", "format": fmt, "written": datetime.now(UTC).isoformat(),
            "files": report.files, "articles": report.articles, "sentences": report.sentences,
            "failed": report.failed, "first_errors": report.failures,
            "seconds": round(report.seconds, 3), "model": frames.model,
            "columns": frames.sentences.columns, "spark": frames.combined.sparkSession.version}
    return json.dumps(body, indent=2) + "\n"
