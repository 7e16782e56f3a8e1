"""Articles in, sentences out: read, clean and split news text, and give sentences stable ids.

This module knows nothing about labels or models: training and prediction both call
:func:`split_article`, so both see exactly the same sentences.

Examples
--------
>>> [s.text for s in split_article("Mr. Kim met the U.S. envoy. He said talks went well.")]
['Mr. Kim met the U.S. envoy.', 'He said talks went well.']
>>> sentence_id("He said  talks went well.") == sentence_id("he said talks went well")
True
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

MAX_FILE_BYTES = 50 * 1024 * 1024
TEXT_SUFFIXES = {".txt", ".text", ".md"}
HTML_SUFFIXES = {".html", ".htm"}
RECORD_SUFFIXES = {".jsonl", ".csv"}
READABLE_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | RECORD_SUFFIXES


class CorpusError(ValueError):
    """An input that cannot be read as articles. The message names the file and the problem."""


@dataclass(frozen=True)
class Article:
    """One article: an id, its raw text and where it came from."""

    id: str
    text: str
    source: str = ""


@dataclass(frozen=True)
class Sentence:
    """One sentence of an article, in reading order."""

    article_id: str
    index: int
    id: str
    text: str


# --------------------------------------------------------------------------- stable ids

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'",
                         "‚": "'", "`": "'", "–": "-", "—": "-", "‑": "-"})


def normalize(text: str) -> str:
    """Fold a sentence to the form its id is computed from (case, quotes, dashes, spacing)."""
    # ASCII text is already NFKC and its only foldable character is the backtick; skipping the
    # rest matters because every sentence labeled gets an id.
    if text.isascii():
        text = text.replace("`", "'")
    else:
        text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    # str.split() splits on exactly the characters re's \s matches.
    return " ".join(text.lower().split()).rstrip(" .!?;:,")


def sentence_id(text: str) -> str:
    """A stable id from the normalised text, so re-splitting never orphans a label."""
    return "s" + hashlib.sha1(normalize(text).encode("utf-8")).hexdigest()[:12]


# --------------------------------------------------------------------------- cleaning

_CLOSERS = "\"'”’)]"


def _is_terminal(text: str) -> bool:
    """True if ``text`` ends a sentence: . ! ? or … then only closing quotes or brackets."""
    # The same as searching r"[.!?…][\"'”’)\]]*$", without trying every start position.
    return text.rstrip(_CLOSERS)[-1:] in (".", "!", "?", "…")


_FUNCTION_WORDS = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "with", "by", "and", "or",
    "but", "as", "into", "than", "that", "which", "who", "whose", "its", "their", "his", "her",
    "our", "this", "these", "those",
})
_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_DATE = re.compile(
    rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}\b|"
    rf"\b\d{{1,2}}\s+{_MONTHS}\.?\s+\d{{4}}\b|\b{_MONTHS}\.?\s+\d{{1,2}},?\s+\d{{4}}\b",
    re.IGNORECASE,
)
# Web furniture that news sites wrap around articles (widgets, sharing, comments, paywalls).
_WIDGET = re.compile(
    r"\b(support us|become (?:our|a) (?:patron|member)|leave a (?:comment|reply)|"
    r"(?:write|post|view|show) comments?|social comment|log ?in\b|sign ?(?:in|up)\b|subscribe|"
    r"newsletter|related (?:articles?|stor(?:y|ies)|news|content)|minute read|read more|"
    r"share (?:this|on)|follow us|all rights reserved|copyright|cookies?|advertisement|"
    r"click here|print dictionary|skip to (?:main )?content)\b",
    re.IGNORECASE,
)
_CREDIT_LINE = re.compile(r"^(?:photos?|source|images?|credits?|pictures?|video|file photo)\s*:",
                          re.IGNORECASE)
_TRAILING_CREDIT = re.compile(
    r"\s*(?:(?:photo|image|picture|credit)s?\s*(?:by)?\s*:\s*[^:]{1,60}|"
    r"\[[A-Z0-9][A-Z0-9 .,'/&-]{1,60}\]|\((?:photo|image|file photo)[^)]{0,60}\))\s*$",
    re.IGNORECASE,
)
_BYLINE = re.compile(r"^by\s*[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,3}(?:\s*[,|/]\s*\w+)?$",
                     re.IGNORECASE)
_EMAIL = re.compile(r"\[email\s*protected\]|\b[\w.+-]+@[\w-]+\.[\w.]+\b", re.IGNORECASE)
_END_MARK = re.compile(r"\s*(?:\(END\)|-+\s*END\s*-+|#{3,})\s*$")
# "BRUSSELS, July 5 (Yonhap) -- ": the place must be in capitals, or any clause before a dash
# would go.
_DATELINE = re.compile(
    rf"^[A-Z][A-Z .'-]{{2,40}}(?:,\s*[A-Z][a-z]+)?,?\s*(?:(?i:{_MONTHS})\.?\s+\d{{1,2}}\s*)?"
    r"(?:\([^)]{1,30}\)\s*)?(?:--|—|–|-)\s+"
)
_SPACES = re.compile(r"[ \t]+")
_BULLET = re.compile(r"^\s*[•·*▪●◦‣>-]\s+")
_BULLET_MARKS = frozenset("•·*▪●◦‣>-")
_BREADCRUMB = re.compile(r"(?:\s[>|»/]\s.*){2,}")
_BREADCRUMB_MARKS = frozenset(">|»/")


def _is_furniture(line: str, is_first: bool) -> bool:
    """True for a line that is page furniture rather than article content."""
    words = line.split()
    if not words:
        return True
    terminal = _is_terminal(line)
    if _CREDIT_LINE.match(line) or _BYLINE.match(line) or (
            _BREADCRUMB_MARKS.intersection(line) and _BREADCRUMB.search(line)):
        return True
    if len(words) <= 25 and _WIDGET.search(line):
        return True
    if not terminal and len(words) <= 6 and _DATE.search(line):
        return True
    # Leftover fragments (agency names, icon labels, counters) after the headline.
    return not is_first and not terminal and len(words) <= 5


def _rejoin_wrapped(lines: list[str]) -> list[str]:
    """Join lines that were wrapped mid-sentence (next line lower-case, or a dangling word)."""
    out: list[str] = []
    for line in lines:
        if out and out[-1] and line:
            prev = out[-1]
            last_word = prev.split()[-1].lower()
            if not _is_terminal(prev) and (
                line[0].islower() or last_word in _FUNCTION_WORDS or prev.endswith(",")
            ):
                out[-1] = f"{prev} {line}"
                continue
        out.append(line)
    return out


def clean_text(text: str) -> list[str]:
    """Turn raw article text into content blocks: furniture removed, wrapped lines rejoined."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u200b", "")
    lines = [_tidy_line(raw) for raw in text.split("\n")]
    blocks: list[str] = []
    for line in _rejoin_wrapped(lines):
        # Cheap guards first: this loop runs once per line of every article labeled.
        if "@" in line or "protected]" in line:
            line = _EMAIL.sub("", line).strip()
        if line.endswith((")", "-", "#")):
            line = _END_MARK.sub("", line).strip()
        if not line or _is_furniture(line, is_first=not blocks):
            continue
        line = _DATELINE.sub("", line, count=1)
        # A trailing credit ends in "]" or ")" or has a colon near the end.
        if line.endswith(("]", ")")) or ":" in line[-120:]:
            line = _strip_tail(_TRAILING_CREDIT, line, 120).strip()
        if line:
            blocks.append(line)
    return blocks


