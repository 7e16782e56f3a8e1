"""Experiment YAML files: parsing and clear errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsevents import paths
from newsevents.config import ConfigError, default_configs, load_config, parse_config, resolve


def test_every_shipped_experiment_parses():
    configs = [load_config(p) for p in sorted(paths.EXPERIMENTS.glob("*.yaml"))]
    assert len(configs) >= 6
    assert len({c.name for c in configs}) == len(configs)
    assert {c.model.type for c in default_configs()} >= {"prior", "lexicon", "logreg"}


def test_flat_params_cover_nested_sections():
    config = parse_config({"name": "x", "features": [{"type": "tfidf_word", "min_df": 2}],
                           "model": {"type": "logreg", "params": {"C": 2.0}}})
    params = config.flat_params()
    assert params["model.params.C"] == "2.0"
    assert params["features.0.params.min_df"] == "2"
    assert params["evaluation.folds"] == "5"


@pytest.mark.parametrize(("raw", "key"), [
    ({"model": {"type": "logreg"}}, "'name'"),
    ({"name": "x", "model": {"type": "forest"}}, "'model.type'"),
    ({"name": "x", "model": {"type": "logreg"}, "features": [{"type": "bert"}]},
     "'features[0].type'"),
    ({"name": "x", "model": {"type": "logreg"}}, "'features'"),
    ({"name": "x", "model": {"type": "prior"}, "evaluation": {"folds": 1}}, "'evaluation.folds'"),
    ({"name": "x", "model": {"type": "prior"}, "seeds": 3}, "unknown key 'seeds'"),
    ({"name": "x", "model": {"type": "prior"}, "data": {"source": "nope.csv"}}, "'data.source'"),
    ({"name": "x", "model": {"type": "prior"}, "data": {"schema": "nope.yaml"}}, "'data.schema'"),
])
def test_bad_configs_name_the_key(raw, key):
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "exp.yaml")
    assert "exp.yaml" in str(err.value) and key in str(err.value)


def test_unreadable_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid UTF-8 YAML"):
        load_config(path)


def test_data_paths_resolve_from_the_working_directory_then_the_project(tmp_path, monkeypatch):
    (tmp_path / "mine.csv").write_text("text,labels\n")
    (tmp_path / "mine.yaml").write_text("labels:\n  - {name: a}\n")
    monkeypatch.chdir(tmp_path)
    config = parse_config({"name": "x", "model": {"type": "prior"},
                           "data": {"source": "mine.csv", "schema": "mine.yaml"}})
    assert resolve(config.data.source) == Path("mine.csv")
    assert resolve(config.data.schema).resolve() == tmp_path / "mine.yaml"
    assert resolve("data/labels.yaml") == paths.DEFAULT_SCHEMA  # not here: the project's
