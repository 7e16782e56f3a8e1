"""Learning curve: what more labeled pool sentences are worth, measured on the test split.

The experiment is trained on the seed and authored sentences plus 0, 25, 50 and 100 % of the
training documents drawn from the real pools (whole documents, nested: each step adds to the
previous one), and each model is scored on the held-out test split. The test split is used for
this report only; nothing here picks a model or a threshold.

>>> config = load_config("experiments/08-tfidf-embed-lexicon-logreg.yaml")  # doctest: +SKIP
>>> table = run_learning_curve(config)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from newsevents.config import BUNDLED, ExperimentConfig
from newsevents.dataset import ANNOTATED, AUTHORED, SEED, TEST, TRAIN, leaking_rows, multi_hot
from newsevents.evaluate import decide, fit_with_thresholds, label_metrics
from newsevents.models import build_pipeline
from newsevents.train import load_training_table

FRACTIONS = (0.0, 0.25, 0.5, 1.0)


@dataclass
class CurvePoint:
    """One step of the curve: how much pool data went in and the test scores that came out."""

    fraction: float
    n_documents: int
    n_sentences: int
    metrics: dict[str, float]


def _pool_documents(train: pd.DataFrame) -> list[tuple[str, str]]:
    pooled = train[~train["source"].isin([SEED, ANNOTATED, AUTHORED])]
    return sorted(set(zip(pooled["source"], pooled["article_id"], strict=True)))


def learning_curve(config: ExperimentConfig, fractions: tuple[float, ...] = FRACTIONS,
                   progress: bool = True) -> list[CurvePoint]:
    """Train ``config`` on growing shares of the pool training documents; score the test split."""
    if config.data.source != BUNDLED:
        raise ValueError(f"{config.path}: the learning curve needs the bundled data")
    table, schema, _ = load_training_table(config)
    table = table[~leaking_rows(table)]
    test = table[table["split"] == TEST]
    if test.empty:
        raise ValueError("no test split (data/splits/test-documents.csv lists no labeled "
                         "documents)")
    train = table[table["split"].isin([TRAIN] + ([AUTHORED] if config.data.authored else []))]
    documents = _pool_documents(train)
    # One shuffled order, cut at each fraction: each step's documents include the previous.
    order = np.random.default_rng(config.seed).permutation(len(documents))
    keys = list(zip(train["source"], train["article_id"], strict=True))
    pool_documents = set(documents)
    is_pool = np.array([k in pool_documents for k in keys])
    y_test = multi_hot(test, schema)
    points = []
    for fraction in fractions:
        chosen = {documents[i] for i in order[:round(fraction * len(documents))]}
        keep = ~is_pool | np.array([k in chosen for k in keys])
        part = train[keep]
        started = time.perf_counter()
        with threadpool_limits(limits=1):
            # Thresholds much as the champion gets them: from out-of-fold scores over as many
            # grouped folds as its cross-validation (two inner folds leave them noisy).
            model, thresholds = fit_with_thresholds(build_pipeline(config, schema), part,
                                                    schema, config.evaluation.folds,
                                                    config.seed)
        pred = decide(model.predict_proba(list(test["text"])), thresholds)
        metrics = label_metrics(y_test, pred, schema.names, schema.multiclass)
        points.append(CurvePoint(fraction, len(chosen), len(part), metrics))
        if progress:
            print(f"{fraction:>5.0%} of pool documents ({len(chosen)}), {len(part)} training "
                  f"sentences: test macro-F1 {metrics['macro_f1']:.3f} "
                  f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    return points


def curve_table(points: list[CurvePoint], labels: list[str]) -> pd.DataFrame:
    """One row per step: fraction, documents, sentences, per-label and macro test F1."""
    return pd.DataFrame([{
        "pool_fraction": p.fraction, "pool_documents": p.n_documents,
        "training_sentences": p.n_sentences,
        **{f"f1_{n}": round(p.metrics[f"f1_{n}"], 4) for n in labels},
        "macro_f1": round(p.metrics["macro_f1"], 4)} for p in points])


def plot_curve(frame: pd.DataFrame, labels: list[str], title: str):  # -> Figure
    """Test F1 per label (and macro) against the share of pool documents used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    x = frame["training_sentences"]
    for name in labels:
        ax.plot(x, frame[f"f1_{name}"], marker="o", label=name)
    ax.plot(x, frame["macro_f1"], marker="s", color="black", linewidth=2, label="macro")
    for xi, fraction in zip(x, frame["pool_fraction"], strict=True):
        ax.annotate(f"{fraction:.0%}", (xi, 0.02), ha="center", fontsize=8, color="grey")
    ax.set_xlabel("training sentences (seed + authored + pool share shown at the bottom)")
    ax.set_ylabel("F1 on the held-out test split")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title}: learning curve", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def write_curve(points: list[CurvePoint], labels: list[str], title: str, directory: Path
                ) -> pd.DataFrame:
    """Save ``learning_curve.csv`` and ``learning_curve.png`` in ``directory``."""
    import matplotlib.pyplot as plt

    frame = curve_table(points, labels)
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / "learning_curve.csv", index=False)
    fig = plot_curve(frame, labels, title)
    fig.savefig(directory / "learning_curve.png", dpi=110)
    plt.close(fig)
    return frame


def run_learning_curve(config: ExperimentConfig, fractions: tuple[float, ...] = FRACTIONS
                       ) -> pd.DataFrame:
    """Compute the curve, log it to MLflow as a run of its own, and return its table."""
    import tempfile

    from newsevents import tracking

    tracking.setup()
    points = learning_curve(config, fractions)
    labels = [k[3:] for k in points[0].metrics if k.startswith("f1_")]
    with tempfile.TemporaryDirectory(prefix="newsevents-curve-") as tmp:
        frame = write_curve(points, labels, config.name, Path(tmp))
        tracking.log_curve(
            run_name=f"learning-curve {config.name}", params=config.flat_params(),
            tags={"config_path": config.path, "scored_on": "held-out test split"},
            steps=[(p.n_sentences, {"test_macro_f1": p.metrics["macro_f1"],
                                    **{f"test_f1_{n}": p.metrics[f"f1_{n}"] for n in labels},
                                    "pool_fraction": p.fraction}) for p in points],
            artifact_dir=Path(tmp))
    return frame
