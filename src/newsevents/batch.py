"""Label many inputs in one streaming pass: files, directories, JSONL/CSV records or stdin.

Articles stream from the inputs into chunks of about :data:`CHUNK_CHARS` characters; each chunk
is split and labeled (in worker processes for large batches, each loading the model once) and
written as soon as it comes back, so memory stays flat however many files there are. Output
files go to a temporary file beside the target and are renamed into place only when the batch
has run to the end: a reader never sees half a file.

A bad input (empty, binary, not UTF-8, unreadable, a malformed record, a CSV without a ``text``
column) is reported in one line naming it, and the batch goes on; :class:`BatchReport` counts it.

Examples
--------
>>> from newsevents.predict import Predictor
>>> report = label_batch(["new-articles/"], Predictor.load(), "labels.jsonl")  # doctest: +SKIP
>>> report.summary_line()  # doctest: +SKIP
'5 articles, 72 sentences, 0 failed, 0.05 s, 1,505 sentences/s'
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING

from newsevents.corpus import (
    MAX_FILE_BYTES,
    READABLE_SUFFIXES,
    Article,
    CorpusError,
    Sentence,
    check_text_bytes,
    decode,
    iter_input_files,
    read_file,
    sentence_id,
    split_article,
)
from newsevents.output import (
    FORMATS,
    Formatter,
    atomic_writer,
    infer_format,
    open_output,
    row_columns,
    sentence_row,
    summary_columns,
    summary_row,
)

if TYPE_CHECKING:
    from newsevents.predict import LabeledSentence, Predictor

UNITS = ("article", "sentence")
STDIN = "-"
STDIN_SOURCE = "<stdin>"
# ~2,000 news sentences: large enough that one model call (the embedding tokenizer works best
# on big batches) and one inter-process hop per chunk cost little, small enough that memory
# stays at a few MB per chunk in flight.
CHUNK_CHARS = 256_000
# A worker loading the numpy scorer starts in about 0.3 s (a pickled pipeline: 1.5-3 s).
# Measured on 2 cores, idle: two workers break even at about 1.2 MB of text and win from there
# (2.4 s against 2.0 s at 2.5 MB); below this, one process.
PARALLEL_MIN_BYTES = 2 * 2**20


# --------------------------------------------------------------------------- report

@dataclass
class BatchReport:
    """What a batch did: counts, failures (one line each) and timing."""

    files: int = 0
    articles: int = 0
    sentences: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    jobs: int = 1

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def rate(self) -> float:
        """Sentences per second."""
        return self.sentences / self.seconds if self.seconds > 0 else 0.0

    def summary_line(self) -> str:
        return (f"{_count(self.articles, 'article')}, {_count(self.sentences, 'sentence')}, "
                f"{len(self.failures):,} failed, {self.seconds:.2f} s, "
                f"{self.rate:,.0f} sentences/s")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------- reading

def split_lines(text: str, article_id: str = "") -> list[Sentence]:
    """Each non-blank line is one sentence, as given (``--unit sentence``): no cleaning or splitting
    beyond collapsing whitespace, and repeats are kept so that output rows match input lines."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [Sentence(article_id, i, sentence_id(line), line)
            for i, line in enumerate(line for line in lines if line)]


UNIT_SPLITTERS: dict[str, Callable[[str, str], list[Sentence]]] = {
    "article": split_article, "sentence": split_lines,
}


def read_stdin(stream: IO[bytes]) -> Article:
    """The whole of ``stream`` as one article, with the checks :func:`corpus.read_file` makes."""
    data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise CorpusError(f"{STDIN_SOURCE}: input too large (> {MAX_FILE_BYTES / 2**20:.0f} MiB)")
    check_text_bytes(data, STDIN_SOURCE, what="input")
    return Article("stdin", decode(data, STDIN_SOURCE), STDIN_SOURCE)


def expand_inputs(inputs: Iterable[str | Path], failures: list[str]) -> list[Path | str]:
    """Files in reading order: directories expanded recursively, ``-`` kept for stdin.

    Only paths are held, so even a very large batch costs little memory here.
    """
    items: list[Path | str] = []
    for item in inputs:
        if str(item) == STDIN:
            items.append(STDIN)
            continue
        path = Path(item)
        found = list(iter_input_files([path]))
        if path.is_dir() and not found:
            failures.append(f"{path}: directory has no {'/'.join(sorted(READABLE_SUFFIXES))} "
                            "files")
        items.extend(found)
    return items


