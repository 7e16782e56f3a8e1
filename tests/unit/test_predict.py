"""Predictor: safe loading (digest, metadata, label/model agreement), thresholds, stable ids."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import joblib
import numpy as np
import pytest

from newsevents import paths
from newsevents.corpus import Sentence, split_article
from newsevents.predict import METADATA_FILE, MODEL_FILE, ModelError, Predictor, save_model_dir

SEED_ARTICLES = sorted(paths.RAW.glob("*.txt"))
# What the prediction path must never import (architecture: "labeling must start fast").
FORBIDDEN = ("mlflow", "datasets", "newsevents.train", "newsevents.evaluate",
             "newsevents.tracking", "newsevents.config", "newsevents.dataset", "sklearn", "scipy")


class FixedScores:
    """A stand-in pipeline that returns given scores, to test the decision rule alone."""

    def __init__(self, scores: list[list[float]]):
        self.rows = np.asarray(scores)

    def predict_proba(self, texts):
        return np.resize(self.rows, (len(texts), self.rows.shape[1]))


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def test_load_checks_and_predicts(tiny_model_dir, schema):
    predictor = Predictor.load(tiny_model_dir)
    assert predictor.labels == schema.names
    assert predictor.directory == tiny_model_dir
    [prediction] = predictor.predict(["Japan pledged $50 million in humanitarian aid to Kenya."])
    assert "aid_pledge" in prediction.labels
    assert set(prediction.scores) == set(schema.names)
    assert all(0.0 <= s <= 1.0 for s in prediction.scores.values())


def test_labels_are_the_scores_at_or_above_each_threshold():
    predictor = Predictor(FixedScores([[0.5, 0.49999, 0.9, 0.2]]), ["a", "b", "c", "d"],
                          [0.5, 0.5, 0.95, 0.1])
    [p1, p2] = predictor.predict(["one", "two"])
    assert p1.labels == ["a", "d"] and p2.labels == ["a", "d"]
    assert p1.scores == {"a": 0.5, "b": 0.5, "c": 0.9, "d": 0.2}  # rounded to 4 places
    assert predictor.predict([]) == []


def test_wrong_score_shape_is_a_model_error():
    predictor = Predictor(FixedScores([[0.1, 0.2]]), ["a", "b", "c"], [0.5] * 3)
    with pytest.raises(ModelError, match="shape"):
        predictor.predict(["x"])


@pytest.mark.parametrize("path", SEED_ARTICLES, ids=lambda p: p.stem)
def test_label_article_keeps_split_article_sentences_and_ids(tiny_model_dir, path):
    text = path.read_text(encoding="utf-8")
    expected = split_article(text, path.stem)
    labeled = Predictor.load(tiny_model_dir).label_article(text, path.stem)
    assert [(s.article_id, s.index, s.sentence_id, s.text) for s in labeled] == \
        [(s.article_id, s.index, s.id, s.text) for s in expected]


def test_label_sentences_batches_across_articles(tiny_model_dir):
    predictor = Predictor.load(tiny_model_dir)
    sentences = [Sentence("a", 0, "s1", "Russia was accused of shelling the port."),
                 Sentence("b", 3, "s2", "The ministers met in Geneva on Monday.")]
    labeled = predictor.label_sentences(sentences)
    assert [(s.article_id, s.index, s.sentence_id) for s in labeled] == \
        [("a", 0, "s1"), ("b", 3, "s2")]
    assert [s.scores for s in labeled] == [p.scores for p in predictor.predict(
        [s.text for s in sentences])]


def test_tampered_model_is_refused_before_unpickling(model_copy, monkeypatch):
    with (model_copy / MODEL_FILE).open("ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("unpickled a tampered file"))
    with pytest.raises(ModelError, match=r"model\.joblib: sha256 .* does not match") as exc:
        Predictor.load(model_copy, engine="sklearn")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["scorer.json", "scorer.npz"])
def test_tampered_scorer_file_is_refused(model_copy, name):
    with (model_copy / name).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=rf"{name}: sha256 .* does not match") as exc:
        Predictor.load(model_copy)
    assert "\n" not in str(exc.value)


def test_numpy_engine_never_reads_the_pickle(model_copy):
    (model_copy / MODEL_FILE).unlink()
    predictor = Predictor.load(model_copy)
    assert predictor.engine == "numpy"
    assert predictor.predict(["Japan pledged aid."])[0].scores
    with pytest.raises(ModelError, match=r"model\.joblib: model file missing"):
        Predictor.load(model_copy, engine="sklearn")


def test_both_engines_give_the_same_scores(tiny_model_dir):
    texts = [s.text for p in SEED_ARTICLES for s in split_article(p.read_text(encoding="utf-8"))]
    fast, pickled = (Predictor.load(tiny_model_dir, engine=e) for e in ("numpy", "sklearn"))
    assert (fast.engine, pickled.engine) == ("numpy", "sklearn")
    np.testing.assert_allclose(fast.scores(texts), pickled.scores(texts), rtol=0, atol=1e-9)


def test_model_without_scorer_loads_from_its_pickle(tmp_path, schema, table):
    from newsevents.config import parse_config
    from newsevents.dataset import multi_hot
    from newsevents.models import build_pipeline

    config = parse_config({"name": "char", "features": [{"type": "tfidf_char"}],
                           "model": {"type": "logreg"}})
    pipeline = build_pipeline(config, schema).fit(list(table["text"]), multi_hot(table, schema))
    directory = save_model_dir(tmp_path / "char", pipeline, schema.names, [0.5] * len(schema))
    meta = json.loads((directory / METADATA_FILE).read_text())
    assert "scorer" not in meta and "only plain word TF-IDF" in meta["scorer_skipped"]
    assert not (directory / "scorer.npz").exists()
    assert Predictor.load(directory).engine == "sklearn"
    with pytest.raises(ModelError, match="no numpy scorer in this model"):
        Predictor.load(directory, engine="numpy")


def test_missing_default_model_names_make_train(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CHAMPION_DIR", tmp_path / "models" / "champion")
    with pytest.raises(ModelError, match=r"champion: no model found.*run `make train`"):
        Predictor.load()
    with pytest.raises(ModelError, match="make train"):
        Predictor.load(tmp_path / "elsewhere")


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda m: "{not json", "unreadable model metadata"),
    (lambda m: json.dumps({k: v for k, v in m.items() if k != "sha256"}), "KeyError"),
    (lambda m: json.dumps({**m, "labels": "aid_pledge"}), "non-empty list"),
    (lambda m: json.dumps({**m, "thresholds": m["thresholds"][:-1]}), "4 labels but 3"),
])
def test_bad_metadata_is_one_line_naming_the_file(model_copy, edit, problem):
    meta_file = model_copy / METADATA_FILE
    meta_file.write_text(edit(json.loads(meta_file.read_text())))
    with pytest.raises(ModelError, match=problem) as exc:
        Predictor.load(model_copy)
    assert str(exc.value).startswith(str(meta_file)) and "\n" not in str(exc.value)


@pytest.mark.parametrize("engine", ["numpy", "sklearn"])
def test_model_that_does_not_match_its_labels_is_refused(tiny_model_dir, tmp_path, engine):
    tiny = Predictor.load(tiny_model_dir, engine="sklearn")
    directory = save_model_dir(tmp_path / "mismatch", tiny.model, tiny.labels[:3], [0.5] * 3)
    with pytest.raises(ModelError, match=r"gives 4 scores per sentence but metadata\.json lists 3"):
        Predictor.load(directory, engine=engine)


def test_unloadable_pickle_is_a_model_error(model_copy):
    from newsevents.predict import file_sha256

    (model_copy / MODEL_FILE).write_bytes(b"not a pickle")
    meta = json.loads((model_copy / METADATA_FILE).read_text())
    meta["sha256"] = file_sha256(model_copy / MODEL_FILE)
    (model_copy / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="cannot load model"):
        Predictor.load(model_copy, engine="sklearn")


def test_prediction_path_stays_lean(tiny_model_dir):
    code = (f"import sys; import newsevents.predict, newsevents.batch; "
            f"from newsevents import Predictor; "
            f"Predictor.load({str(tiny_model_dir)!r}).label_article('Japan pledged aid.'); "
            f"print([m for m in {FORBIDDEN!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"


# Not even on a branch that a run may not take (a lazy import inside a function counts).
PREDICTION_MODULES = ("predict", "batch", "output", "corpus", "scorer", "lexicon")
TRAINING_SIDE = ("mlflow", "datasets", "newsevents.tracking", "newsevents.train",
                 "newsevents.evaluate", "newsevents.models", "newsevents.dataset",
                 "newsevents.config", "newsevents.modelcard")


@pytest.mark.parametrize("module", PREDICTION_MODULES)
def test_prediction_modules_import_nothing_of_training_or_mlflow(module):
    import ast

    source = paths.ROOT / "src" / "newsevents" / f"{module}.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    assert not {name for name in imported
                if any(name == t or name.startswith(f"{t}.") for t in TRAINING_SIDE)}


def test_scorer_that_drifts_from_the_pipeline_is_not_exported(tiny_model_dir, tmp_path,
                                                              monkeypatch):
    from newsevents import scorer

    pipeline = Predictor.load(tiny_model_dir, engine="sklearn").model
    exact = scorer.LinearScorer.predict_proba
    monkeypatch.setattr(scorer.LinearScorer, "predict_proba",
                        lambda self, texts: exact(self, texts) + 1e-6)
    directory = save_model_dir(tmp_path / "drift", pipeline, ["a", "b", "c", "d"], [0.5] * 4)
    meta = json.loads((directory / METADATA_FILE).read_text())
    assert "scorer" not in meta and "differ from the pipeline's by up to 1.0e-06" in \
        meta["scorer_skipped"]
    assert not any((directory / name).exists() for name in scorer.FILES)
    assert Predictor.load(directory).engine == "sklearn"


def test_multiclass_predictor_gives_the_top_label_only():
    predictor = Predictor(FixedScores([[0.2, 0.5, 0.3], [0.0, 0.0, 0.0]]), ["a", "b", "c"],
                          None, multiclass=True)
    [p1, p2] = predictor.predict(["one", "two"])
    assert p1.labels == ["b"] and p1.scores == {"a": 0.2, "b": 0.5, "c": 0.3}
    assert p2.labels == ["a"]  # a tie goes to the first label: never none
    with pytest.raises(ModelError, match="no thresholds"):
        Predictor(FixedScores([[1.0]]), ["a"], [0.5], multiclass=True)
    with pytest.raises(ModelError, match="2 labels but 0 thresholds"):
        Predictor(FixedScores([[1.0, 0.0]]), ["a", "b"], None)


@pytest.fixture(scope="module")
def multiclass_model_dir(tmp_path_factory, table):
    """A multiclass TF-IDF + logistic-regression model: one class per sentence (its first label,
    or "none"), saved with its metadata."""
    from newsevents.config import parse_config
    from newsevents.dataset import multi_hot
    from newsevents.labels import Label, LabelSchema
    from newsevents.models import build_pipeline

    labels = (Label("pledge", ""), Label("meeting", ""), Label("none", ""))
    schema = LabelSchema(labels, type="multiclass")
    target = table.assign(labels=[["pledge"] if "aid_pledge" in ls else ["meeting"]
                                  if "diplomatic_meeting" in ls else ["none"]
                                  for ls in table["labels"]])
    config = parse_config({"name": "mc", "features": [{"type": "tfidf_word"}],
                           "model": {"type": "logreg"}})
    pipeline = build_pipeline(config, schema).fit(list(target["text"]),
                                                  multi_hot(target, schema))
    return save_model_dir(tmp_path_factory.mktemp("model") / "mc", pipeline, schema.names,
                          None, check_texts=list(target["text"][:50]), schema_type="multiclass")


@pytest.mark.parametrize("engine", ["numpy", "sklearn"])
def test_multiclass_model_round_trip(multiclass_model_dir, engine):
    meta = json.loads((multiclass_model_dir / METADATA_FILE).read_text())
    assert meta["type"] == "multiclass" and "thresholds" not in meta and "scorer" in meta
    predictor = Predictor.load(multiclass_model_dir, engine=engine)
    assert predictor.multiclass and predictor.engine == engine
    predictions = predictor.predict(["Japan pledged $50 million in aid to Kenya.",
                                     "The ministers met in Seoul on Tuesday.", "It rained."])
    assert [p.labels for p in predictions] == [["pledge"], ["meeting"], ["none"]]
    assert all(sum(p.scores.values()) == pytest.approx(1, abs=1e-3) for p in predictions)


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda m: json.dumps({**m, "type": "ordinal"}), "type must be multilabel or multiclass"),
    (lambda m: json.dumps({**m, "thresholds": [0.5, 0.5, 0.5]}), "multiclass model has no "
                                                                  "thresholds"),
])
def test_bad_multiclass_metadata_is_one_line(multiclass_model_dir, tmp_path, edit, problem):
    copy = shutil.copytree(multiclass_model_dir, tmp_path / "model")
    meta = json.loads((copy / METADATA_FILE).read_text())
    (copy / METADATA_FILE).write_text(edit(meta))
    with pytest.raises(ModelError, match=f"metadata.json: unreadable model metadata.*{problem}"):
        Predictor.load(copy)
