"""Train experiments: evaluate honestly, fit the final model, log to MLflow, promote, export.

>>> results = train([load_config("experiments/tfidf-logreg.yaml")])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from newsevents import __version__, paths
from newsevents.config import BUNDLED, ExperimentConfig
from newsevents.dataset import (
    AUTHORED,
    CORPUS,
    load_external,
    load_labeled_file,
    load_table,
    multi_hot,
)
from newsevents.evaluate import (
    classification_report_text,
    cross_validate,
    fit_with_thresholds,
    label_metrics,
    misclassified,
    n_fold_jobs,
    oof_table,
    plot_confusion,
    plot_pr_curves,
)
from newsevents.labels import LabelSchema, load_schema
from newsevents.models import build_pipeline, encoders_used, prefetch_features
from newsevents.predict import MODEL_FILE, save_model_dir

SUMMARY_METRICS = ("macro_f1", "macro_f1_ci_low", "macro_f1_ci_high", "micro_f1",
                   "loso_macro_f1", "loso_micro_f1")


@dataclass
class RunResult:
    """What one experiment produced, for the summary table."""

    name: str
    metrics: dict[str, float]
    labels: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str = ""
    version: str = ""
    data_digest: str = ""
    promoted: bool = False
    message: str = ""
    tier: str = "fast"  # "accurate" when the model needs a contextual encoder


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_training_table(config: ExperimentConfig) -> tuple[pd.DataFrame, LabelSchema, str]:
    """The experiment's labeled table, its schema, and where the data came from."""
    schema_path = Path(config.data.schema)
    schema = load_schema(schema_path if schema_path.is_absolute() else paths.ROOT / schema_path)
    if config.data.source == BUNDLED:
        return load_table(schema), schema, str(paths.ANNOTATIONS)
    source = Path(config.data.source)
    source = source if source.is_absolute() or source.exists() else paths.ROOT / source
    table = load_labeled_file(source, schema)
    table["source"] = CORPUS
    return table, schema, str(source.resolve())


def data_digest(table: pd.DataFrame) -> str:
    """sha256 over sentence ids, texts and labels: the same data gives the same digest."""
    rows = sorted(zip(table["sentence_id"], table["text"], map(";".join, table["labels"]),
                      strict=True))
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()


def _library_versions() -> dict[str, str]:
    names = ("scikit-learn", "numpy", "joblib", "nupunkt", "model2vec")
    return {"python": platform.python_version(), "newsevents": __version__,
            **{n: version(n) for n in names}}


def run_experiment(config: ExperimentConfig, n_jobs: int = 2,
                   external: pd.DataFrame | None = None) -> RunResult:
    """Evaluate one experiment, fit its final model, and log everything to MLflow.

    ``external``: extra real sentences (see :func:`newsevents.dataset.load_external`) that the
    final model is scored on, when the experiment uses the bundled label schema.
    """
    # Multi-threaded BLAS on these small problems is slower by two orders of magnitude
    # (threads spin); folds run in parallel processes instead.
    with threadpool_limits(limits=1):
        return _run_experiment(config, n_jobs, external)


def _run_experiment(config: ExperimentConfig, n_jobs: int,
                    external: pd.DataFrame | None) -> RunResult:
    from newsevents import tracking  # imported here so `--help` and tests of parts stay fast

    started = time.perf_counter()
    table, schema, source = load_training_table(config)
    t0 = time.perf_counter()  # cv_seconds counts cross-validation only, not data loading
    corpus = table[table["source"] == CORPUS].reset_index(drop=True)
    extra = table[table["source"] == AUTHORED] if config.data.authored else table.iloc[:0]
    pipeline = build_pipeline(config, schema)
    ev = config.evaluation
    # A contextual encoder encodes every sentence once, here, into its disk cache; the folds
    # (in worker processes) then only read vectors.
    prefetch_features(pipeline, [*corpus["text"], *extra["text"],
                                 *([] if external is None else external["text"])])

    total = n_fold_jobs(ev.folds, ev.repeats, corpus)
    with tqdm(total=total, desc=f"{config.name}: folds", unit="fold", leave=False,
              disable=None, file=sys.stderr) as bar:
        evaluation = cross_validate(pipeline, corpus, extra, schema, ev.folds, ev.repeats,
                                    ev.inner_folds, config.seed, ev.bootstrap, n_jobs,
                                    progress=lambda done: bar.update(done - bar.n))
    t_cv = time.perf_counter() - t0

    t0 = time.perf_counter()
    training = pd.concat([corpus, extra], ignore_index=True)
    model, thresholds = fit_with_thresholds(pipeline, training, schema, ev.inner_folds,
                                            config.seed)
    t_fit = time.perf_counter() - t0

    metrics = dict(evaluation.metrics)
    if external is not None and config.data.source == BUNDLED:
        scores = model.predict_proba(list(external["text"]))
        un = label_metrics(multi_hot(external, schema), (scores >= thresholds).astype(int),
                           schema.names)
        metrics.update({f"un_{k}": v for k, v in un.items() if not k.startswith("support_")})
    metrics.update({"n_train_sentences": len(training), "n_corpus_sentences": len(corpus),
                    "n_authored_sentences": len(extra), "cv_seconds": t_cv,
                    "final_fit_seconds": t_fit})
    digest = data_digest(table)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="newsevents-run-") as tmp:
        model_dir, artifact_dir = Path(tmp) / "model", Path(tmp) / "artifacts"
        artifact_dir.mkdir()
        metadata = {
            "experiment": config.name,
            "metrics": {k: round(metrics[k], 4) for k in SUMMARY_METRICS},
            "scored_on": "real corpus sentences only (authored sentences are training-only)",
            "data_digest": digest, "schema_digest": schema.digest,
            "library_versions": _library_versions(),
        }
        if encoders := encoders_used(model):
            metadata["encoders"] = encoders
        save_model_dir(model_dir, model, schema.names, thresholds,
                       check_texts=list(training["text"]), **metadata)
        _write_artifacts(artifact_dir, evaluation, schema, config)
        logged = tracking.log_run(
            run_name=config.name, params=config.flat_params(), metrics=metrics,
            tags={"data_digest": digest, "schema_digest": schema.digest,
                  "config_path": config.path, "description": config.description,
                  "scored_on": metadata["scored_on"]},
            artifact_dir=artifact_dir, model_dir=model_dir, labels=schema.names,
            dataset=training.assign(labels=[";".join(ls) for ls in training["labels"]])[
                ["sentence_id", "article_id", "story_id", "group_id", "source", "text",
                 "labels"]],
            dataset_source=source, example=list(corpus["text"].head(3)),
        )
    t_log = time.perf_counter() - t0
    return RunResult(config.name, metrics, schema.names,
                     {"cv": t_cv, "fit": t_fit, "log": t_log,
                      "total": time.perf_counter() - started},
                     logged.run_id, logged.version, digest,
                     tier="accurate" if metadata.get("encoders") else "fast")


