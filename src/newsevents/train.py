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
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from newsevents import __version__, paths
from newsevents.config import BUNDLED, ExperimentConfig, resolve
from newsevents.dataset import (
    AUTHORED,
    SOFT,
    TEST,
    TRAIN,
    AnnotationError,
    add_soft_labels,
    leaking_rows,
    load_labeled_file,
    load_table,
    multi_hot,
    sample_weights,
    target_matrix,
)
from newsevents.evaluate import (
    bootstrap_macro_f1,
    choose_thresholds,
    classification_report_text,
    cross_validate,
    decide,
    fit,
    label_metrics,
    misclassified,
    n_fold_jobs,
    oof_table,
    plot_confusion,
    plot_pr_curves,
)
from newsevents.labels import LabelSchema, SchemaError, load_schema
from newsevents.modelcard import MODEL_CARD_FILE, CardFacts, headline, render
from newsevents.models import build_pipeline, encoders_used, prefetch_features
from newsevents.predict import MODEL_FILE, save_model_dir

SUMMARY_METRICS = ("macro_f1", "macro_f1_ci_low", "macro_f1_ci_high", "micro_f1")


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
    cv_unit: str = ""
    model_name: str = ""  # the registered model (one per label schema)
    tier: str = "fast"  # "accurate": needs a contextual encoder; "student": learns soft labels
    # The final model and the held-out rows, kept (not logged) so that only the model promoted
    # in its tier (champion, student, accurate) is ever scored on the test split.
    model: Any = field(default=None, repr=False)
    thresholds: Any = field(default=None, repr=False)
    test_table: pd.DataFrame | None = field(default=None, repr=False)
    schema: LabelSchema | None = field(default=None, repr=False)
    card: CardFacts | None = field(default=None, repr=False)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_training_table(config: ExperimentConfig) -> tuple[pd.DataFrame, LabelSchema, str]:
    """The experiment's labeled table, its schema, and where the data came from (soft labels,
    when the experiment asks for them, are appended: their account is printed in one line)."""
    schema = load_schema(resolve(config.data.schema))
    if config.data.source == BUNDLED:
        table, source = load_table(schema), str(paths.ANNOTATIONS)
    else:
        path = resolve(config.data.source)
        table, source = load_labeled_file(path, schema), str(path.resolve())
    if config.data.soft_labels:
        table, message = add_soft_labels(table, schema, resolve(config.data.soft_labels),
                                         config.data.soft_targets, config.data.soft_weight)
        _say(message)
    return table, schema, source


def data_key(config: ExperimentConfig) -> tuple:
    """Experiments with equal keys train on the same data (loaded once)."""
    d = config.data
    return (d.source, d.schema) + ((d.soft_labels, d.soft_targets, d.soft_weight)
                                   if d.soft_labels else ())


@dataclass
class TrainingData:
    """An experiment's validated data, loaded before anything is written."""

    table: pd.DataFrame
    schema: LabelSchema
    source: str
    seconds: float


def load_data(config: ExperimentConfig) -> TrainingData:
    """Load and check an experiment's data and schema (and where its model would go).

    Raises on a bad file, schema or schema name; warnings (merged repeats) become one line each.
    """
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        table, schema, source = load_training_table(config)
    for warning in caught:
        _say(f"warning: {warning.message}")
    model_home(schema)  # a reserved schema name is refused here, before any run is logged
    units = table.loc[table["split"] == TRAIN, "unit_id"].nunique()
    if units < 2:
        raise AnnotationError([f"{source}: the sentences form {units} fold unit (documents "
                               "and near-duplicates stay together); cross-validation needs two "
                               "or more"])
    return TrainingData(table, schema, source, time.perf_counter() - t0)


def model_home(schema: LabelSchema) -> tuple[str, Path]:
    """Registered model name and export directory of a schema: one champion per schema.

    The project's own schema keeps ``newsevents`` and ``models/champion``; any other schema gets
    its ``name`` and ``models/<name>/champion``, so training on it never touches the default.
    """
    from newsevents.tracking import REGISTERED_MODEL

    if Path(schema.source).resolve() == paths.DEFAULT_SCHEMA.resolve():
        return REGISTERED_MODEL, paths.CHAMPION_DIR
    if schema.name in (REGISTERED_MODEL, paths.CHAMPION_DIR.name):
        raise SchemaError(f"{schema.source}: schema name {schema.name!r} is the project's own "
                          "model's; give the schema another name")
    return schema.name, paths.MODELS / schema.name / "champion"


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
                   data: TrainingData | None = None) -> RunResult:
    """Cross-validate one experiment, fit its final model, and log everything to MLflow.

    ``data``: the experiment's data from :func:`load_data` (loaded here when not given).
    """
    from newsevents import tracking  # imported here so `--help` and tests of parts stay fast

    # Multi-threaded BLAS on these small problems is slower by two orders of magnitude
    # (threads spin); folds may run in parallel processes instead. The run opens before the
    # work so that its duration in MLflow is the experiment's.
    data = data or load_data(config)
    with threadpool_limits(limits=1), tracking.open_run(config.name, config.description) as run:
        return _run_experiment(config, n_jobs, data, run)


