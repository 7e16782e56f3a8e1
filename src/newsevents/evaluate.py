"""Honest evaluation: grouped CV, thresholds, metrics, CIs, plots.

Rules this module keeps:

- only real sentences are ever scored; authored (and soft-labeled) sentences are added to
  training folds;
- a document and its near-duplicates (a fold unit) never straddle a split (see
  :mod:`newsevents.groups`);
- per-label decision thresholds are chosen on out-of-fold predictions of the *training* part of
  each fold (an inner cross-validation), never on the fold being scored;
- a multiclass schema has no thresholds: each sentence gets its highest-scoring label, and the
  metrics add accuracy and a confusion matrix over the labels.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import precision_recall_fscore_support
from sklearn.pipeline import Pipeline

from newsevents.dataset import AUTHORED, SOFT, multi_hot, sample_weights, target_matrix
from newsevents.groups import group_folds
from newsevents.labels import LabelSchema

DEFAULT_THRESHOLD = 0.5
# Worker processes take seconds to start and import the stack on a small machine (over ten when
# it is busy): folds go to them only when the ones left would take longer than this in this
# process (see _run_folds). Results are the same either way.
PARALLEL_MIN_SECONDS = 10.0


# --------------------------------------------------------------------------- thresholds

def choose_thresholds(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per label, the score cut that maximises F1 on out-of-fold predictions.

    The cut sits halfway between the chosen score and the next lower one, so it does not sit
    exactly on a training sentence's score. A label with no positives keeps 0.5.
    """
    thresholds = np.full(y_true.shape[1], DEFAULT_THRESHOLD)
    for j in range(y_true.shape[1]):
        y, s = y_true[:, j], scores[:, j]
        if y.sum() == 0:
            continue
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(y[order])
        k = np.arange(1, len(s) + 1)
        f1 = 2 * tp / (k + y.sum())
        # Only cut between distinct scores.
        distinct = np.r_[s[order][1:] < s[order][:-1], True]
        best = int(np.argmax(np.where(distinct, f1, -1)))
        upper = s[order][best]
        lower = s[order][best + 1] if best + 1 < len(s) else 0.0
        thresholds[j] = (upper + lower) / 2
    return thresholds


def fit(pipeline: Pipeline, texts: list[str], y: np.ndarray, weights: np.ndarray | None
        ) -> Pipeline:
    """A fitted copy of ``pipeline`` (its head takes the per-row ``weights``, when given)."""
    params = {} if weights is None else {"classifier__sample_weight": weights}
    return clone(pipeline).fit(texts, y, **params)


