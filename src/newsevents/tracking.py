"""MLflow: the tracking store, runs, the model registry and the ``champion`` alias.

This is the only module that imports MLflow. With no ``MLFLOW_TRACKING_URI`` set, runs go to an
embedded SQLite store in the project (``mlflow.db``, artifacts in ``mlartifacts/``), so
``make train`` needs no server; set the variable and the same code logs to a server.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from newsevents import paths
from newsevents.predict import ModelError

EXPERIMENT = "newsevents"
REGISTERED_MODEL = "newsevents"
CHAMPION = "champion"
SELECTION_METRIC = "macro_f1"  # grouped CV by document on real training sentences
# The best model of the accurate tier (contextual encoder): kept apart from the champion, so
# that the default export stays the fast model that needs no extra.
ACCURATE = "accurate"
# The best fast model trained on soft labels too: apart from the champion, because its
# cross-validated score is optimistic (the teacher saw every fold) and it needs the pools'
# text at training time, which a fresh clone may lack.
STUDENT = "student"
# Each tier's alias in the registry; its export is models/<alias> (the fast tier's is the
# schema's champion directory).
TIER_ALIASES = {"fast": CHAMPION, "student": STUDENT, "accurate": ACCURATE}
# What kind of experiment this is, in the UI's own words: model training, not a GenAI app.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"
# Run tag on the run whose registered version holds the ``champion`` alias (and on no other).
CHAMPION_TAG = "champion"
# MLflow 3.17's UI ignores the kind tag: a switch of its own ("GenAI" / "Model training",
# GenAI unless the URL or the browser says otherwise) picks the landing page. The URL that
# ui_url() gives sets it, and opens this saved view of the runs table (the UI's "Views" menu
# lists it too): headline metrics as columns, best cross-validated macro-F1 first. The UI keeps
# saved views as experiment tags under this prefix.
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
RUNS_VIEW_KEY = "newsevents-macro-f1"
RUNS_VIEW_COLUMNS = (f"tags.`{CHAMPION_TAG}`", f"metrics.`{SELECTION_METRIC}`",
                     "metrics.`macro_f1_ci_low`", "metrics.`macro_f1_ci_high`",
                     "metrics.`test_macro_f1`", "attributes.`Models`")


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's own SQLite store (absolute path)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.ROOT / 'mlflow.db'}"


def _connect() -> MlflowClient:
    """Point MLflow at the store, with its progress bars and info logs off."""
    # MLflow's progress bars and store set-up logs drown our output; our lines say enough.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


def setup(experiment: str = EXPERIMENT) -> MlflowClient:
    """Point MLflow at the store and make sure the experiment exists, marked as model training."""
    # Read before connecting: mlflow.set_tracking_uri() sets the variable too.
    embedded = "MLFLOW_TRACKING_URI" not in os.environ
    client = _connect()
    if client.get_experiment_by_name(experiment) is None:
        # Embedded store: keep artifacts beside the database, whatever the working directory.
        location = (paths.ROOT / "mlartifacts").as_uri() if embedded else None
        client.create_experiment(experiment, artifact_location=location)
    found = mlflow.set_experiment(experiment)
    if found.tags.get(EXPERIMENT_KIND_TAG) != MODEL_DEVELOPMENT:  # also for older stores
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT)
    if VIEW_TAG_PREFIX + RUNS_VIEW_KEY not in found.tags:  # a view the user edited stays
        client.set_experiment_tag(found.experiment_id, VIEW_TAG_PREFIX + RUNS_VIEW_KEY,
                                  _runs_view())
    return client



def _runs_view() -> str:
    """The saved view, in the UI's own format: JSON around a zlib-compressed page state."""
    state = {"searchFilter": "", "orderByKey": f"metrics.`{SELECTION_METRIC}`",
             "orderByAsc": False, "startTime": "ALL", "lifecycleFilter": "Active",
             "datasetsFilter": [], "modelVersionFilter": "All Runs",
             "selectedColumns": list(RUNS_VIEW_COLUMNS), "runsHiddenMode": "FIRST_10_RUNS"}
    packed = base64.b64encode(zlib.compress(json.dumps(state).encode("utf-8"))).decode("ascii")
    now = int(time.time() * 1000)
    return json.dumps({"name": "macro-F1 (newsevents)", "createdAt": now, "updatedAt": now,
                       "state": f"deflate;{packed}"})