def _run_experiment(config: ExperimentConfig, n_jobs: int, data: TrainingData,
                    run_id: str) -> RunResult:
    from newsevents import tracking

    started = time.perf_counter()
    table, schema, source = data.table.copy(), data.schema, data.source
    leaking = leaking_rows(table)
    if leaking.any():
        _say(f"{config.name}: {int(leaking.sum())} training sentences near-duplicate a test "
             "sentence and are left out")
        table = table[~leaking]
    t0 = time.perf_counter()  # cv_seconds counts cross-validation only, not data loading
    real = table[table["split"] == TRAIN].reset_index(drop=True)
    # Training-only rows: the authored bank (unless the experiment leaves it out) and the
    # soft-labeled pool sentences (present only when the experiment asked for them).
    extra = table[table["split"].isin([AUTHORED, SOFT] if config.data.authored else [SOFT])]
    pipeline = build_pipeline(config, schema)
    ev = config.evaluation
    # A contextual encoder encodes every sentence once, here, into its disk cache; the folds
    # (in worker processes) then only read vectors.
    prefetch_features(pipeline, [*real["text"], *extra["text"]])

    total = n_fold_jobs(ev.folds, ev.repeats, real)
    with tqdm(total=total, desc=f"{config.name}: folds", unit="fold", leave=False,
              disable=None, file=sys.stderr) as bar:
        evaluation = cross_validate(pipeline, real, extra, schema, ev.folds, ev.repeats,
                                    ev.inner_folds, config.seed, ev.bootstrap, n_jobs,
                                    progress=lambda done: bar.update(done - bar.n))
    t_cv = time.perf_counter() - t0

    t0 = time.perf_counter()
    training = pd.concat([real, extra], ignore_index=True)
    # The same targets and weights as the folds (soft labels may be scores or weigh less).
    model = fit(pipeline, list(training["text"]), target_matrix(training, schema),
                sample_weights(training))
    # The final thresholds come from the cross-validation just run: every real training
    # sentence's out-of-fold scores (mean over repeats), so no second inner search is needed.
    thresholds = None if schema.multiclass else choose_thresholds(
        evaluation.y_true, np.mean(evaluation.scores, axis=0))
    t_fit = time.perf_counter() - t0

    documents = bool((real["story_id"] != "").all())
    cv_unit = "document" if documents else "sentence"
    metrics = dict(evaluation.metrics)
    metrics.update({"n_train_sentences": len(training), "n_real_sentences": len(real),
                    "n_authored_sentences": int((extra["split"] == AUTHORED).sum()),
                    "n_soft_sentences": int((extra["split"] == SOFT).sum()),
                    "n_cv_units": real["unit_id"].nunique(),
                    "cv_seconds": t_cv, "final_fit_seconds": t_fit})
    digest = data_digest(table)
    summary = SUMMARY_METRICS + (("accuracy",) if schema.multiclass else ())
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="newsevents-run-") as tmp:
        model_dir, artifact_dir = Path(tmp) / "model", Path(tmp) / "artifacts"
        artifact_dir.mkdir()
        metadata = {
            "experiment": config.name,
            "metrics": {k: round(metrics[k], 4) for k in summary},
            "scored_on": f"real sentences only, grouped cross-validation by {cv_unit} "
                         "(authored sentences are training-only)",
            "data_digest": digest, "schema_digest": schema.digest,
            "library_versions": _library_versions(),
        }
        if encoders := encoders_used(model):
            metadata["encoders"] = encoders
        save_model_dir(model_dir, model, schema.names, thresholds,
                       check_texts=list(training["text"]), schema_type=schema.type, **metadata)
        _write_artifacts(artifact_dir, evaluation, schema, config)
        facts = CardFacts(
            name=config.name, description=config.description, schema=schema,
            features=[f.type for f in config.features], model=config.model.type,
            thresholds=[] if thresholds is None else list(thresholds), data_source=source,
            data_digest=digest,
            documents=real["article_id"].nunique() if documents else 0, cv_unit=cv_unit,
            folds=ev.folds, repeats=ev.repeats, bootstrap=ev.bootstrap,
            config_path=config.path, run_id=run_id)
        for directory in (model_dir, artifact_dir):  # logged with the model and with the run
            (directory / MODEL_CARD_FILE).write_text(render(facts, metrics), encoding="utf-8")
        t_export = time.perf_counter() - t0
        t0 = time.perf_counter()
        logged = tracking.log_run(
            params=config.flat_params(), metrics=metrics,
            tags={"data_digest": digest, "schema_digest": schema.digest,
                  "config_path": config.path, "description": config.description,
                  "scored_on": metadata["scored_on"], "cv_unit": cv_unit,
                  "schema_type": schema.type},
            artifact_dir=artifact_dir, model_dir=model_dir, labels=schema.names,
            dataset=training.assign(labels=[";".join(ls) for ls in training["labels"]])[
                ["sentence_id", "source", "article_id", "story_id", "unit_id", "text",
                 "labels"]],
            dataset_source=source, example=list(real["text"].head(3)),
            model_name=model_home(schema)[0], summary=headline(metrics),
        )
    t_log = time.perf_counter() - t0
    # "load" is the data's loading time, shared by the experiments that use the same data;
    # "total" counts this experiment's own work from evaluation to logging.
    return RunResult(config.name, metrics, schema.names,
                     {"load": data.seconds, "cv": t_cv, "fit": t_fit, "export": t_export,
                      "log": t_log, "total": time.perf_counter() - started},
                     logged.run_id, logged.version, digest, cv_unit=cv_unit,
                     tier=("accurate" if metadata.get("encoders") else
                           "student" if metrics["n_soft_sentences"] else "fast"),
                     model_name=model_home(schema)[0], model=model, thresholds=thresholds,
                     test_table=table[table["split"] == TEST].reset_index(drop=True),
                     schema=schema, card=facts)


