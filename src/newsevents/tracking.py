"""MLflow: the tracking store, runs, the model registry and the ``champion`` alias.

This is the only module that imports MLflow. With no ``MLFLOW_TRACKING_URI`` set, runs go to an
embedded SQLite store in the project (``mlflow.db``, artifacts in ``mlartifacts/``), so
``make train`` needs no server; set the variable and the same code logs to a server.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from newsevents import paths

EXPERIMENT = "newsevents"
REGISTERED_MODEL = "newsevents"
CHAMPION = "champion"
# The best model of the accurate tier (contextual encoder): kept apart from the champion, so
# that the default export stays the fast model that needs no extra.
ACCURATE = "accurate"
SELECTION_METRIC = "loso_macro_f1"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's own SQLite store (absolute path)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.ROOT / 'mlflow.db'}"


def setup(experiment: str = EXPERIMENT) -> MlflowClient:
    """Point MLflow at the store and make sure the experiment exists."""
    # MLflow's own progress bars and advice drown the training output; our lines say enough.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow(\.|$)")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    if client.get_experiment_by_name(experiment) is None:
        # Embedded store: keep artifacts beside the database, whatever the working directory.
        location = None
        if "MLFLOW_TRACKING_URI" not in os.environ:
            location = (paths.ROOT / "mlartifacts").as_uri()
        client.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    return client


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

    Input: a DataFrame with a ``text`` column (or a list of strings); output: a DataFrame with
    ``labels`` (``;``-separated) and one ``score_<label>`` column per label, one row per input.
    """

    def load_context(self, context: Any) -> None:
        from newsevents.predict import Predictor

        self.predictor = Predictor.load(context.artifacts["model_dir"])

    # Untyped on purpose: MLflow would turn type hints into an input schema of its own (it warns
    # about the missing hints once, at class definition).
    def predict(self, context, model_input, params=None):
        if isinstance(model_input, pd.DataFrame):
            column = "text" if "text" in model_input.columns else model_input.columns[0]
            texts = model_input[column].astype(str).tolist()
        else:
            texts = [str(t) for t in model_input]
        predictions = self.predictor.predict(texts)
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
    import json
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


def log_run(*, run_name: str, params: dict[str, str], metrics: dict[str, float],
            tags: dict[str, str], artifact_dir: Path, model_dir: Path, labels: list[str],
            dataset: pd.DataFrame, dataset_source: str, example: list[str]) -> LoggedRun:
    """Log one run (params, metrics, tags, input data, artifacts, model) and register the model."""
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags({**tags, "git_commit": git_commit()})
        data = mlflow.data.from_pandas(dataset, source=dataset_source, name="newsevents-sentences",
                                       targets="labels")
        mlflow.log_input(data, context="training")
        mlflow.log_artifacts(str(artifact_dir))
        model_uri = log_pyfunc_model(model_dir, labels, example)
        version = mlflow.register_model(model_uri, REGISTERED_MODEL)
        client = MlflowClient()
        client.set_model_version_tag(REGISTERED_MODEL, version.version, SELECTION_METRIC,
                                     str(metrics[SELECTION_METRIC]))
        client.set_model_version_tag(REGISTERED_MODEL, version.version, "data_digest",
                                     tags["data_digest"])
    return LoggedRun(run.info.run_id, model_uri, str(version.version))


def champion(alias: str = CHAMPION) -> tuple[str, float, str] | None:
    """The current champion's (or ``alias``'s) version, selection metric and data digest, or
    ``None``."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except mlflow.exceptions.MlflowException:
        return None
    return (str(version.version), float(version.tags.get(SELECTION_METRIC, "-inf")),
            version.tags.get("data_digest", ""))


def promote_unless_worse(version: str, score: float, digest: str = "",
                         alias: str = CHAMPION) -> tuple[bool, str]:
    """Move ``alias`` (the champion) to ``version`` unless it scores below the model the alias
    points to; say why.

    A tie promotes: the newer model scores as well and carries the newer export (such as the
    numpy scorer, which older exports lack).
    """
    current = champion(alias)
    if current is not None and score < current[1]:
        caveat = ("; note: the champion was evaluated on other data, rerun its experiment to "
                  "compare like with like") if digest and current[2] != digest else ""
        return False, (f"{alias} stays at version {current[0]} ({SELECTION_METRIC} "
                       f"{current[1]:.3f} > {score:.3f}{caveat})")
    MlflowClient().set_registered_model_alias(REGISTERED_MODEL, alias, version)
    before = f"no {alias} yet" if current is None else (
        f"was version {current[0]} with {current[1]:.3f}")
    return True, f"{alias} → version {version} ({SELECTION_METRIC} {score:.3f}; {before})"


def download_model_dir(uri: str, dest: Path | None = None) -> Path:
    """The ``model.joblib`` + ``metadata.json`` directory inside a logged pyfunc model."""
    setup_uri = tracking_uri()
    mlflow.set_tracking_uri(setup_uri)
    mlflow.set_registry_uri(setup_uri)
    dest = dest or Path(tempfile.mkdtemp(prefix="newsevents-model-"))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    found = next((p.parent for p in local.rglob("metadata.json")), None)
    if found is None:
        raise FileNotFoundError(f"{uri}: no metadata.json in the model's artifacts")
    return found


def export_champion(target: Path = paths.CHAMPION_DIR, alias: str = CHAMPION) -> Path:
    """Copy the champion's (or ``alias``'s) model directory to ``target`` (atomically
    replaced)."""
    current = champion(alias)
    if current is None:
        raise LookupError(f"no '{alias}' alias on registered model {REGISTERED_MODEL!r}")
    with tempfile.TemporaryDirectory() as tmp:
        source = download_model_dir(f"models:/{REGISTERED_MODEL}@{alias}", Path(tmp))
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
        input_example=pd.DataFrame({"text": example}), pip_requirements=_requirements(model_dir),
        code_paths=[str(Path(__file__).parent)],
    )
    return info.model_uri