def _tidy_line(raw: str) -> str:
    """A line without its bullet and with runs of spaces or tabs made single."""
    if raw.lstrip()[:1] in _BULLET_MARKS:
        raw = _BULLET.sub("", raw)
    if "\t" in raw or "  " in raw:
        raw = _SPACES.sub(" ", raw)
    return raw.strip()


def _strip_tail(pattern: re.Pattern[str], line: str, window: int = 120) -> str:
    """Apply an end-anchored pattern to the last ``window`` characters only.

    A ``$``-anchored search still tries every start position; credits are < 100 characters.
    """
    if len(line) <= window:
        return pattern.sub("", line)
    return line[:-window] + pattern.sub("", line[-window:])


# --------------------------------------------------------------------------- splitting

def _nupunkt(block: str) -> list[str]:
    import nupunkt

    return list(nupunkt.sent_tokenize(block))


def _syntok(block: str) -> list[str]:
    import syntok.segmenter as segmenter

    return ["".join(str(t) for t in sent).strip()
            for para in segmenter.process(block) for sent in para]


def _pysbd(block: str) -> list[str]:
    return list(_pysbd_segmenter().segment(block))


@cache
def _pysbd_segmenter():  # type: ignore[no-untyped-def]
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _blingfire(block: str) -> list[str]:
    import blingfire

    return blingfire.text_to_sentences(block).split("\n")