def iter_articles(items: Iterable[Path | str], failures: list[str],
                  stdin: IO[bytes] | None = None,
                  on_file: Callable[[], None] | None = None) -> Iterator[Article]:
    """Articles from each item in turn; a file that cannot be read is added to ``failures``."""
    for item in items:
        try:
            if item == STDIN:
                yield read_stdin(stdin if stdin is not None else sys.stdin.buffer)
            else:
                yield from read_file(item, failures)
        except CorpusError as exc:
            failures.append(str(exc))
        if on_file is not None:
            on_file()


def chunk_articles(articles: Iterable[Article], max_chars: int = CHUNK_CHARS
                   ) -> Iterator[list[Article]]:
    """Group articles into lists of about ``max_chars`` characters (an article is never cut)."""
    chunk: list[Article] = []
    size = 0
    for article in articles:
        chunk.append(article)
        size += len(article.text)
        if size >= max_chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


# --------------------------------------------------------------------------- labeling

@dataclass
class ChunkResult:
    """One labeled chunk, already formatted, so that workers do the serialising too."""

    rows: str
    summary: str
    articles: int
    sentences: int
    failures: list[str]


def label_articles(predictor: Predictor, articles: Sequence[Article], unit: str
                   ) -> Iterator[tuple[Article, list[LabeledSentence] | str]]:
    """Split every article of a chunk and label all its sentences in one model call.

    Yields each article with its labeled sentences, or with a one-line failure when it has
    none. The local and the Spark engine both label through this function.
    """
    split = UNIT_SPLITTERS[unit]
    per_article = [split(a.text, a.id) for a in articles]
    labeled = predictor.label_sentences([s for sents in per_article for s in sents])
    start = 0
    for article, sentences in zip(articles, per_article, strict=True):
        mine = labeled[start:start + len(sentences)]
        start += len(sentences)
        yield article, mine or f"{article.source or article.id}: no sentences found"


def label_chunk(predictor: Predictor, articles: Sequence[Article], unit: str,
                rows: Formatter, summary: Formatter | None) -> ChunkResult:
    """Label a chunk (:func:`label_articles`) and format its rows and summary."""
    failures, row_dicts, summary_dicts, n_sentences = [], [], [], 0
    for article, mine in label_articles(predictor, articles, unit):
        if isinstance(mine, str):
            failures.append(mine)
            continue
        n_sentences += len(mine)
        row_dicts.extend(sentence_row(s) for s in mine)
        if summary is not None:
            summary_dicts.append(summary_row(article, mine, predictor.labels))
    return ChunkResult(rows.format(row_dicts), summary.format(summary_dicts) if summary else "",
                       len(articles) - len(failures), n_sentences, failures)


@cache
def _worker_predictor(directory: str, sha256: str, engine: str) -> Predictor:
    # Runs in a worker process: the model is loaded (and its digest checked) once per worker.
    from tqdm import tqdm

    from newsevents.predict import ModelError, Predictor

    # Ctrl-C reaches the whole process group; the parent stops the batch and ends its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tqdm's default lock (made even for the embedding model's disabled bars) is a semaphore
    # that a worker ended mid-batch would leak, with a warning; workers draw no bars.
    tqdm.set_lock(threading.RLock())
    predictor = Predictor.load(directory, engine)
    if predictor.metadata.get("sha256") != sha256:  # re-exported while the batch was running
        raise ModelError(f"{directory}: the model changed during the batch; run it again")
    return predictor


def _label_chunk_in_worker(model: tuple[str, str, str], articles: list[Article], unit: str,
                           rows: Formatter, summary: Formatter | None) -> ChunkResult:
    return label_chunk(_worker_predictor(*model), articles, unit, rows, summary)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_jobs(jobs: int | None, items: Sequence[Path | str]) -> int:
    """``jobs`` if given, else every core for inputs of at least :data:`PARALLEL_MIN_BYTES`."""
    if jobs is not None:
        return max(1, jobs)
    total = 0
    for item in items:
        if isinstance(item, Path):
            with suppress(OSError):  # an unreadable file is reported when it is read
                total += item.stat().st_size
    return available_cores() if total >= PARALLEL_MIN_BYTES else 1