def ui_url(base: str, experiment: str = EXPERIMENT) -> str:
    """The address that opens the experiment's runs table with the macro-F1 view, on the UI
    served at ``base`` (such as ``http://127.0.0.1:5000``)."""
    setup(experiment)
    found = MlflowClient().get_experiment_by_name(experiment)
    return (f"{base.rstrip('/')}/#/experiments/{found.experiment_id}/runs?"
            f"workflowType=machine_learning&viewStateShareKey={RUNS_VIEW_KEY}")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True,
                             text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=paths.ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class NewsEventsModel(PythonModel):
    """MLflow pyfunc around :class:`newsevents.predict.Predictor`.

    Input: a DataFrame with a ``text`` column (the logged signature, which MLflow enforces
    before ``predict``: a bare list of strings is refused); output: a DataFrame with ``labels``
    (``;``-separated) and one ``score_<label>`` column per label, one row per input row.
    """

    def load_context(self, context: Any) -> None:
        from newsevents.predict import Predictor

        self.predictor = Predictor.load(context.artifacts["model_dir"])

    # The DataFrame hint is the one MLflow takes as "validate against the logged signature"
    # (it infers no schema of its own from it), which is what the model is served with.
    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        column = "text" if "text" in model_input.columns else model_input.columns[0]
        predictions = self.predictor.predict(model_input[column].astype(str).tolist())
        return pd.DataFrame({
            "labels": [";".join(p.labels) for p in predictions],
            **{f"score_{n}": [p.scores[n] for p in predictions] for n in self.predictor.labels},
        })


def _signature(labels: list[str]) -> ModelSignature:
    outputs = Schema([ColSpec("string", "labels"),
                      *[ColSpec("double", f"score_{n}") for n in labels]])
    return ModelSignature(inputs=Schema([ColSpec("string", "text")]), outputs=outputs)


def _requirements(model_dir: Path) -> list[str]:
    # Given explicitly: MLflow's requirement inference costs seconds per logged model.
    from importlib.metadata import version

    names = ["scikit-learn", "numpy", "pandas", "joblib", "nupunkt", "model2vec", "pyyaml"]
    metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
    if metadata.get("encoders"):  # the accurate tier; the encoder itself is installed apart
        names += ["onnxruntime", "tokenizers"]
    return [f"{n}=={version(n)}" for n in names] + [f"mlflow=={mlflow.__version__}"]


@dataclass
class LoggedRun:
    run_id: str
    model_uri: str
    version: str


def _local_source(path: str) -> Any:
    """A local dataset source for ``path``, named as such.

    MLflow registers two local source classes (for the schemes ``""`` and ``file``), so a
    plain path string resolves ambiguously and MLflow warns; asking for the type does not.
    """
    return get_dataset_source_from_json(json.dumps({"uri": path}), source_type="local")


@contextmanager
def open_run(run_name: str, description: str = "") -> Iterator[str]:
    """Start a run *before* the work it records and yield its id.

    The UI's duration and timeline are the run's end minus its start, so a run opened after
    the work shows a fraction of a second. An exception inside marks the run failed, an
    interrupt (Ctrl-C, SIGTERM) killed.
    """
    run = mlflow.start_run(run_name=run_name, description=description or None)
    try:
        yield run.info.run_id
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run()


def run_link(run_id: str) -> str:
    """Where the run's page is: a full URL for a tracking server, else the UI's own route
    (relative, so it works in ``make ui`` on whatever host and port)."""
    run = MlflowClient().get_run(run_id)
    route = f"#/experiments/{run.info.experiment_id}/runs/{run_id}"
    uri = tracking_uri()
    return f"{uri.rstrip('/')}/{route}" if uri.startswith(("http://", "https://")) else route