def oof_scores(pipeline: Pipeline, texts: list[str], y: np.ndarray, table: pd.DataFrame,
               n_splits: int, seed: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold scores for every row of ``table`` (grouped, unstratified folds)."""
    scores = np.zeros(y.shape, dtype=np.float64)
    for train, test in group_folds(table, n_splits, seed, stratify=False):
        model = fit(pipeline, [texts[i] for i in train], y[train],
                     None if weights is None else weights[train])
        scores[test] = model.predict_proba([texts[i] for i in test])
    return scores


def fit_with_thresholds(pipeline: Pipeline, table: pd.DataFrame, schema: LabelSchema,
                        inner_folds: int, seed: int) -> tuple[Pipeline, np.ndarray | None]:
    """Fit on all of ``table``; thresholds from an inner grouped CV on the same rows.

    Thresholds are tuned on the out-of-fold scores of real hand-labeled sentences only:
    authored ones help the models learn but are far richer in positives than real text, and
    would pull every threshold down; soft-labeled ones (split ``soft``) train but the
    thresholds answer to hand labels. A multiclass schema has no thresholds (``None``): no
    inner CV is run.
    """
    texts, y, weights = list(table["text"]), target_matrix(table, schema), sample_weights(table)
    if schema.multiclass:
        return fit(pipeline, texts, y, weights), None
    oof = oof_scores(pipeline, texts, y, table, inner_folds, seed, weights)
    real = ~table["split"].isin([AUTHORED, SOFT]).to_numpy() if "split" in table else \
        np.ones(len(table), dtype=bool)
    thresholds = choose_thresholds(multi_hot(table[real], schema), oof[real])
    return fit(pipeline, texts, y, weights), thresholds


def decide(scores: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """0/1 predictions: scores at or above their label's threshold, or, with no thresholds
    (a multiclass model), the highest-scoring label of each row."""
    if thresholds is None:
        best = scores.argmax(axis=1)
        return (np.arange(scores.shape[1]) == best[:, None]).astype(np.int8)
    return (scores >= thresholds).astype(np.int8)


# --------------------------------------------------------------------------- metrics

def label_metrics(y_true: np.ndarray, y_pred: np.ndarray, names: list[str],
                  multiclass: bool = False) -> dict[str, float]:
    """Per-label precision/recall/F1/support plus micro and macro F1 (and, for ``multiclass``
    one-hot rows, accuracy: the share of sentences whose one label is right)."""
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    out: dict[str, float] = {}
    for j, name in enumerate(names):
        out.update({f"precision_{name}": float(p[j]), f"recall_{name}": float(r[j]),
                    f"f1_{name}": float(f[j]), f"support_{name}": float(s[j])})
    micro = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    out["micro_f1"] = float(micro[2])
    out["macro_f1"] = float(np.mean(f))
    if multiclass:
        out["accuracy"] = float(np.mean((y_true == y_pred).all(axis=1)))
    return out


def _f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float), where=denom > 0)


def bootstrap_macro_f1(y_true: np.ndarray, preds: list[np.ndarray], groups: np.ndarray,
                       n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of macro-F1 by resampling fold units (cluster bootstrap).

    Each resample's macro-F1 is averaged over the repeats in ``preds``.
    """
    if n_boot == 0:
        return float("nan"), float("nan")
    codes, group_index = np.unique(groups, return_inverse=True)
    # Per group, per repeat, per label counts of tp/fp/fn; a resample is a weighted sum.
    counts = []
    for pred in preds:
        per = []
        for kind in ((pred == 1) & (y_true == 1), (pred == 1) & (y_true == 0),
                     (pred == 0) & (y_true == 1)):
            m = np.zeros((len(codes), y_true.shape[1]))
            np.add.at(m, group_index, kind.astype(float))
            per.append(m)
        counts.append(per)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(codes), np.full(len(codes), 1 / len(codes)), size=n_boot)
    stats = np.zeros(n_boot)
    for tp, fp, fn in counts:
        stats += _f1_from_counts(weights @ tp, weights @ fp, weights @ fn).mean(axis=1)
    stats /= len(counts)
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


# --------------------------------------------------------------------------- cross-validation

@dataclass
class Evaluation:
    """Everything one experiment's cross-validation produced, on real sentences only."""

    table: pd.DataFrame  # the scored rows
    y_true: np.ndarray
    scores: list[np.ndarray]  # per repeat: out-of-fold scores
    preds: list[np.ndarray]  # per repeat: thresholded predictions
    metrics: dict[str, float] = field(default_factory=dict)
    fold_sizes: list[tuple[int, int]] = field(default_factory=list)


def fold_training_table(real: pd.DataFrame, extra: pd.DataFrame, train: np.ndarray,
                        test: np.ndarray) -> pd.DataFrame:
    """A fold's training rows: ``real`` rows ``train`` and the ``extra`` rows that share no
    fold unit with a test row (else a copied or reworded quote would leak)."""
    held_out = set(real["unit_id"].iloc[test])
    return pd.concat([real.iloc[train], extra[~extra["unit_id"].isin(held_out)]],
                     ignore_index=True)


