"""Which sentence splitter segments the bundled corpus best, and how fast is each?

Accuracy: the reviewed segmentation of the five seed articles (the sentence ids in
data/annotations/seed.csv) is the reference; a splitter scores the share of reference
sentences it reproduces exactly (recall) and the share of its sentences that are in the
reference (precision). Cleaning and fragment repair are the same for every splitter.
Note the reference was reviewed starting from nupunkt's output, which favours it on ties.

Speed: characters/s on the seed text repeated to ~1 MB, split block by block as
`split_article` does. If ../shared/corpus/un-general-debate is present, also on 200 speeches.

    python benchmarks/splitters.py
"""

from __future__ import annotations

import gzip
import json
import time

import pandas as pd

from newsevents import paths
from newsevents.corpus import SPLITTERS, split_article


def seed_texts() -> dict[str, str]:
    manifest = pd.read_csv(paths.MANIFEST, dtype=str)
    return {row.article_id: (paths.MANIFEST.parent / row.file).read_text(encoding="utf-8")
            for row in manifest.itertuples()}


def accuracy(name: str, texts: dict[str, str], reference: set[str]) -> tuple[float, float]:
    got = {s.id for aid, text in texts.items() for s in split_article(text, aid, splitter=name)}
    return len(got & reference) / len(got), len(got & reference) / len(reference)


def speed(name: str, texts: list[str]) -> float:
    chars = sum(map(len, texts))
    start = time.perf_counter()
    for text in texts:
        split_article(text, splitter=name)
    return chars / (time.perf_counter() - start)


def un_speeches(n: int = 200) -> list[str]:
    if not paths.UN_DEBATE.exists():
        return []
    with gzip.open(paths.UN_DEBATE, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for _, line in zip(range(n), handle, strict=False)]


def main() -> None:
    texts = seed_texts()
    reference = set(pd.read_csv(paths.SEED_ANNOTATIONS, dtype=str)["sentence_id"])
    big = list(texts.values()) * max(1, 1_000_000 // sum(map(len, texts.values())))
    speeches = un_speeches()
    print(f"reference: {len(reference)} sentences of {len(texts)} seed articles; speed on "
          f"{sum(map(len, big)) / 1e6:.1f} MB of seed text"
          + (f" and {sum(map(len, speeches)) / 1e6:.1f} MB of UN speeches" if speeches
             else " (UN corpus not found: skipped)"))
    print(f"{'splitter':<10} {'precision':>9} {'recall':>7} {'seed chars/s':>13} "
          f"{'UN chars/s':>11}")
    for name in SPLITTERS:
        p, r = accuracy(name, texts, reference)
        # pysbd is quadratic on long blocks: only time it on the short seed text.
        un = speed(name, speeches) if speeches and name != "pysbd" else float("nan")
        print(f"{name:<10} {p:>9.3f} {r:>7.3f} {speed(name, big):>13,.0f} {un:>11,.0f}")


if __name__ == "__main__":
    main()