SPLITTERS: dict[str, Callable[[str], list[str]]] = {
    "nupunkt": _nupunkt, "syntok": _syntok, "pysbd": _pysbd, "blingfire": _blingfire,
}
DEFAULT_SPLITTER = "nupunkt"

_ATTRIBUTION = re.compile(
    r"^(?:he|she|they|it|the \w+|[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,3})\s+"
    r"(?:said|says|stated|added|noted|told|wrote|stressed|according)\b",
)
_QUOTE_COMMA_END = re.compile(r"[,:]\s*[\"”’']\s*$")


def _merge_fragments(parts: list[str]) -> list[str]:
    """Glue back pieces a splitter cut off: attributions, trailing fragments, cut quotes."""
    out: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if out:
            prev = out[-1]
            fragment = len(part.split()) < 3
            quote_then_attribution = _QUOTE_COMMA_END.search(prev) or (
                prev.rstrip().endswith(('"', "”")) and _ATTRIBUTION.match(part)
                and len(part.split()) <= 12
            )
            continued = part[0].islower() and not _is_terminal(prev)
            if fragment or quote_then_attribution or continued:
                out[-1] = f"{prev} {part}"
                continue
        out.append(part)
    return out


def split_block(block: str, splitter: str = DEFAULT_SPLITTER) -> list[str]:
    """Split one cleaned block of text into sentences."""
    try:
        split = SPLITTERS[splitter]
    except KeyError:
        raise ValueError(f"unknown splitter {splitter!r}; choose from {sorted(SPLITTERS)}"
                         ) from None
    return _merge_fragments(split(block))


def split_article(text: str, article_id: str = "", splitter: str = DEFAULT_SPLITTER
                  ) -> list[Sentence]:
    """Clean an article and split it into sentences; exact repeats (captions) are kept once."""
    seen: set[str] = set()
    sentences: list[Sentence] = []
    for block in clean_text(text):
        for sent in split_block(block, splitter):
            sid = sentence_id(sent)
            if sid in seen:
                continue
            seen.add(sid)
            sentences.append(Sentence(article_id, len(sentences), sid, sent))
    return sentences


# --------------------------------------------------------------------------- reading files

def _read_bytes(path: Path) -> bytes:
    try:
        _check_size(path.stat().st_size, str(path))
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _check_size(size: int, source: str) -> None:
    if size > MAX_FILE_BYTES:
        raise CorpusError(f"{source}: file too large ({size / 2**20:.0f} MiB > "
                          f"{MAX_FILE_BYTES / 2**20:.0f} MiB limit)")


def check_text_bytes(data: bytes, source: str, what: str = "file") -> None:
    """Refuse an empty or binary (a NUL byte near the start) ``what`` before decoding."""
    if not data.strip():
        raise CorpusError(f"{source}: empty {what}")
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{source}: binary {what}, not text")


