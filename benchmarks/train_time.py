"""How long `make train` takes, and where the time goes (fitting vs MLflow logging).

Runs every default experiment exactly as `newsevents train` does, against a throw-away MLflow
store in a temporary directory (the project's store and models/ are left alone), and prints
per-experiment seconds for cross-validation, the final fit, the export (model directory with its
numpy scorer check, plots and tables) and MLflow logging.

    python benchmarks/train_time.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

START = time.perf_counter()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="newsevents-bench-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        os.chdir(tmp)
        from newsevents.config import default_configs
        from newsevents.train import train

        imported = time.perf_counter() - START
        configs = default_configs()
        t0 = time.perf_counter()
        results = train(configs, export=False)
        wall = time.perf_counter() - t0
    print(f"\n{'experiment':<30} {'CV s':>6} {'fit s':>6} {'export s':>8} {'log s':>6} "
          f"{'total s':>8}")
    for r in results:
        s = r.seconds
        print(f"{r.name:<30} {s['cv']:>6.1f} {s['fit']:>6.1f} {s['export']:>8.1f} "
              f"{s['log']:>6.1f} {s['total']:>8.1f}")
    cv, fit, export, log = (sum(r.seconds[k] for r in results)
                            for k in ("cv", "fit", "export", "log"))
    print(f"{'sum':<30} {cv:>6.1f} {fit:>6.1f} {export:>8.1f} {log:>6.1f} "
          f"{cv + fit + export + log:>8.1f}")
    print(f"imports {imported:.1f} s; loading the data once {results[0].seconds['load']:.1f} s; "
          f"train() wall {wall:.1f} s (includes loading, MLflow setup and promotion); "
          f"process total {time.perf_counter() - START:.1f} s; "
          f"{os.cpu_count()} CPUs", file=sys.stdout)


if __name__ == "__main__":
    main()