def _label_chunks(chunks: Iterable[list[Article]], predictor: Predictor, unit: str,
                  rows: Formatter, summary: Formatter | None, jobs: int
                  ) -> Iterator[ChunkResult]:
    """Labeled chunks in input order, in this process or in ``jobs`` worker processes."""
    if jobs <= 1:
        for chunk in chunks:
            yield label_chunk(predictor, chunk, unit, rows, summary)
        return
    from joblib import Parallel, delayed

    # Ordered generator with bounded dispatch: at most 2 chunks per worker are in flight, so
    # memory does not grow with the input.
    parallel = Parallel(n_jobs=jobs, return_as="generator", pre_dispatch="2*n_jobs")
    task = delayed(_label_chunk_in_worker)
    model = (str(predictor.directory), str(predictor.metadata.get("sha256")), predictor.engine)
    yield from parallel(task(model, chunk, unit, rows, summary) for chunk in chunks)


# --------------------------------------------------------------------------- writing

class _Progress:
    """A tqdm bar over input files, or nothing; messages are printed above the bar."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm  # only on a terminal

            self.bar = tqdm(total=total, unit="file", dynamic_ncols=True, leave=False)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update()

    def sentences(self, count: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{count:,} sentences", refresh=False)

    def write(self, message: str, sink: Callable[[str], None]) -> None:
        if self.bar is None:
            sink(message)
            return
        with self.bar.external_write_mode(file=sys.stderr):  # clear the bar, print, redraw
            sink(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- the batch

def label_batch(inputs: Sequence[str | Path], predictor: Predictor,
                output: str | Path | IO[str] | None = None, *, fmt: str = "jsonl",
                unit: str = "article", summary: str | Path | None = None,
                errors_file: str | Path | None = None, jobs: int | None = None,
                progress: bool = False, on_error: Callable[[str], None] | None = None,
                stdin: IO[bytes] | None = None, chunk_chars: int = CHUNK_CHARS) -> BatchReport:
    """Label every sentence of ``inputs`` and write one row per sentence to ``output``.

    ``output`` is a path (written atomically), an open text stream, or ``None`` for stdout.
    ``summary`` gets one row per article (format from its suffix, else ``fmt``); ``errors_file``
    one line per failure. Failures never stop the batch: each is passed to ``on_error`` as it
    is found and listed in the returned report. ``jobs=None`` picks worker processes by input
    size (:func:`choose_jobs`).
    """
    if fmt not in FORMATS or unit not in UNITS:
        raise ValueError(f"format must be one of {FORMATS} and unit one of {UNITS}")
    started = time.perf_counter()
    failures: list[str] = []
    items = expand_inputs(inputs, failures)
    # Workers load the model from its directory; an in-memory predictor stays in this process,
    # and so does an encoder model unless asked (ONNX Runtime already uses every core).
    if predictor.directory is None or (jobs is None and predictor.metadata.get("encoders")):
        jobs = 1
    jobs = choose_jobs(jobs, items)
    report = BatchReport(files=len(items), failures=failures, jobs=jobs)
    rows = Formatter(fmt, tuple(row_columns(predictor.labels)))
    summary_fmt = (Formatter(infer_format(summary, fmt), tuple(summary_columns(predictor.labels)))
                   if summary is not None else None)
    bar = _Progress(len(items), progress)
    reported = 0

    def report_new_failures() -> None:
        nonlocal reported
        for message in failures[reported:]:
            if on_error is not None:
                bar.write(message, on_error)
        reported = len(failures)

    try:
        with ExitStack() as stack:
            out = stack.enter_context(open_output(output))
            summary_out = stack.enter_context(atomic_writer(summary)) if summary else None
            out.write(rows.header())
            if summary_out is not None and summary_fmt is not None:
                summary_out.write(summary_fmt.header())
            articles = iter_articles(items, failures, stdin, on_file=bar.advance)
            for result in _label_chunks(chunk_articles(articles, chunk_chars), predictor, unit,
                                        rows, summary_fmt, report.jobs):
                out.write(result.rows)
                if summary_out is not None:
                    summary_out.write(result.summary)
                report.articles += result.articles
                report.sentences += result.sentences
                failures.extend(result.failures)
                bar.sentences(report.sentences)
                report_new_failures()
            report_new_failures()
    finally:
        bar.close()
    if errors_file is not None:
        with atomic_writer(errors_file) as handle:
            handle.writelines(f"{message}\n" for message in failures)
    report.seconds = time.perf_counter() - started
    return report
