"""Soft labels from the accurate tier (the teacher) on a stratified subset of the pool sentences.

The pools in ``../shared/corpus/`` (UN General Debate speeches, MUC-4 wire) hold ~270k real
sentences; the teacher encodes a few dozen per second, so it scores a subset:

1. every pool document is cleaned and split as training and prediction split them (sentence
   ids are hashes of the normalised text, so they match the project's everywhere);
2. left out: every sentence of a test-split document (``data/splits/test-documents.csv``), and
   its copies in other documents (same sentence id); every sentence that near-duplicates a
   test-split sentence (the test that ``newsevents.groups`` uses for folds); every sentence
   labeled by hand (any annotation CSV); repeats of a sentence already taken; and sentences
   outside 20–1,000 characters or under 4 words (as the labeled pool sentences were drawn);
3. the fast model (``--student``, default ``models/champion``) scores the rest in seconds; each
   sentence falls in a stratum: pool × the label it scores highest relative to that label's
   threshold, or ``background`` below half of every threshold;
4. strata get equal shares of ``--n`` (a stratum smaller than its share gives the rest back),
   drawn with a fixed seed, at most ``--per-document`` sentences per document (rare strata
   draw first, so that the cap falls on the common ones);
5. the teacher (``--teacher``, default ``models/accurate``) encodes the subset in chunks, each
   filed in the training encoder cache (``data/processed/encoder-cache/``: an interrupted run
   resumes where it stopped), and scores it;
6. written atomically: ``--out`` (gzipped CSV: ``sentence_id, source, document_id, stratum`` and
   one ``score_<label>`` per label, 3 decimals; no text) and its sidecar ``.json`` (the
   teacher, its thresholds, what was left out, the strata, the speed).

    nice -n 10 python scripts/teacher_soft_labels.py --n 30000 \\
        --out data/annotations/soft/teacher-mpnet.csv.gz

Prints the strata, the subset's size and the teacher's speed.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import io
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from newsevents import paths
from newsevents.dataset import TEST, load_table, read_test_documents
from newsevents.features import ContextualEmbeddings
from newsevents.groups import near_duplicates_of
from newsevents.labels import load_schema
from newsevents.models import encoders_used
from newsevents.predict import Predictor
from newsevents.soft_labels import pool_documents, sidecar

MIN_CHARS, MAX_CHARS, MIN_WORDS = 20, 1000, 4  # as scripts/sample_pool_sentences.py
CHUNK = 1000


def read_pools() -> pd.DataFrame:
    """Every sentence of every pool present: pool, document, id, text."""
    rows = []
    for name, path in paths.POOLS.items():
        if not path.is_file():
            print(f"{path}: not found, skipped", file=sys.stderr)
            continue
        for doc, sentences in pool_documents(path):
            rows.extend((name, doc, s.id, s.text) for s in sentences)
    return pd.DataFrame(rows, columns=["source", "document_id", "sentence_id", "text"])


def labeled_ids() -> set[str]:
    """Ids of every sentence labeled by hand (every annotation CSV)."""
    ids: set[str] = set()
    for table in paths.ANNOTATIONS.rglob("*.csv"):
        with table.open(encoding="utf-8", newline="") as handle:
            ids.update(row["sentence_id"] for row in csv.DictReader(handle)
                       if row.get("sentence_id"))
    return ids


def candidates(pool: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The pool sentences that may get a soft label, and how many were left out for what."""
    excluded: dict[str, int] = {}
    test_docs = read_test_documents()
    in_test = np.array([key in test_docs for key in zip(pool["source"], pool["document_id"],
                                                        strict=True)])
    excluded["sentences of test-split documents"] = int(in_test.sum())
    copies = ~in_test & pool["sentence_id"].isin(set(pool.loc[in_test, "sentence_id"]))
    excluded["copies of a sentence of a test-split document"] = int(copies.sum())
    rest = pool[~in_test & ~copies]
    labeled = rest["sentence_id"].isin(labeled_ids())
    excluded["labeled by hand"] = int(labeled.sum())
    rest = rest[~labeled]
    n_words = rest["text"].str.split().str.len()
    size = rest["text"].str.len().between(MIN_CHARS, MAX_CHARS) & (n_words >= MIN_WORDS)
    excluded["under 20 or over 1,000 characters, or under 4 words"] = int((~size).sum())
    rest = rest[size]
    repeat = rest["sentence_id"].duplicated()
    excluded["repeats of a sentence already taken"] = int(repeat.sum())
    rest = rest[~repeat].reset_index(drop=True)
    t0 = time.perf_counter()
    table = load_table(load_schema())
    test_texts = list(table.loc[table["split"] == TEST, "text"])
    near = np.array([bool(s) for s in near_duplicates_of(list(rest["text"]), test_texts)])
    excluded["near-duplicates of a test-split sentence"] = int(near.sum())
    print(f"near-duplicate check against the {len(test_texts)} test-split sentences: "
          f"{time.perf_counter() - t0:.0f} s")
    return rest[~near].reset_index(drop=True), excluded


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


