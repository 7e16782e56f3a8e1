"""Reference sentence vectors from sentence-transformers (torch, fp32), to check the ONNX builds.

Build time only, in a separate venv with torch (never the project's runtime venv)::

    python3 -m venv /tmp/ref-venv && V=/tmp/ref-venv/bin
    $V/pip install torch==2.13.0     # first: the CPU wheel, not CUDA torch
    $V/pip install sentence-transformers
    $V/python scripts/encoder_reference.py --weights DIR --out ref.npz [--sentences 300]
    $V/python scripts/encoder_reference.py --weights DIR --out tests/unit/mpnet-reference.npz \
        --sentences 8

``DIR`` is an unzipped sentence-transformers model directory with the pinned files (for
example from ``benchmarks/encoder_variants.py``'s extraction, or the reassembled mpnet zip).
Sentences: a fixed, seeded sample of the project's labeled sentences. The ``.npz`` holds
``texts`` (unicode) and ``vectors`` (float32, unit length); no pickle.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sample_sentences(n: int, seed: int = 0) -> list[str]:
    texts = []
    for name in ("seed.csv", "authored.csv"):
        with (REPO / "data" / "annotations" / name).open(newline="", encoding="utf-8") as f:
            texts += [row["text"] for row in csv.DictReader(f)]
    random.Random(seed).shuffle(texts)
    return texts[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sentences", type=int, default=300)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"  # before the import: never reach a hub

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    texts = sample_sentences(args.sentences)
    model = SentenceTransformer(str(args.weights.resolve()), device="cpu")
    t0 = time.perf_counter()
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    seconds = time.perf_counter() - t0
    np.savez_compressed(args.out, texts=np.array(texts), vectors=vectors.astype(np.float32))
    print(f"{len(texts)} sentences in {seconds:.1f} s ({len(texts) / seconds:.1f}/s, torch "
          f"{torch.__version__}, max_seq_length {model.max_seq_length}) -> {args.out}")


if __name__ == "__main__":
    main()
