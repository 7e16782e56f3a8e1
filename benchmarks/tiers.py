"""Both tiers side by side: sentences/s end to end, cold start and peak memory of `predict`.

For each model directory (default: ``models/champion``, the fast tier, and ``models/accurate``,
the accurate tier, when they exist), on the same ``--sentences`` distinct real sentences (the
UN General Debate speeches when ``../shared/corpus/`` has them, else the labeled bank):

- end to end: ``newsevents predict --unit sentence`` on a file of those sentences, as a fresh
  process (read, predict, write; one process, the default for inputs under 2 MiB);
- the bare model: ``Predictor.scores`` on the same sentences, already loaded;
- cold start: ``newsevents predict`` on one seed article, median of 3 fresh processes;
- peak RSS of the end-to-end run.

    python benchmarks/tiers.py [--model DIR ...] [--sentences 2000]

Figures are printed, not asserted; the load average comes first (other work slows them all).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from predict_speed import BIN, corpus_sentences, median_wall, run_for_rss

from newsevents import paths
from newsevents.corpus import split_article
from newsevents.predict import Predictor


def real_sentences(n: int, seed: int = 7) -> tuple[str, list[str]]:
    """``n`` distinct sentences: sampled from the UN speeches if present, else the bank."""
    if paths.UN_DEBATE.is_file():
        found: dict[str, None] = {}
        with gzip.open(paths.UN_DEBATE, "rt", encoding="utf-8") as handle:
            for i, line in enumerate(handle):
                if i % 7 == 0:  # a spread of years and countries, read quickly
                    record = json.loads(line)
                    found.update((s.text, None) for s in split_article(record["text"]))
                if len(found) > 20 * n:
                    break
        pool, source = list(found), "UN General Debate"
    else:
        pool, source = corpus_sentences(), "labeled bank"
    random.Random(seed).shuffle(pool)
    return source, [s.replace("\n", " ") for s in pool[:n]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--sentences", type=int, default=2000)
    args = parser.parse_args()
    models = args.model or [d for d in (paths.CHAMPION_DIR, paths.ACCURATE_DIR) if d.is_dir()]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    source, sentences = real_sentences(args.sentences)
    words = sum(len(s.split()) for s in sentences) / len(sentences)
    print(f"{len(sentences)} distinct {source} sentences, {words:.0f} words on average")
    article = sorted(paths.RAW.glob("*.txt"))[0]
    print(f"{'model':<28} {'end-to-end/s':>12} {'bare/s':>8} {'cold start s':>12} "
          f"{'peak RSS MiB':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sentences.txt"
        src.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        for model in models:
            predictor = Predictor.load(model)
            t0 = time.perf_counter()
            predictor.scores(sentences)
            bare = len(sentences) / (time.perf_counter() - t0)
            command = [str(BIN / "newsevents"), "predict", str(src), "--unit", "sentence",
                       "--model", str(model), "-o", str(Path(tmp) / "out.jsonl")]
            wall, rss, worker = run_for_rss(command)
            cold, _ = median_wall([str(BIN / "newsevents"), "predict", str(article), "--model",
                                   str(model), "-o", str(Path(tmp) / "one.jsonl")], runs=3)
            name = f"{model.name} ({predictor.metadata.get('experiment', '?')})"
            print(f"{name:<28} {len(sentences) / wall:>12.0f} {bare:>8.0f} {cold:>12.2f} "
                  f"{max(rss, worker):>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
