"""Soft labels from the accurate tier (the teacher) on a stratified subset of the pool sentences.

The pools in ``../shared/corpus/`` (UN General Debate speeches, MUC-4 wire) hold ~270k real
sentences; the teacher encodes a few dozen per second, so it scores a subset:

1. every pool document is cleaned and split as training and prediction do (sentence ids are
   hashes of the normalised text, so they match the project's everywhere);
2. sentences already labeled by hand, and every sentence of an excluded document (``--exclude``:
   the UN dev set's speeches by default, and any test-split document list), are dropped;
3. the fast model (the student, ``--student``, default ``models/champion``) scores the rest in
   seconds; each sentence falls in a stratum (source × the label it scores highest relative to
   that label's threshold, or ``background`` below half of every threshold);
4. strata get equal shares of ``--n`` (a stratum smaller than its share gives the rest back),
   drawn with a fixed seed: likely positives of every label and the background both appear;
5. the teacher (``--teacher``, default ``models/accurate``) scores the subset;
6. the output (``--out``, gzipped CSV, written atomically) holds ``sentence_id``, ``source``,
   ``doc_id``, ``stratum`` and one ``score_<label>`` per label (4 decimals): no text.

    nice -n 10 python scripts/teacher_soft_labels.py --n 30000 \
        --out data/annotations/soft/teacher-mpnet.csv.gz

Prints the strata, the subset's size and the teacher's speed.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from newsevents import paths
from newsevents.corpus import split_article
from newsevents.predict import Predictor

POOLS = {"un": paths.UN_DEBATE,
         "muc4": paths.SHARED / "corpus" / "muc4" / "muc4-news-1989-1991.jsonl.gz"}


def pool_sentences(limit_docs: int | None) -> Iterator[tuple[str, str, str, str]]:
    """(source, doc_id, sentence_id, text) of every pool sentence, in file order."""
    for source, path in POOLS.items():
        if not path.is_file():
            print(f"{path}: not found, skipped", file=sys.stderr)
            continue
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for i, line in enumerate(handle):
                if limit_docs is not None and i >= limit_docs:
                    break
                record = json.loads(line)
                doc = str(record["id"])
                for sentence in split_article(record["text"], doc):
                    yield source, doc, sentence.id, sentence.text


def labeled_ids() -> set[str]:
    """Ids of every sentence labeled by hand (all annotation CSVs, external sets included)."""
    ids: set[str] = set()
    for table in paths.ANNOTATIONS.rglob("*.csv"):
        with table.open(encoding="utf-8", newline="") as handle:
            ids.update(row["sentence_id"] for row in csv.DictReader(handle)
                       if row.get("sentence_id"))
    return ids


def excluded_docs(files: list[Path]) -> set[str]:
    """Document ids to leave out: the UN dev set's speeches (an evaluation set: no soft label
    may come from its documents), plus ``files`` (ids one per line, or a CSV with a
    ``doc_id``/``article_id``/``speech_id`` column)."""
    docs: set[str] = set()
    files = [*paths.EXTERNAL_ANNOTATIONS.glob("*.csv"), *files]
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".csv":
            for row in csv.DictReader(io.StringIO(text)):
                docs.add(row.get("doc_id") or row.get("article_id") or row.get("speech_id") or "")
        else:
            docs.update(line.strip() for line in text.splitlines() if line.strip())
    docs.discard("")
    return docs


def strata(scores: np.ndarray, thresholds: np.ndarray, labels: list[str],
           sources: list[str]) -> list[str]:
    relative = scores / np.maximum(thresholds, 1e-6)
    top = relative.argmax(axis=1)
    return [f"{src}:{labels[j]}" if relative[i, j] >= 0.5 else f"{src}:background"
            for i, (src, j) in enumerate(zip(sources, top, strict=True))]


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Equal shares of ``n``; a stratum smaller than its share gives the rest to the others."""
    quota, left, open_ = {}, n, dict(sizes)
    while open_ and left > 0:
        share = left // len(open_)
        small = {k: v for k, v in open_.items() if v <= share}
        if not small:
            for k in open_:
                quota[k] = share
            break
        for k, v in small.items():
            quota[k] = v
            left -= v
            del open_[k]
    return quota


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=paths.ACCURATE_DIR)
    parser.add_argument("--student", type=Path, default=paths.CHAMPION_DIR)
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--exclude", type=Path, action="append", default=[],
                        help="documents to leave out (ids one per line, or a CSV)")
    parser.add_argument("--limit-docs", type=int, help="read only the first N documents of "
                                                       "each pool (speed trials)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    t0 = time.perf_counter()
    skip_ids, skip_docs = labeled_ids(), excluded_docs(args.exclude)
    rows = {sid: (src, doc, text) for src, doc, sid, text in pool_sentences(args.limit_docs)
            if sid not in skip_ids and doc not in skip_docs}
    if not rows:
        print("no pool sentences found", file=sys.stderr)
        return 1
    ids = sorted(rows)
    print(f"{len(ids)} unlabeled pool sentences ({time.perf_counter() - t0:.0f} s to read and "
          f"split)")

    student = Predictor.load(args.student)
    t0 = time.perf_counter()
    fast = student.scores([rows[i][2] for i in ids])
    print(f"student {args.student}: {len(ids) / (time.perf_counter() - t0):.0f} sentences/s")
    keys = strata(fast, student.thresholds, student.labels, [rows[i][0] for i in ids])
    members: dict[str, list[str]] = defaultdict(list)
    for sid, key in zip(ids, keys, strict=True):
        members[key].append(sid)
    quota = allocate({k: len(v) for k, v in members.items()}, args.n)
    rng = random.Random(args.seed)
    chosen = sorted((sid, key) for key, sids in sorted(members.items())
                    for sid in rng.sample(sids, quota.get(key, 0)))
    for key in sorted(members):
        print(f"  {key:<32} {len(members[key]):>8} sentences, {quota.get(key, 0):>6} chosen")

    teacher = Predictor.load(args.teacher)
    texts = [rows[sid][2] for sid, _ in chosen]
    t0 = time.perf_counter()
    soft = np.concatenate([teacher.scores(texts[i:i + 500]) for i in range(0, len(texts), 500)])
    seconds = time.perf_counter() - t0
    print(f"teacher {args.teacher}: {len(texts)} sentences in {seconds:.0f} s "
          f"({len(texts) / seconds:.1f}/s)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence_id", "source", "doc_id", "stratum",
                         *(f"score_{n}" for n in teacher.labels)])
        for (sid, key), row in zip(chosen, soft.round(4).tolist(), strict=True):
            writer.writerow([sid, rows[sid][0], rows[sid][1], key.split(":", 1)[1], *row])
    os.replace(tmp, args.out)
    counts = Counter(k.split(":")[0] for _, k in chosen)
    print(f"wrote {len(chosen)} soft labels ({dict(counts)}) to {args.out} "
          f"({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