def _run_fold(pipeline: Pipeline, real: pd.DataFrame, extra: pd.DataFrame, train: np.ndarray,
              test: np.ndarray, schema: LabelSchema, inner_folds: int, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    train_table = fold_training_table(real, extra, train, test)
    with warnings.catch_warnings():
        # A label absent from a small training fold is expected; OvR then predicts a constant.
        warnings.filterwarnings("ignore", message="Label not .* is present in all training")
        model, thresholds = fit_with_thresholds(pipeline, train_table, schema, inner_folds, seed)
    scores = model.predict_proba(list(real["text"].iloc[test]))
    return test, scores, decide(scores, thresholds)


def _run_folds(pipeline: Pipeline, real: pd.DataFrame, extra: pd.DataFrame,
               splits: list[tuple[np.ndarray, np.ndarray]], schema: LabelSchema,
               inner_folds: int, seed: int, n_jobs: int
               ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Fold results in order. The first fold runs in this process; the rest go to ``n_jobs``
    worker processes only when, at the first fold's pace, they would take long enough to pay
    for starting them (:data:`PARALLEL_MIN_SECONDS`). The first fold's pace includes one-off
    loading and caching, so it errs towards workers, which start once per process and are
    reused by the next experiments."""
    def run(split: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _run_fold(pipeline, real, extra, *split, schema, inner_folds, seed)

    started = time.perf_counter()
    yield from map(run, splits[:1])
    rest = splits[1:]
    if n_jobs != 1 and len(rest) > 1 and \
            (time.perf_counter() - started) * len(rest) >= PARALLEL_MIN_SECONDS:
        yield from Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_run_fold)(pipeline, real, extra, train, test, schema, inner_folds, seed)
            for train, test in rest)
    else:
        yield from map(run, rest)


def cross_validate(pipeline: Pipeline, real: pd.DataFrame, extra: pd.DataFrame,
                   schema: LabelSchema, folds: int, repeats: int, inner_folds: int, seed: int,
                   n_boot: int = 1000, n_jobs: int = 1,
                   progress: Callable[[int], None] | None = None) -> Evaluation:
    """Repeated grouped K-fold on ``real`` (documents and near-duplicates kept whole).

    ``extra`` rows (authored and soft-labeled sentences) join every training fold, except those
    that share a fold unit with that fold's test rows, and are never scored.
    """
    y = multi_hot(real, schema)
    jobs = [(r, train, test) for r in range(repeats)
            for train, test in group_folds(real, folds, seed + r)]
    results = _run_folds(pipeline, real, extra, [(train, test) for _, train, test in jobs],
                         schema, inner_folds, seed, n_jobs)

    scores = [np.zeros(y.shape) for _ in range(repeats)]
    preds = [np.zeros(y.shape, dtype=np.int8) for _ in range(repeats)]
    fold_sizes = []
    for done, ((repeat, train, _), (test, s, p)) in enumerate(
            zip(jobs, results, strict=True), start=1):
        scores[repeat][test], preds[repeat][test] = s, p
        fold_sizes.append((len(train), len(test)))
        if progress:
            progress(done)

    per_repeat = [label_metrics(y, p, schema.names, schema.multiclass) for p in preds]
    metrics = {k: float(np.mean([m[k] for m in per_repeat])) for k in per_repeat[0]}
    metrics["macro_f1_ci_low"], metrics["macro_f1_ci_high"] = bootstrap_macro_f1(
        y, preds, real["unit_id"].to_numpy(), n_boot, seed)
    metrics["macro_f1_std_repeats"] = float(np.std([m["macro_f1"] for m in per_repeat]))
    return Evaluation(real.reset_index(drop=True), y, scores, preds, metrics, fold_sizes)


def n_fold_jobs(folds: int, repeats: int, real: pd.DataFrame) -> int:
    """How many fold fits :func:`cross_validate` runs (for progress bars)."""
    return min(folds, real["unit_id"].nunique()) * repeats


# --------------------------------------------------------------------------- reports and plots

def misclassified(evaluation: Evaluation, schema: LabelSchema) -> pd.DataFrame:
    """Real sentences whose predicted labels differ from the truth (first repeat)."""
    names = schema.names
    pred, scores = evaluation.preds[0], evaluation.scores[0]
    wrong = np.flatnonzero((pred != evaluation.y_true).any(axis=1))
    table = evaluation.table
    return pd.DataFrame({
        "sentence_id": table["sentence_id"].iloc[wrong].to_numpy(),
        "article_id": table["article_id"].iloc[wrong].to_numpy(),
        "text": table["text"].iloc[wrong].to_numpy(),
        "true_labels": [schema.format(schema.decode(evaluation.y_true[i])) for i in wrong],
        "predicted_labels": [schema.format(schema.decode(pred[i])) for i in wrong],
        **{f"score_{n}": np.round(scores[wrong, j], 4) for j, n in enumerate(names)},
    })


def oof_table(evaluation: Evaluation, schema: LabelSchema) -> pd.DataFrame:
    """All out-of-fold predictions, one row per real sentence and repeat."""
    rows = []
    runs = [(f"cv{r}", s, p) for r, (s, p) in enumerate(zip(evaluation.scores, evaluation.preds,
                                                             strict=True))]
    for run, scores, preds in runs:
        frame = evaluation.table[["sentence_id", "source", "article_id", "story_id", "unit_id",
                                  "text"]].copy()
        frame.insert(0, "run", run)
        frame["true_labels"] = [schema.format(schema.decode(r)) for r in evaluation.y_true]
        frame["predicted_labels"] = [schema.format(schema.decode(r)) for r in preds]
        for j, name in enumerate(schema.names):
            frame[f"score_{name}"] = np.round(scores[:, j], 4)
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def classification_report_text(evaluation: Evaluation, schema: LabelSchema) -> str:
    """sklearn's classification report for the first repeat of grouped CV (for a multiclass
    schema: over class indices, with accuracy, then the confusion matrix)."""
    from sklearn.metrics import classification_report

    y_true, y_pred = evaluation.y_true, evaluation.preds[0]
    extra, options = "", {}
    if schema.multiclass:
        y_true, y_pred = y_true.argmax(axis=1), y_pred.argmax(axis=1)
        options["labels"] = range(len(schema))  # a class never seen still gets its row
        matrix = pd.DataFrame(confusion(evaluation), index=schema.names, columns=schema.names)
        extra = f"\nconfusion matrix (rows: true, columns: predicted)\n{matrix.to_string()}\n"
    report = classification_report(y_true, y_pred, target_names=schema.names, zero_division=0,
                                   **options)
    return (f"== grouped CV (repeat 0), real sentences only (n={len(evaluation.y_true)})\n"
            f"{report}{extra}")


def confusion(evaluation: Evaluation) -> np.ndarray:
    """The K×K confusion matrix of a multiclass evaluation (rows true, columns predicted;
    first repeat of grouped CV)."""
    from sklearn.metrics import confusion_matrix

    width = evaluation.y_true.shape[1]
    return confusion_matrix(evaluation.y_true.argmax(axis=1), evaluation.preds[0].argmax(axis=1),
                            labels=range(width))


def plot_confusion(evaluation: Evaluation, schema: LabelSchema, title: str):  # -> Figure
    """One 2×2 confusion matrix per label, or for a multiclass schema one K×K matrix (first
    repeat of grouped CV)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import multilabel_confusion_matrix

    if schema.multiclass:
        return _plot_class_confusion(confusion(evaluation), schema.names, title)

    matrices = multilabel_confusion_matrix(evaluation.y_true, evaluation.preds[0])
    fig, axes = plt.subplots(1, len(schema), figsize=(3.2 * len(schema), 3.4))
    for ax, name, m in zip(np.atleast_1d(axes), schema.names, matrices, strict=True):
        ax.imshow(m, cmap="Blues", vmin=0)
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > m.max() / 2 else "black", fontsize=12)
        ax.set_xticks([0, 1], ["no", "yes"])
        ax.set_yticks([0, 1], ["no", "yes"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=10)
    fig.suptitle(f"{title}: confusion per label (grouped CV, real sentences)", fontsize=10)
    fig.tight_layout()
    return fig


def _plot_class_confusion(matrix: np.ndarray, names: list[str], title: str):  # -> Figure
    import matplotlib.pyplot as plt

    size = 2.2 + 0.6 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    ax.imshow(matrix, cmap="Blues", vmin=0)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > matrix.max() / 2 else "black", fontsize=10)
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: confusion matrix (grouped CV, real sentences)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_pr_curves(evaluation: Evaluation, schema: LabelSchema, title: str):  # -> Figure
    """Precision-recall curve per label from out-of-fold scores (mean over repeats)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve

    scores = np.mean(evaluation.scores, axis=0)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for j, name in enumerate(schema.names):
        y = evaluation.y_true[:, j]
        if y.sum() == 0:
            continue
        p, r, _ = precision_recall_curve(y, scores[:, j])
        ap = average_precision_score(y, scores[:, j])
        ax.step(r, p, where="post", label=f"{name} (AP {ap:.2f}, n={int(y.sum())})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{title}: out-of-fold precision-recall, real sentences", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig
