"""Every model family on a multiclass set built from the project's real labeled sentences.

The set (see ``multiclass_set.py``): the pool sentences with exactly one label or none, as five
classes (the four labels and ``none``), documents of the held-out test split left out; grouped
cross-validation keeps documents whole. Each family runs as ``newsevents train`` runs it,
against a throw-away MLflow store in a temporary directory (the project's store and models/
are left alone); the script prints accuracy, macro-F1 and seconds per family.

    python benchmarks/byo_families.py [--pools DIR] [--test-documents FILE] [--sentences N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TFIDF = {"type": "tfidf_word", "min_df": 2}
EXPERIMENTS = [
    ("prior", [], {"type": "prior"}),
    ("lexicon", [], {"type": "lexicon"}),
    ("tfidf-logreg", [TFIDF], {"type": "logreg"}),
    ("tfidf-linearsvc", [TFIDF], {"type": "linearsvc"}),
    ("tfidf-cnb", [TFIDF], {"type": "complementnb"}),
    ("tfidf-sgd", [TFIDF], {"type": "sgd"}),
    ("tfidf-embed-lexicon-logreg", [TFIDF, {"type": "embedding"}, {"type": "lexicon"}],
     {"type": "logreg", "params": {"C": 8.0}}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=Path, help="pool annotations (default: the project's)")
    parser.add_argument("--test-documents", type=Path)
    parser.add_argument("--sentences", type=int, help="a random sample of this many")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newsevents-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.chdir(tmp)
        import yaml
        from multiclass_set import build

        from newsevents import paths
        from newsevents.config import load_config
        from newsevents.train import train

        pools = args.pools or paths.POOL_ANNOTATIONS
        if not pools.is_dir():
            print(f"skipped: no pool annotations in {pools}")
            return
        built = build(tmp / "data", pools, args.test_documents or paths.TEST_DOCUMENTS,
                      args.sentences)
        configs = []
        for name, features, model in EXPERIMENTS:
            path = tmp / f"{name}.yaml"
            path.write_text(yaml.safe_dump({
                "name": name, "features": features, "model": model,
                "data": {"source": str(built.data), "schema": str(built.schema)}}))
            configs.append(load_config(path))
        t0 = time.perf_counter()
        results = train(configs, export=False)
        wall = time.perf_counter() - t0
    m = results[0].metrics
    print(f"\n{built.n_sentences} sentences from {built.origin}, classes {built.class_counts}; "
          f"grouped 5-fold CV by {results[0].cv_unit} ({int(m['n_cv_units'])} units)")
    print(f"{'experiment':<28} {'accuracy':>8} {'macro-F1 [95% CI]':<20} {'CV s':>6} "
          f"{'fit s':>6} {'total s':>8}")
    for r in results:
        m, s = r.metrics, r.seconds
        ci = f"{m['macro_f1']:.3f} [{m['macro_f1_ci_low']:.2f},{m['macro_f1_ci_high']:.2f}]"
        print(f"{r.name:<28} {m['accuracy']:>8.3f} {ci:<20} {s['cv']:>6.1f} {s['fit']:>6.1f} "
              f"{s['total']:>8.1f}")
    print(f"train() wall {wall:.1f} s (loading once: {results[0].seconds['load']:.1f} s); "
          f"{os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