def draw(table: pd.DataFrame, n: int, per_document: int, seed: int) -> pd.DataFrame:
    """Equal shares per stratum, at most ``per_document`` chosen per document, fixed seed.

    Rare strata draw first, so that the per-document cap falls on the common ones; what the
    cap leaves unfilled goes to the strata that still have sentences to give.
    """
    rng = random.Random(seed)
    members = {key: rng.sample(list(rows), len(rows)) for key, rows in
               sorted(table.groupby("stratum").indices.items())}
    quota = allocate({k: len(v) for k, v in members.items()}, n)
    docs = list(zip(table["source"], table["document_id"], strict=True))
    taken: Counter = Counter()
    chosen: dict[str, list[int]] = {k: [] for k in members}
    cursor = dict.fromkeys(members, 0)

    def take(key: str, limit: int) -> None:
        while len(chosen[key]) < limit and cursor[key] < len(members[key]):
            i = members[key][cursor[key]]
            cursor[key] += 1
            if taken[docs[i]] < per_document:
                taken[docs[i]] += 1
                chosen[key].append(i)

    for key in sorted(members, key=lambda k: len(members[k])):
        take(key, quota.get(key, 0))
    while (short := n - sum(map(len, chosen.values()))) > 0:
        open_ = [k for k in members if cursor[k] < len(members[k])]
        if not open_:
            break
        for key in open_:
            take(key, len(chosen[key]) + max(1, short // len(open_)))
            if sum(map(len, chosen.values())) >= n:
                break
    for key in members:
        print(f"  {key:<40} {len(members[key]):>8} sentences, {len(chosen[key]):>6} chosen")
    rows = sorted(i for picked in chosen.values() for i in picked)
    return table.iloc[rows].sort_values(["source", "document_id", "sentence_id"])


def teacher_scores(model_dir: Path, texts: list[str]) -> tuple[np.ndarray, float]:
    """The teacher's scores, its encoder's vectors filed in the training cache chunk by chunk."""
    # The pipeline itself (to file the encoder's vectors as it goes), its sha256 checked by load.
    pipeline = Predictor.load(model_dir, engine="sklearn").model
    (encoder,) = encoders_used(pipeline)
    step = ContextualEmbeddings(encoder["name"], cache_dir=str(paths.ENCODER_CACHE)).fit([])
    if step.digest_ != encoder["sha256"]:
        raise SystemExit(f"{model_dir}: trained with encoder build {encoder['sha256'][:12]}, "
                         f"installed is {step.digest_[:12]}")
    t0 = time.perf_counter()
    for start in range(0, len(texts), CHUNK):
        step.prefetch(texts[start:start + CHUNK])
        done = min(start + CHUNK, len(texts))
        rate = done / (time.perf_counter() - t0)
        print(f"  encoded {done}/{len(texts)} ({rate:.1f}/s, "
              f"{(len(texts) - done) / rate / 60:.0f} min left)", flush=True)
    seconds = time.perf_counter() - t0
    scores = pipeline.predict_proba(texts)
    check = Predictor.load(model_dir).scores(texts[:16])  # the exported scorer agrees
    if not np.allclose(check, scores[:16], atol=1e-5):
        raise SystemExit(f"{model_dir}: pipeline and exported scorer disagree")
    return scores, seconds


def write(out: Path, chosen: pd.DataFrame, scores: np.ndarray, labels: list[str],
          meta: dict) -> None:
    """The gzipped CSV (deterministic bytes) and its sidecar, each written atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["sentence_id", "source", "document_id", "stratum",
                         *(f"score_{n}" for n in labels)])
        for row, values in zip(chosen.itertuples(), scores.tolist(), strict=True):
            writer.writerow([row.sentence_id, row.source, row.document_id,
                             row.stratum.split(":", 1)[1], *(f"{v:.3f}" for v in values)])
    os.chmod(tmp, 0o644)  # mkstemp makes it private; this is a data file of the project
    os.replace(tmp, out)
    side = sidecar(out)
    side.with_suffix(".tmp").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    side.with_suffix(".tmp").replace(side)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=paths.ACCURATE_DIR)
    parser.add_argument("--student", type=Path, default=paths.CHAMPION_DIR)
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--per-document", type=int, default=40)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    t0 = time.perf_counter()
    pool = read_pools()
    if pool.empty:
        print(f"no pool found under {paths.SHARED / 'corpus'}: nothing to do", file=sys.stderr)
        return 1
    print(f"{len(pool)} pool sentences ({time.perf_counter() - t0:.0f} s to read and split)")
    table, excluded = candidates(pool)
    for why, n in excluded.items():
        print(f"  left out: {n:>7} {why}")
    print(f"{len(table)} candidate sentences")

    student = Predictor.load(args.student)
    t0 = time.perf_counter()
    fast = student.scores(list(table["text"]))
    print(f"student {args.student}: {len(table) / (time.perf_counter() - t0):.0f} sentences/s")
    table["stratum"] = strata(fast, student.thresholds, student.labels, list(table["source"]))
    chosen = draw(table, args.n, args.per_document, args.seed)

    teacher = json.loads((args.teacher / "metadata.json").read_text(encoding="utf-8"))
    scores, seconds = teacher_scores(args.teacher, list(chosen["text"]))
    rate = len(chosen) / seconds
    print(f"teacher {args.teacher}: {len(chosen)} sentences encoded in {seconds:.0f} s "
          f"({rate:.1f}/s)")
    labels = teacher["labels"]
    meta = {
        "what": "scores of the accurate tier (the teacher) on unlabeled pool sentences; "
                "training only, never scored; the text is re-split from ../shared/corpus",
        "created": datetime.date.today().isoformat(),
        "labels": labels,
        "thresholds": dict(zip(labels, teacher["thresholds"], strict=True)),
        "teacher": {k: teacher.get(k) for k in ("experiment", "metrics", "data_digest",
                                                 "schema_digest", "encoders", "sha256")},
        "student_for_strata": {k: student.metadata.get(k)
                               for k in ("experiment", "data_digest", "sha256")},
        "pool_sentences": len(pool),
        "left_out": excluded,
        "candidates": len(table),
        "sampling": {"n": args.n, "seed": args.seed, "per_document": args.per_document,
                     "strata": {k: int(v) for k, v in
                                chosen["stratum"].value_counts().sort_index().items()}},
        "rows": len(chosen),
        "rounding": 3,
        "teacher_seconds": round(seconds), "teacher_sentences_per_second": round(rate, 1),
    }
    write(args.out, chosen, scores, labels, meta)
    print(f"wrote {len(chosen)} soft labels ({dict(Counter(chosen['source']))}) to {args.out} "
          f"({args.out.stat().st_size / 1e6:.2f} MB) and {sidecar(args.out).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
