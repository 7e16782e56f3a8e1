"""An accurate-tier model (encoder features) exports without pickle and serves from its arrays.

Uses the tiny encoder fixture (``tests/tiny_encoder.py``), installed from pinned wheels.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from newsevents import encoder, paths
from newsevents.config import ConfigError, parse_config
from newsevents.dataset import multi_hot
from newsevents.models import build_pipeline, encoders_used
from newsevents.predict import ModelError, Predictor, save_model_dir

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def accurate_dir(tiny_encoder, schema, table, tmp_path_factory):
    config = parse_config({"name": "acc", "features": [
        {"type": "tfidf_word", "min_df": 2}, {"type": "encoder", "model": tiny_encoder}],
        "model": {"type": "logreg"}})
    pipeline = build_pipeline(config, schema)
    texts = list(table["text"])
    pipeline.fit(texts, multi_hot(table, schema))
    directory = tmp_path_factory.mktemp("acc") / "model"
    save_model_dir(directory, pipeline, schema.names, [0.5] * len(schema),
                   check_texts=texts[:200], encoders=encoders_used(pipeline))
    return directory, pipeline


def test_export_is_pickle_free_and_names_the_encoder(accurate_dir, tiny_encoder):
    directory, _ = accurate_dir
    meta = json.loads((directory / "metadata.json").read_text())
    assert "scorer_skipped" not in meta, meta.get("scorer_skipped")
    assert meta["scorer"]["max_abs_difference"] <= 1e-5
    installed = encoder.load_encoder(tiny_encoder)
    assert meta["encoders"] == [{"name": tiny_encoder, "sha256": installed.digest}]
    spec = json.loads((directory / "scorer.json").read_text())
    assert {"type": "encoder", "name": tiny_encoder, "sha256": installed.digest,
            "dim": installed.dim} in spec["blocks"]


def test_predictor_serves_it_from_arrays(accurate_dir, table):
    directory, pipeline = accurate_dir
    predictor = Predictor.load(directory)
    assert predictor.engine == "numpy"
    texts = [*table["text"].sample(50, random_state=1), "", "Unseen words entirely."]
    np.testing.assert_allclose(predictor.scores(texts), pipeline.predict_proba(texts),
                               rtol=0, atol=1e-5)


def test_cli_predict_takes_an_accurate_model(accurate_dir, tmp_path):
    from newsevents.cli import main

    directory, _ = accurate_dir
    article = sorted(paths.RAW.glob("*.txt"))[0]
    out = tmp_path / "labels.jsonl"
    assert main(["predict", str(article), "--model", str(directory), "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # the same labels and scores as the Python API gives for the article's sentences
    expected = Predictor.load(directory).predict([row["text"] for row in rows])
    assert rows and [r["labels"] for r in rows] == [p.labels for p in expected]
    for row, prediction in zip(rows, expected, strict=True):
        assert {k[len("score_"):]: v for k, v in row.items() if k.startswith("score_")} == \
            pytest.approx(prediction.scores, abs=1e-4)


def test_missing_or_other_encoder_is_one_clear_error(accurate_dir, tiny_encoder, tmp_path,
                                                     monkeypatch):
    directory, _ = accurate_dir
    encoder.clear_cache()
    monkeypatch.setenv("NEWSEVENTS_ENCODERS", str(tmp_path / "nothing"))
    with pytest.raises(ModelError, match=r"not installed .*newsevents encoder install tiny-bert"):
        Predictor.load(directory)
    # The same name, another build: the model refuses it rather than score with it.
    monkeypatch.undo()
    encoder.clear_cache()
    spec = json.loads((directory / "scorer.json").read_text())
    for block in spec["blocks"]:
        if block["type"] == "encoder":
            block["sha256"] = "f" * 64
    other = tmp_path / "other"
    other.mkdir()
    for f in directory.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    (other / "scorer.json").write_text(json.dumps(spec))
    meta = json.loads((other / "metadata.json").read_text())
    meta["scorer"]["files"]["scorer.json"] = encoder.file_sha256(other / "scorer.json")
    (other / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"trained with encoder 'tiny-bert' build ffffffffffff"):
        Predictor.load(other)


def test_fast_models_never_import_the_encoder(tiny_model_dir):
    code = (f"import sys; from newsevents import Predictor; "
            f"Predictor.load({str(tiny_model_dir)!r}).label_article('Japan pledged aid.'); "
            f"print([m for m in ('newsevents.encoder', 'onnxruntime') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_encoder_config_is_checked():
    with pytest.raises(ConfigError, match=r"features\[0\]'.model: must be one of mpnet-base"):
        parse_config({"name": "x", "features": [{"type": "encoder", "model": "bert-huge"}],
                      "model": {"type": "logreg"}})
    with pytest.raises(ConfigError, match="unknown key 'pooling'"):
        parse_config({"name": "x", "features": [{"type": "encoder", "pooling": "cls"}],
                      "model": {"type": "logreg"}})