def decode(data: bytes, source: str) -> str:
    """Decode UTF-8 (a BOM is allowed) or raise a :class:`CorpusError` naming the bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{source}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def html_to_text(html: str) -> str:
    """Main text of an HTML page (boilerplate, menus and comments removed) via trafilatura."""
    import trafilatura  # imported here: only HTML inputs pay for it

    title = ""
    meta = trafilatura.extract_metadata(html)
    if meta is not None and meta.title:
        title = meta.title + "\n\n"
    body = trafilatura.extract(html, include_comments=False, include_tables=False,
                               favor_precision=True)
    return title + (body or "")


def jsonl_records(text: str, source: str) -> Iterator[tuple[int, dict | CorpusError]]:
    """``(line number, record)`` per non-blank line of JSONL ``text``.

    A line that is not a JSON object yields a :class:`CorpusError` (naming ``source`` and the
    line) in place of the record, so that each caller decides whether to skip or stop.
    """
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, CorpusError(f"{source}:{n}: malformed JSON ({exc.msg})")
            continue
        yield n, (record if isinstance(record, dict)
                  else CorpusError(f"{source}:{n}: not a JSON object"))


def _records_jsonl(text: str, source: str, stem: str,
                   errors: list[str] | None) -> Iterator[Article]:
    for n, record in jsonl_records(text, source):
        if isinstance(record, CorpusError):
            _fail(str(record), errors)
        elif not isinstance(record.get("text"), str):
            _fail(f"{source}:{n}: record has no string 'text' field", errors)
        else:
            yield Article(str(record.get("id", f"{stem}:{n}")), record["text"], f"{source}:{n}")


def _records_csv(text: str, source: str, stem: str,
                 errors: list[str] | None) -> Iterator[Article]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "text" not in reader.fieldnames:
        raise CorpusError(f"{source}: CSV has no 'text' column (columns: "
                          f"{', '.join(reader.fieldnames or []) or 'none'})")
    try:
        for n, row in enumerate(reader, start=2):
            if None in row or row.get("text") is None:
                _fail(f"{source}:{n}: row has {len(reader.fieldnames)} columns expected", errors)
                continue
            yield Article(row.get("id") or f"{stem}:{n}", row["text"], f"{source}:{n}")
    except csv.Error as exc:
        raise CorpusError(f"{source}: malformed CSV ({exc})") from None


def _fail(message: str, errors: list[str] | None) -> None:
    if errors is None:
        raise CorpusError(message)
    errors.append(message)


def read_file(path: str | Path, errors: list[str] | None = None) -> Iterator[Article]:
    """Yield the articles in one file (.txt, .html, .jsonl or .csv with a ``text`` column).

    A problem with the whole file raises :class:`CorpusError`. A problem with one record of a
    JSONL/CSV file raises too, unless ``errors`` is a list: then the message is appended and
    reading goes on with the next record.
    """
    path = Path(path)
    _check_suffix(path.suffix.lower(), str(path))
    yield from read_bytes(_read_bytes(path), str(path), errors)


def _check_suffix(suffix: str, source: str) -> None:
    if suffix not in READABLE_SUFFIXES:
        raise CorpusError(f"{source}: unsupported file type {suffix or '(none)'!r} "
                          f"(expected one of {', '.join(sorted(READABLE_SUFFIXES))})")


def read_bytes(data: bytes, source: str, errors: list[str] | None = None) -> Iterator[Article]:
    """The articles in ``data``, the contents of the file ``source`` (a path or a URI), as
    :func:`read_file` reads them: for bytes read elsewhere (by Spark, say)."""
    name = PurePosixPath(source)
    suffix = name.suffix.lower()
    _check_suffix(suffix, source)
    _check_size(len(data), source)
    check_text_bytes(data, source)
    text = decode(data, source)
    if suffix in TEXT_SUFFIXES:
        yield Article(name.stem, text, source)
    elif suffix in HTML_SUFFIXES:
        body = html_to_text(text)
        if not body.strip():
            raise CorpusError(f"{source}: no article text found in the HTML")
        yield Article(name.stem, body, source)
    elif suffix == ".jsonl":
        yield from _records_jsonl(text, source, name.stem, errors)
    else:
        yield from _records_csv(text, source, name.stem, errors)


def iter_input_files(inputs: list[str | Path]) -> Iterator[Path]:
    """Expand files and directories (recursively, readable suffixes only) in a stable order."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.is_file() and p.suffix.lower() in READABLE_SUFFIXES)
        else:
            yield path
