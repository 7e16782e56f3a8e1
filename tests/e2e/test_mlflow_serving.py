"""The registered pyfunc works with the standard MLflow tools: load_model, `mlflow models predict`
and `mlflow models serve`, against a temporary SQLite store (never the project's mlflow.db)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from newsevents.predict import ModelError, Predictor

pytestmark = pytest.mark.slow
mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")

BIN = Path(sys.executable).parent
CHAMPION_URI = "models:/newsevents@champion"
SENTENCES = ["Japan pledged $50 million in humanitarian aid to Kenya.",
             "Russia was accused of shelling the port, officials said.",
             "The foreign ministers met in Geneva on Monday.",
             "The government lifted its ban on arms exports."]


@pytest.fixture(scope="module")
def store(registered_model):
    """The registered tiny model (see conftest), and an environment to serve it from."""
    root, model_uri = registered_model
    # `mlflow models serve` runs `uvicorn` from PATH: the venv's bin must be on it.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    return {"root": root, "env": env, "model_uri": model_uri}


def expected(tiny_model_dir) -> list[dict]:
    predictor = Predictor.load(tiny_model_dir)
    return [{"labels": ";".join(p.labels), **{f"score_{n}": s for n, s in p.scores.items()}}
            for p in predictor.predict(SENTENCES)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_pyfunc_gives_one_prediction_per_row(store, tiny_model_dir):
    model = mlflow.pyfunc.load_model(store["model_uri"])
    out = model.predict(pd.DataFrame({"text": SENTENCES}))
    assert len(out) == len(SENTENCES)
    assert out.to_dict("records") == expected(tiny_model_dir)
    assert len(model.predict(pd.DataFrame({"text": SENTENCES[:1]}))) == 1
    assert model.unwrap_python_model().predictor.engine == "numpy"


def test_cli_labels_with_a_registered_model_and_cleans_up(store, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "labels.jsonl"
    subprocess.run([str(BIN / "newsevents"), "predict", "-", "--unit", "sentence", "--model",
                    CHAMPION_URI, "-o", str(out)], input="\n".join(SENTENCES), text=True,
                   env={**store["env"], "TMPDIR": str(scratch)}, cwd=store["root"],
                   capture_output=True, timeout=120, check=True)
    assert len(out.read_text().splitlines()) == len(SENTENCES)
    assert list(scratch.iterdir()) == []  # the downloaded model copy is gone


def test_predictor_loads_a_fetched_registered_model(store, tiny_model_dir, tmp_path,
                                                    monkeypatch):
    from newsevents.tracking import fetch_model

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    predictor = Predictor.load(fetch_model(CHAMPION_URI))
    assert predictor.predict(SENTENCES) == Predictor.load(tiny_model_dir).predict(SENTENCES)
    assert predictor.directory.is_relative_to(tmp_path)
    before = set(tmp_path.iterdir())
    with pytest.raises(ModelError, match=r"models:/newsevents@nobody: cannot fetch") as exc:
        fetch_model("models:/newsevents@nobody")
    assert "\n" not in str(exc.value)
    assert set(tmp_path.iterdir()) == before  # a failed fetch leaves no directory


def test_predictor_itself_takes_directories_only():
    with pytest.raises(ModelError, match=r"an MLflow URI, not a model directory; fetch it with "
                                         r"newsevents.tracking.fetch_model\(\)"):
        Predictor.load(CHAMPION_URI)


def test_fetched_model_removed_when_predict_is_terminated(store, tmp_path, large_input_dir):
    scratch, out = tmp_path / "tmp", tmp_path / "out"
    scratch.mkdir()
    out.mkdir()
    process = subprocess.Popen(
        [str(BIN / "newsevents"), "predict", str(large_input_dir), "--model", CHAMPION_URI,
         "-o", str(out / "labels.jsonl")], env={**store["env"], "TMPDIR": str(scratch)},
        cwd=store["root"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(out.glob(".*.part")) and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.05)
        assert any(out.glob(".*.part")), "no partial output after 120 s"
        assert list(scratch.iterdir()), "the model was not fetched into TMPDIR"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert list(scratch.iterdir()) == [] and list(out.iterdir()) == []


def test_mlflow_models_predict_and_serve(store, tiny_model_dir):
    root, env = store["root"], store["env"]
    port = free_port()
    # Start the server first: it boots while `mlflow models predict` runs.
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "models", "serve", "-m", CHAMPION_URI, "-h", "127.0.0.1",
         "-p", str(port), "--env-manager", "local"],
        env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=(root / "serve.log").open("w"),
        start_new_session=True)
    try:
        pd.DataFrame({"text": SENTENCES}).to_csv(root / "in.csv", index=False)
        subprocess.run([str(BIN / "mlflow"), "models", "predict", "-m", CHAMPION_URI,
                        "-i", str(root / "in.csv"), "-t", "csv", "-o", str(root / "out.json"),
                        "--env-manager", "local"], env=env, cwd=root, capture_output=True,
                       timeout=60, check=True)
        predicted = json.loads((root / "out.json").read_text())["predictions"]
        assert predicted == expected(tiny_model_dir)

        wait_for(f"http://127.0.0.1:{port}/ping", server, root / "serve.log", timeout=30)
        body = json.dumps({"dataframe_split": {"columns": ["text"],
                                               "data": [[s] for s in SENTENCES]}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            served = json.loads(response.read())["predictions"]
        assert served == expected(tiny_model_dir)
    finally:
        stop(server)


def wait_for(url: str, server: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited with {server.returncode}: {log.read_text()[-500:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.25)
    pytest.fail(f"{url} did not answer within {timeout} s: {log.read_text()[-500:]}")


def stop(server: subprocess.Popen) -> None:
    """Stop the server's whole process group (mlflow starts uvicorn as a child)."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def test_logging_a_run_prints_no_warning(tiny_model_dir, tmp_path):
    """What `make train` does per run, in a fresh process with Python's default warning
    filters: no advice on type hints, no ambiguous dataset source, no warning at all."""
    (tmp_path / "artifacts").mkdir()
    code = f"""
import pandas as pd
from newsevents import tracking
from newsevents.predict import Predictor
tracking.setup()
labels = Predictor.load({str(tiny_model_dir)!r}).labels
with tracking.open_run("quiet"):
    tracking.log_run(params={{"model.type": "logreg"}}, metrics={{"macro_f1": 0.5}},
                     tags={{"data_digest": "abc"}}, artifact_dir={str(tmp_path / "artifacts")!r},
                     model_dir={str(tiny_model_dir)!r}, labels=labels,
                     dataset=pd.DataFrame({{"text": {SENTENCES!r}, "labels": ["", "", "", ""]}}),
                     dataset_source={str(tmp_path)!r}, example={SENTENCES[:1]!r})
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path,
                            env={**os.environ,
                                 "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"})
    assert result.returncode == 0, result.stderr
    assert "warn" not in result.stderr.lower(), result.stderr
