"""How long one experiment on a user's own labeled file takes, and where the time goes.

The file: 1,350 real sentences with one class each (five classes, see ``multiclass_set.py``),
without a document column unless ``--documents``; the experiment: TF-IDF word n-grams + static
embeddings + logistic regression. It runs exactly as ``newsevents train`` does, against a
throw-away MLflow store and models directory in a temporary directory (the project's store and
models/ are left alone), and prints seconds for imports, loading, cross-validation, the final
fit, the export (model directory with its numpy scorer check, plots and tables), MLflow logging
and registration, and copying the champion out of the registry.

    python benchmarks/byo_train_time.py [--documents] [--multilabel] [--sentences N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1350)
    parser.add_argument("--documents", action="store_true",
                        help="keep the document column (grouped CV by document)")
    parser.add_argument("--multilabel", action="store_true",
                        help="train the same sentences under a multi-label schema")
    parser.add_argument("--pools", type=Path, help="pool annotations (default: the project's)")
    parser.add_argument("--test-documents", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newsevents-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.chdir(tmp)
        import yaml

        from newsevents import paths

        # Exports go to the temporary directory, not the project's models/.
        paths.MODELS = tmp / "models"
        paths.CHAMPION_DIR = paths.MODELS / "champion"
        from multiclass_set import build

        from newsevents import tracking
        from newsevents.config import load_config
        from newsevents.train import model_home, train

        imported = time.perf_counter() - START
        built = build(tmp / "data", args.pools or paths.POOL_ANNOTATIONS,
                      args.test_documents or paths.TEST_DOCUMENTS, args.sentences,
                      args.documents)
        if args.multilabel:
            schema = yaml.safe_load(built.schema.read_text(encoding="utf-8"))
            built.schema.write_text(yaml.safe_dump({**schema, "type": "multilabel"}))
        config = tmp / "experiment.yaml"
        config.write_text(yaml.safe_dump({
            "name": "byo-tfidf-embed-logreg",
            "data": {"source": str(built.data), "schema": str(built.schema)},
            "features": [{"type": "tfidf_word", "min_df": 2}, {"type": "embedding"}],
            "model": {"type": "logreg"},
        }))
        t0 = time.perf_counter()
        [result] = train([load_config(config)], export=False)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        target = model_home(result.schema)[1]
        tracking.export_champion(target, result.model_name)
        t_publish = time.perf_counter() - t0
        wall = time.perf_counter() - START
    s = result.seconds
    m = result.metrics
    other = t_train - s["load"] - s["total"]
    print(f"\n{built.n_sentences} sentences from {built.origin} "
          f"({'documents kept' if args.documents else 'no document column'}; "
          f"{result.schema.type}; grouped CV by {result.cv_unit}, "
          f"{int(m['n_cv_units'])} units): macro-F1 {m['macro_f1']:.3f}"
          + (f", accuracy {m['accuracy']:.3f}" if "accuracy" in m else ""))
    rows = [("imports (newsevents, scikit-learn, MLflow)", imported),
            ("load and check the labeled file", s["load"]),
            ("cross-validation", s["cv"]),
            ("final fit", s["fit"]),
            ("export (model dir, numpy scorer check, plots)", s["export"]),
            ("MLflow: log run, model and register", s["log"]),
            ("MLflow: store set-up, promotion", other),
            ("champion copied to models/<name>/champion", t_publish)]
    for name, seconds in rows:
        print(f"  {name:<48} {seconds:>6.1f} s")
    print(f"  {'total (process, as `newsevents train`)':<48} {wall:>6.1f} s  "
          f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