def score_test_split(result: RunResult, n_boot: int = 1000) -> dict[str, float]:
    """The final model's scores on the held-out test split (for each tier's promoted model)."""
    test = result.test_table
    if test is None or test.empty or result.schema is None:
        return {}
    y = multi_hot(test, result.schema)
    pred = decide(result.model.predict_proba(list(test["text"])), result.thresholds)
    metrics = label_metrics(y, pred, result.labels, result.schema.multiclass)
    metrics["macro_f1_ci_low"], metrics["macro_f1_ci_high"] = bootstrap_macro_f1(
        y, [pred], test["unit_id"].to_numpy(), n_boot, seed=13)
    metrics["n_sentences"] = len(test)
    metrics["n_documents"] = test["article_id"].nunique()
    return {f"test_{k}": v for k, v in metrics.items()}


def _write_artifacts(directory: Path, evaluation, schema: LabelSchema,
                     config: ExperimentConfig) -> None:
    import matplotlib.pyplot as plt

    # Multiclass: one K×K matrix; multi-label: a 2×2 matrix per label.
    confusion = "confusion_matrix.png" if schema.multiclass else "confusion_matrices.png"
    for name, fig in ((confusion, plot_confusion(evaluation, schema, config.name)),
                      ("pr_curves.png", plot_pr_curves(evaluation, schema, config.name))):
        fig.savefig(directory / name, dpi=110)
        plt.close(fig)
    (directory / "classification_report.txt").write_text(
        classification_report_text(evaluation, schema))
    misclassified(evaluation, schema).to_csv(directory / "misclassified.csv", index=False)
    oof_table(evaluation, schema).to_csv(directory / "oof_predictions.csv", index=False)