def _write_artifacts(directory: Path, evaluation, schema: LabelSchema,
                     config: ExperimentConfig) -> None:
    import matplotlib.pyplot as plt

    for name, fig in (("confusion_matrices.png", plot_confusion(evaluation, schema, config.name)),
                      ("pr_curves.png", plot_pr_curves(evaluation, schema, config.name))):
        fig.savefig(directory / name, dpi=110)
        plt.close(fig)
    (directory / "classification_report.txt").write_text(
        classification_report_text(evaluation, schema))
    misclassified(evaluation, schema).to_csv(directory / "misclassified.csv", index=False)
    oof_table(evaluation, schema).to_csv(directory / "oof_predictions.csv", index=False)


def train(configs: list[ExperimentConfig], export: bool = True, n_jobs: int = 2
          ) -> list[RunResult]:
    """Run experiments in order; make the best the ``champion`` unless the current one is better."""
    from newsevents import tracking

    tracking.setup()
    _say(f"MLflow store: {tracking.tracking_uri()}")
    external = None
    if any(c.data.source == BUNDLED for c in configs):
        external = load_external(load_schema())
        _say(f"UN General Debate dev set: {len(external)} labeled real sentences"
             if external is not None
             else f"UN General Debate dev set: skipped ({paths.UN_DEBATE} not found)")
    results = []
    for i, config in enumerate(configs, start=1):
        _say(f"[{i}/{len(configs)}] {config.name}: evaluating and fitting")
        result = run_experiment(config, n_jobs=n_jobs, external=external)
        results.append(result)
        m = result.metrics
        _say(f"[{i}/{len(configs)}] {config.name}: macro-F1 {m['macro_f1']:.3f} "
             f"[{m['macro_f1_ci_low']:.3f}, {m['macro_f1_ci_high']:.3f}], "
             f"new-story macro-F1 {m['loso_macro_f1']:.3f}, {result.seconds['total']:.1f} s")
    # Each tier has its own alias and export: the champion (models/champion, the default that
    # `make train` exports) is the best model that needs no contextual encoder; the best
    # accurate-tier model goes to models/accurate. Predictions come from either with --model.
    for tier, alias, target in (("fast", tracking.CHAMPION, paths.CHAMPION_DIR),
                                ("accurate", tracking.ACCURATE, paths.ACCURATE_DIR)):
        candidates = [r for r in results if r.tier == tier]
        if not candidates:
            continue
        best = max(candidates, key=lambda r: r.metrics[tracking.SELECTION_METRIC])
        best.promoted, best.message = tracking.promote_unless_worse(
            best.version, best.metrics[tracking.SELECTION_METRIC], best.data_digest, alias)
        _say(best.message)
        if export and (best.promoted or not (target / MODEL_FILE).exists()):
            _say(f"exported {alias} to {tracking.export_champion(target, alias)}")
    return results


def summary_table(results: list[RunResult]) -> str:
    """A plain-text table: experiment, macro-F1 (CI), new-story macro-F1, per-label F1, time."""
    if not results:
        return "no experiments run"
    labels = results[0].labels
    short = [n.split("_")[0][:8] for n in labels]
    header = (f"{'experiment':<26} {'macro-F1 [95% CI]':<22} {'new-story':>9} {'UN dev':>6} "
              + " ".join(f"{s:>8}" for s in short) + f" {'time':>6}  version")
    lines = [header, "-" * len(header)]
    for r in results:
        m = r.metrics
        ci = f"{m['macro_f1']:.3f} [{m['macro_f1_ci_low']:.2f},{m['macro_f1_ci_high']:.2f}]"
        per = " ".join(f"{m.get(f'f1_{n}', float('nan')):>8.3f}" for n in labels)
        mark = ("  ← champion" if r.tier == "fast" else "  ← accurate") if r.promoted else ""
        un = f"{m['un_macro_f1']:>6.3f}" if "un_macro_f1" in m else f"{'–':>6}"
        lines.append(f"{r.name:<26} {ci:<22} {m['loso_macro_f1']:>9.3f} {un} {per} "
                     f"{r.seconds['total']:>5.1f}s  v{r.version}{mark}")
    lines.append("macro-F1: grouped CV on real corpus sentences (mean over repeats, cluster "
                 "bootstrap CI); new-story: leave-one-story-out; UN dev: final model on 320 "
                 "labeled UN General Debate sentences; per-label: grouped CV. Authored "
                 "sentences are training-only and never scored.")
    return "\n".join(lines)
