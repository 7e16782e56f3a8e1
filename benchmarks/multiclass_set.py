"""A multiclass labeled set built at run time from the project's own labeled sentences.

Sentences with exactly one of the project's labels, or none, become one class each: the label,
or ``none`` (sentences with two labels are left out). The source is the real pool sentences
(``data/annotations/pools/*.csv``, without the documents of the held-out test split), or, when
those are absent, the authored bank. Labels in the pools may still change, so the set is written
to a directory the caller chooses (a temporary one) at run time and never committed.

Used by ``byo_train_time.py`` and ``byo_families.py``; also a script:

    python benchmarks/multiclass_set.py OUT_DIR [--limit N] [--no-documents]
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from newsevents import paths
from newsevents.dataset import read_test_documents
from newsevents.labels import load_schema

NONE = "none"  # the class of sentences with none of the project's labels


@dataclass(frozen=True)
class MulticlassSet:
    data: Path  # CSV: text, labels (one class), and document_id unless left out
    schema: Path  # the multiclass schema YAML
    origin: str  # which files the sentences came from
    n_sentences: int
    class_counts: dict[str, int]


def _read_pools(pools: Path, test_documents: Path | None) -> pd.DataFrame:
    held_out = read_test_documents(test_documents)
    frames = []
    for path in sorted(pools.glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame = frame[[(pool, doc) not in held_out
                       for pool, doc in zip(frame["source"], frame["document_id"], strict=True)]]
        frames.append(frame.assign(document_id=path.stem + "/" + frame["document_id"]))
    return pd.concat(frames, ignore_index=True)


def build(out_dir: Path, pools: Path = paths.POOL_ANNOTATIONS,
          test_documents: Path | None = paths.TEST_DOCUMENTS, limit: int | None = None,
          documents: bool = True, seed: int = 13) -> MulticlassSet:
    """Write ``multiclass.csv`` and ``multiclass-labels.yaml`` into ``out_dir``.

    ``limit``: keep a seeded random sample of that many sentences. ``documents``: keep the
    ``document_id`` column (cross-validation then keeps documents whole).
    """
    schema = load_schema()
    if pools.is_dir() and any(pools.glob("*.csv")):
        frame, origin = _read_pools(pools, test_documents), f"{pools}/*.csv"
    else:
        frame = pd.read_csv(paths.AUTHORED_ANNOTATIONS, dtype=str, keep_default_na=False)
        frame, origin, documents = frame.assign(document_id=""), str(
            paths.AUTHORED_ANNOTATIONS), False
    parsed = [schema.parse(cell) for cell in frame["labels"]]
    keep = [len(labels) <= 1 for labels in parsed]
    table = pd.DataFrame({
        "text": frame["text"][keep].to_numpy(),
        "labels": [labels[0] if labels else NONE for labels, k in zip(parsed, keep, strict=True)
                   if k],
        "document_id": frame["document_id"][keep].to_numpy(),
    })
    if limit is not None and limit < len(table):
        table = table.sample(limit, random_state=seed).reset_index(drop=True)
    if not documents:
        table = table.drop(columns="document_id")
    out_dir.mkdir(parents=True, exist_ok=True)
    data, schema_file = out_dir / "multiclass.csv", out_dir / "multiclass-labels.yaml"
    table.to_csv(data, index=False, quoting=csv.QUOTE_MINIMAL)
    schema_file.write_text(yaml.safe_dump({
        "name": f"{schema.name}-one-label", "type": "multiclass",
        "labels": [*({"name": label.name, "definition": label.definition,
                      "keywords": list(label.keywords)} for label in schema.labels),
                   {"name": NONE, "definition": "None of the other labels."}],
    }, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return MulticlassSet(data, schema_file, origin, len(table),
                         table["labels"].value_counts().to_dict())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--pools", type=Path, default=paths.POOL_ANNOTATIONS)
    parser.add_argument("--test-documents", type=Path, default=paths.TEST_DOCUMENTS)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--no-documents", action="store_true")
    args = parser.parse_args()
    built = build(args.out_dir, args.pools, args.test_documents, args.limit,
                  not args.no_documents)
    print(f"{built.data}: {built.n_sentences} sentences from {built.origin}; "
          f"classes {built.class_counts}; schema {built.schema}")


if __name__ == "__main__":
    main()
