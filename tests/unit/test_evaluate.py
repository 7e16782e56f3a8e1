"""Thresholds, metrics and confidence intervals on small known inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from newsevents.evaluate import (
    bootstrap_macro_f1,
    choose_thresholds,
    decide,
    fold_training_table,
    label_metrics,
)


def test_thresholds_maximise_f1_between_scores():
    y = np.array([[1], [1], [0], [0], [1]])
    s = np.array([[0.9], [0.6], [0.55], [0.2], [0.1]])
    [t] = choose_thresholds(y, s)
    assert 0.2 < t < 0.55 or 0.55 < t < 0.6
    pred = (s >= t).astype(int)
    f1 = label_metrics(y, pred, ["a"])["f1_a"]
    best = max(label_metrics(y, (s >= c).astype(int), ["a"])["f1_a"] for c in s.ravel())
    assert f1 == best


def test_label_without_positives_keeps_default_threshold():
    assert choose_thresholds(np.zeros((3, 1)), np.array([[0.1], [0.7], [0.3]]))[0] == 0.5


def test_label_metrics_micro_and_macro():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[1, 0], [0, 0], [1, 1]])
    m = label_metrics(y, p, ["a", "b"])
    assert m["f1_a"] == 1.0 and round(m["f1_b"], 3) == 0.667
    assert round(m["macro_f1"], 3) == 0.833 and round(m["micro_f1"], 3) == 0.857  # tp 3, fp 0, fn 1


def test_bootstrap_ci_brackets_the_estimate_and_is_deterministic():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(200, 3))
    p = np.where(rng.random((200, 3)) < 0.8, y, 1 - y)
    groups = np.arange(200) // 2
    low, high = bootstrap_macro_f1(y, [p], groups, 500, seed=1)
    assert low < label_metrics(y, p, ["a", "b", "c"])["macro_f1"] < high
    assert (low, high) == bootstrap_macro_f1(y, [p], groups, 500, seed=1)


def test_extra_rows_that_near_duplicate_a_test_row_sit_out_that_fold():
    real = pd.DataFrame({"text": ["c0", "c1", "c2"], "unit_id": ["u0", "u1", "u2"]})
    extra = pd.DataFrame({"text": ["reworded c1", "new"], "unit_id": ["u1", "u9"]})
    table = fold_training_table(real, extra, np.array([0, 2]), np.array([1]))
    assert list(table["text"]) == ["c0", "c2", "new"]


def test_decide_thresholds_or_the_top_label():
    scores = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.6]])
    assert decide(scores, np.array([0.3, 0.5, 0.9])).tolist() == [[0, 1, 0], [1, 0, 0]]
    assert decide(scores, None).tolist() == [[0, 1, 0], [1, 0, 0]]  # a tie: the first


def test_multiclass_metrics_add_accuracy():
    y = np.eye(3, dtype=int)[[0, 0, 1, 2]]
    p = np.eye(3, dtype=int)[[0, 1, 1, 2]]
    m = label_metrics(y, p, ["a", "b", "c"], multiclass=True)
    assert m["accuracy"] == 0.75 and m["micro_f1"] == 0.75
    assert round(m["macro_f1"], 4) == round((2 / 3 + 2 / 3 + 1) / 3, 4)
    assert "accuracy" not in label_metrics(y, p, ["a", "b", "c"])


def test_multiclass_cross_validation_in_workers_equals_in_process(monkeypatch):
    import newsevents.evaluate as evaluate
    from newsevents.config import parse_config
    from newsevents.labels import Label, LabelSchema
    from newsevents.models import build_pipeline

    schema = LabelSchema((Label("sport", ""), Label("weather", ""), Label("other", "")),
                         type="multiclass")
    words = {"sport": "match goal team race cup", "weather": "rain snow storm wind fog",
             "other": "budget council prices bank law"}
    rng = np.random.default_rng(3)
    rows = [(f"d{i}", " ".join(rng.choice(words[c].split(), 3)) + f" item{i}", [c])
            for i, c in enumerate(rng.choice(list(words), 60))]
    real = pd.DataFrame(rows, columns=["unit_id", "text", "labels"])
    pipeline = build_pipeline(parse_config({"name": "x", "features": [{"type": "tfidf_word"}],
                                            "model": {"type": "logreg"}}), schema)

    def run(n_jobs):
        return evaluate.cross_validate(pipeline, real, real.iloc[:0], schema, folds=6,
                                       repeats=1, inner_folds=2, seed=1, n_boot=100,
                                       n_jobs=n_jobs)

    alone = run(1)
    monkeypatch.setattr(evaluate, "PARALLEL_MIN_SECONDS", 0.0)  # folds 3-6 in two workers
    assert alone.metrics == run(2).metrics
    assert alone.metrics["accuracy"] > 0.8
    assert evaluate.confusion(alone).shape == (3, 3)
    assert evaluate.confusion(alone).sum() == len(real)
    report = evaluate.classification_report_text(alone, schema)
    assert "accuracy" in report and "confusion matrix" in report