def log_run(*, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str],
            artifact_dir: Path, model_dir: Path, labels: list[str], dataset: pd.DataFrame,
            dataset_source: str, example: list[str], summary: str = "",
            model_name: str = REGISTERED_MODEL) -> LoggedRun:
    """Log params, metrics, tags, input data, artifacts and the model into the run opened by
    :func:`open_run`, and register the model as a new version of ``model_name``.

    The registered version's description is ``summary`` (markdown: the headline metrics),
    the data digest and a link to the run.
    """
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("log_run() needs a run started with open_run()")
    mlflow.log_params(params)
    mlflow.log_metrics(metrics)
    mlflow.set_tags({**tags, "git_commit": git_commit()})
    data = mlflow.data.from_pandas(dataset, source=_local_source(dataset_source),
                                   name="newsevents-sentences", targets="labels")
    mlflow.log_input(data, context="training")
    mlflow.log_artifacts(str(artifact_dir))
    model_uri = log_pyfunc_model(model_dir, labels, example)
    version = mlflow.register_model(model_uri, model_name)
    run_id = active.info.run_id
    description = "\n\n".join(part for part in (
        summary, f"Data digest (sha256): `{tags['data_digest']}`",
        f"Run: [{active.info.run_name or run_id}]({run_link(run_id)})") if part)
    client = MlflowClient()
    client.update_model_version(model_name, version.version, description=description)
    client.set_model_version_tag(model_name, version.version, SELECTION_METRIC,
                                 str(metrics[SELECTION_METRIC]))
    client.set_model_version_tag(model_name, version.version, "data_digest",
                                 tags["data_digest"])
    return LoggedRun(run_id, model_uri, str(version.version))


def log_metrics(run_id: str, metrics: dict[str, float]) -> None:
    """Add metrics to a finished run (the champion's test-split scores)."""
    client = MlflowClient()
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)


def log_text(run_id: str, text: str, name: str) -> None:
    """Write (or overwrite) a text artifact of a finished run."""
    MlflowClient().log_text(run_id, text, name)


def log_curve(*, run_name: str, params: dict[str, str], tags: dict[str, str],
              steps: list[tuple[int, dict[str, float]]], artifact_dir: Path) -> str:
    """Log a learning curve as a run of its own: metrics per step (the training size), the
    table and plot as artifacts. Returns the run id."""
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params(params)
        mlflow.set_tags({**tags, "git_commit": git_commit(), "kind": "learning_curve"})
        for step, metrics in steps:
            mlflow.log_metrics(metrics, step=step)
        mlflow.log_artifacts(str(artifact_dir))
    return run.info.run_id


def champion(model_name: str = REGISTERED_MODEL, alias: str = CHAMPION
             ) -> tuple[str, float, str] | None:
    """The current champion's (or ``alias``'s) version, selection metric and data digest, or
    ``None``."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except mlflow.exceptions.MlflowException:
        return None
    return (str(version.version), float(version.tags.get(SELECTION_METRIC, "-inf")),
            version.tags.get("data_digest", ""))


def promote_unless_worse(version: str, score: float, digest: str = "",
                         model_name: str = REGISTERED_MODEL, alias: str = CHAMPION
                         ) -> tuple[bool, str]:
    """Move ``alias`` (the champion) to ``version`` unless it scores below the model the alias
    points to; say why.

    A tie promotes: the newer model scores as well and carries the newer export (such as the
    numpy scorer, which older exports lack).
    """
    current = champion(model_name, alias)
    if current is not None and score < current[1]:
        caveat = ("; note: the champion was evaluated on other data, rerun its experiment to "
                  "compare like with like") if digest and current[2] != digest else ""
        return False, (f"{alias} stays at version {current[0]} ({SELECTION_METRIC} "
                       f"{current[1]:.3f} > {score:.3f}{caveat})")
    client = MlflowClient()
    client.set_registered_model_alias(model_name, alias, version)
    if alias == CHAMPION:  # the run tag marks the champion only
        _move_champion_tag(client, model_name, version, None if current is None else current[0])
    before = f"no {alias} yet" if current is None else (
        f"was version {current[0]} with {current[1]:.3f}")
    return True, f"{alias} → version {version} ({SELECTION_METRIC} {score:.3f}; {before})"


def _move_champion_tag(client: MlflowClient, model_name: str, version: str,
                       previous: str | None) -> None:
    """Tag the champion's run, and untag the run of the version it replaces."""
    run_id = client.get_model_version(model_name, version).run_id
    if previous is not None and previous != version:
        old_run = client.get_model_version(model_name, previous).run_id
        if old_run and old_run != run_id and CHAMPION_TAG in client.get_run(old_run).data.tags:
            client.delete_tag(old_run, CHAMPION_TAG)
    if run_id:
        client.set_tag(run_id, CHAMPION_TAG, "yes")


