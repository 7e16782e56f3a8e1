"""How much a student's cross-validated score owes to a teacher that saw the held-out fold.

The committed soft labels come from the final teacher, trained on every training sentence:
in cross-validation, the student of fold k then learns from a teacher that saw fold k's
sentences. This script measures that optimism. On the student experiment's own folds, it
trains a teacher per fold on that fold's training part only (the teacher experiment, with its
thresholds chosen by the same inner CV), has it score the soft-labeled sentences, and trains
the student on those *cross-fitted* soft labels; beside it, the same student on the committed
(final-teacher) soft labels, fold by fold. It prints both macro-F1s and the difference.

Needs the accurate extra, the teacher's encoder installed, the pools in ``../shared/corpus/``,
and the encoder vectors of every sentence in the training cache (a run of the teacher
experiment and of ``scripts/teacher_soft_labels.py`` leave them there). For reporting only:
it chooses nothing.

    nice -n 10 python scripts/soft_label_crossfit.py experiments/11-encoder-logreg.yaml \\
        experiments/15-student-soft-logreg.yaml
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from newsevents.config import load_config
from newsevents.dataset import AUTHORED, SOFT, TRAIN, leaking_rows, multi_hot
from newsevents.evaluate import decide, fit_with_thresholds, fold_training_table, label_metrics
from newsevents.groups import group_folds
from newsevents.models import build_pipeline, prefetch_features
from newsevents.train import load_training_table


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    teacher_config, student_config = (load_config(p) for p in argv)
    table, schema, _ = load_training_table(student_config)
    table = table[~leaking_rows(table)]
    soft = table[table["split"] == SOFT].reset_index(drop=True)
    if soft.empty:
        print("no soft-labeled sentences (pools absent?): nothing to compare", file=sys.stderr)
        return 1
    real = table[table["split"] == TRAIN].reset_index(drop=True)
    authored = table[table["split"] == AUTHORED]
    teacher = build_pipeline(teacher_config, schema)
    student = build_pipeline(student_config, schema)
    prefetch_features(teacher, [*real["text"], *authored["text"], *soft["text"]])
    scores_mode = "soft_scores" in soft.columns
    y = multi_hot(real, schema)
    preds = {"committed": np.zeros_like(y), "cross-fitted": np.zeros_like(y)}
    folds = list(group_folds(real, student_config.evaluation.folds, student_config.seed))
    for k, (train, test) in enumerate(folds, start=1):
        t0 = time.perf_counter()
        # The teacher trains as it did for the committed labels: hand labels, equal weights.
        hand = fold_training_table(real, authored, train, test).drop(
            columns=["weight", "soft_scores"], errors="ignore")
        model, thresholds = fit_with_thresholds(
            teacher, hand, schema,
            teacher_config.evaluation.inner_folds, teacher_config.seed)
        fold_scores = model.predict_proba(list(soft["text"]))
        refit = soft.assign(labels=[[n for n, d in zip(schema.names, row, strict=True) if d]
                                    for row in decide(fold_scores, thresholds)])
        if scores_mode:
            refit["soft_scores"] = list(fold_scores.round(3))
        for name, rows in (("committed", soft), ("cross-fitted", refit)):
            extra = pd.concat([authored, rows], ignore_index=True)
            fitted, cut = fit_with_thresholds(
                student, fold_training_table(real, extra, train, test), schema,
                student_config.evaluation.inner_folds, student_config.seed)
            preds[name][test] = decide(fitted.predict_proba(list(real["text"].iloc[test])), cut)
        agree = (decide(fold_scores, thresholds) == multi_hot(soft, schema)).mean()
        print(f"fold {k}/{len(folds)}: {time.perf_counter() - t0:.0f} s; fold teacher agrees "
              f"with the committed labels on {agree:.3f} of label decisions", flush=True)
    for name, pred in preds.items():
        m = label_metrics(y, pred, schema.names)
        print(f"{name:<13} macro-F1 {m['macro_f1']:.3f}  "
              + "  ".join(f"{n} {m[f'f1_{n}']:.3f}" for n in schema.names))
    gap = (label_metrics(y, preds["committed"], schema.names)["macro_f1"]
           - label_metrics(y, preds["cross-fitted"], schema.names)["macro_f1"])
    print(f"optimism of the committed soft labels in CV: {gap:+.3f} macro-F1")
    return 0


if __name__ == "__main__":
    with threadpool_limits(limits=1):
        sys.exit(main(sys.argv[1:]))