def train(configs: list[ExperimentConfig], export: bool = True, n_jobs: int = 2
          ) -> list[RunResult]:
    """Run experiments in order; make the best the ``champion`` unless the current one is better.

    Only the model that becomes champion is scored on the held-out test split; its ``test_*``
    metrics are logged to its run.
    """
    with warnings.catch_warnings(record=True):
        # MLflow advises type hints on pyfunc models once, when tracking defines its own: that
        # would bury the one-line error of a bad file below.
        from newsevents import tracking

    # Every experiment's data is read and checked before the store is touched: a bad file
    # stops the run with nothing written. Experiments on the same data share one load.
    loaded: dict[tuple, TrainingData] = {}
    for config in configs:
        key = data_key(config)
        if key not in loaded:
            loaded[key] = load_data(config)
            _say(f"data: {len(loaded[key].table)} sentences from {loaded[key].source} "
                 f"({loaded[key].schema.type} schema {loaded[key].schema.name}), "
                 f"{loaded[key].seconds:.1f} s")
    tracking.setup()
    _say(f"MLflow store: {tracking.tracking_uri()}")
    results = []
    for i, config in enumerate(configs, start=1):
        _say(f"[{i}/{len(configs)}] {config.name}: evaluating and fitting")
        result = run_experiment(config, n_jobs=n_jobs, data=loaded[data_key(config)])
        results.append(result)
        m = result.metrics
        _say(f"[{i}/{len(configs)}] {config.name}: macro-F1 {m['macro_f1']:.3f} "
             f"[{m['macro_f1_ci_low']:.3f}, {m['macro_f1_ci_high']:.3f}] "
             f"(grouped CV by {result.cv_unit}), {result.seconds['total']:.1f} s")
    # One registered model per label schema; in it, each tier has its own alias and export: the
    # champion (models/champion, what `make train` exports) is the best model that needs no
    # contextual encoder and no soft labels; the best of the other tiers go to models/student
    # and models/accurate.
    for name, tier in dict.fromkeys((r.model_name, r.tier) for r in results):
        candidates = [r for r in results if (r.model_name, r.tier) == (name, tier)]
        best = max(candidates, key=lambda r: r.metrics[tracking.SELECTION_METRIC])
        alias = tracking.TIER_ALIASES[tier]
        home = model_home(best.schema)[1]
        target = home if tier == "fast" else home.with_name(alias)
        best.promoted, best.message = tracking.promote_unless_worse(
            best.version, best.metrics[tracking.SELECTION_METRIC], best.data_digest, name,
            alias)
        _say(f"{name}: {best.message}")
        card = None
        if best.promoted:
            test = score_test_split(best)
            best.metrics.update(test)
            tracking.log_metrics(best.run_id, test)
            if test:  # the promoted model's card gains its test-split scores
                card = render(best.card, best.metrics)
                tracking.log_text(best.run_id, card, MODEL_CARD_FILE)
        if export and (best.promoted or not (target / MODEL_FILE).exists()):
            _say(f"exported {alias} to {tracking.export_champion(target, name, alias)}")
            if card is not None:
                (target / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
    return results


def summary_table(results: list[RunResult]) -> str:
    """A plain-text table: experiment, macro-F1 (CI), per-label F1, time; the champion's test."""
    from newsevents.tracking import TIER_ALIASES

    if not results:
        return "no experiments run"
    labels = results[0].labels
    short = [n.split("_")[0][:8] for n in labels]
    # Multiclass runs add accuracy (the share of sentences given their one right label).
    accuracy = "accuracy" in results[0].metrics
    header = (f"{'experiment':<30} {'macro-F1 [95% CI]':<22} "
              + (f"{'accuracy':>8} " if accuracy else "")
              + " ".join(f"{s:>8}" for s in short) + f" {'time':>6}  version")
    lines = [header, "-" * len(header)]
    for r in results:
        m = r.metrics
        ci = f"{m['macro_f1']:.3f} [{m['macro_f1_ci_low']:.2f},{m['macro_f1_ci_high']:.2f}]"
        if accuracy:
            ci = f"{ci:<22} {m.get('accuracy', float('nan')):>8.3f}"
        per = " ".join(f"{m.get(f'f1_{n}', float('nan')):>8.3f}" for n in labels)
        mark = f"  ← {TIER_ALIASES[r.tier]}" if r.promoted else ""
        lines.append(f"{r.name:<30} {ci:<22} {per} {r.seconds['total']:>5.1f}s  v{r.version}{mark}")
    unit = results[0].cv_unit
    lines.append(f"macro-F1: grouped cross-validation by {unit} on real sentences (mean over "
                 "repeats, cluster-bootstrap 95% CI); per-label: F1 in the same CV"
                 + ("; accuracy: one label per sentence, in the same CV" if accuracy else "")
                 + ". Authored sentences are training-only and never scored."
                 + ("" if unit == "document" else " No document column: a new-document "
                    "estimate is n/a."))
    for r in results:
        if "test_macro_f1" in r.metrics:
            m = r.metrics
            per = ", ".join(f"{n} {m[f'test_f1_{n}']:.3f}" for n in labels)
            lines.append(f"{TIER_ALIASES[r.tier]} {r.name} on the "
                         "held-out test split "
                         f"({int(m['test_n_sentences'])} sentences, "
                         f"{int(m['test_n_documents'])} documents): macro-F1 "
                         f"{m['test_macro_f1']:.3f} [{m['test_macro_f1_ci_low']:.2f},"
                         f"{m['test_macro_f1_ci_high']:.2f}]; {per}")
    return "\n".join(lines)