def fetch_model(uri: str) -> Path:
    """Fetch the model behind a ``models:/`` or ``runs:/`` URI; return its model directory.

    The copy lives in a temporary directory removed when the process exits (batch workers
    re-load the model from it until then; ``newsevents`` turns SIGTERM into a normal exit so
    that this runs then too). Raises :class:`~newsevents.predict.ModelError` in one line.

    >>> Predictor.load(fetch_model("models:/newsevents@champion"))  # doctest: +SKIP
    """
    dest = Path(tempfile.mkdtemp(prefix="newsevents-model-"))
    atexit.register(shutil.rmtree, dest, ignore_errors=True)
    try:
        return download_model_dir(uri, dest)
    except Exception as exc:  # MLflow raises many types; the user needs one line, not a trace
        shutil.rmtree(dest, ignore_errors=True)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise ModelError(f"{uri}: cannot fetch the model from MLflow ({type(exc).__name__}: "
                         f"{first_line})") from None


def download_model_dir(uri: str, dest: Path) -> Path:
    """The ``model.joblib`` + ``metadata.json`` directory inside a logged pyfunc model."""
    _connect()
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    found = next((p.parent for p in local.rglob("metadata.json")), None)
    if found is None:
        raise FileNotFoundError(f"{uri}: no metadata.json in the model's artifacts")
    return found


def export_champion(target: Path = paths.CHAMPION_DIR, model_name: str = REGISTERED_MODEL,
                    alias: str = CHAMPION) -> Path:
    """Copy the champion's (or ``alias``'s) model directory to ``target`` (atomically
    replaced)."""
    current = champion(model_name, alias)
    if current is None:
        raise LookupError(f"no '{alias}' alias on registered model {model_name!r}")
    with tempfile.TemporaryDirectory() as tmp:
        source = download_model_dir(f"models:/{model_name}@{alias}", Path(tmp))
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(target.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.replace(target)
    return target


def log_pyfunc_model(model_dir: Path, labels: list[str], example: list[str]) -> str:
    """Log a model directory as the ``newsevents`` pyfunc in the active run; return its URI."""
    info = mlflow.pyfunc.log_model(
        name="model", python_model=NewsEventsModel(),
        artifacts={"model_dir": str(model_dir)}, signature=_signature(labels),
        input_example=pd.DataFrame({"text": example}),
        pip_requirements=_requirements(Path(model_dir)),
        code_paths=[str(Path(__file__).parent)],
    )
    return info.model_uri


def spark_udf(spark: Any, model_uri: str = f"models:/{REGISTERED_MODEL}@{CHAMPION}",
              env_manager: str = "local") -> Any:
    """The registered pyfunc as a Spark UDF (``mlflow.pyfunc.spark_udf``) over this store.

    One sentence in per row (split articles first: ``newsevents.spark.split_dataframe``), a
    struct out with ``labels`` (``;``-separated) and one ``score_<label>`` per label, typed from
    the model's signature. ``newsevents.spark.apply_pyfunc_udf`` turns it into the local
    engine's columns. ``env_manager="local"``: executors use the Python Spark gives them.
    """
    _connect()
    return mlflow.pyfunc.spark_udf(spark, model_uri, env_manager=env_manager)
