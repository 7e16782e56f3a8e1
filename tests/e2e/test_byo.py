"""Training on your own labeled data, as the README shows it: the example under examples/ end to
end (train, MLflow run, predict) with the default champion left alone, and bad files refused
with one line and nothing written.

Exports go to a temporary directory: ``paths.MODELS`` and ``paths.CHAMPION_DIR`` are
monkeypatched (every export location is read from them at call time), and MLflow logs to a
SQLite store in the same directory.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from newsevents import paths
from newsevents.cli import main

EXAMPLE = paths.ROOT / "examples" / "own-data"
SCHEMA = yaml.safe_load((EXAMPLE / "labels.yaml").read_text(encoding="utf-8"))
NAME = SCHEMA["name"]


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir())}


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A temporary models/ directory and MLflow store; the working directory is tmp_path."""
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    monkeypatch.setattr(paths, "CHAMPION_DIR", tmp_path / "models" / "champion")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # a server-style URI puts artifacts under ./mlruns
    return tmp_path


def test_readme_example_trains_predicts_and_leaves_the_default_champion(home, tiny_model_dir,
                                                                        capsys, monkeypatch):
    from mlflow.tracking import MlflowClient

    from newsevents import tracking

    # A default champion to leave alone: an exported model and its registered version.
    shutil.copytree(tiny_model_dir, paths.CHAMPION_DIR)
    before = digests(paths.CHAMPION_DIR)
    uri = tracking.tracking_uri()
    client = MlflowClient(uri, uri)  # both: the registry URI would be a previous test's
    client.create_experiment(tracking.EXPERIMENT,
                             artifact_location=(home / "mlartifacts").as_uri())
    tracking.setup()
    client.create_registered_model(tracking.REGISTERED_MODEL)
    default = client.create_model_version(tracking.REGISTERED_MODEL,
                                          source=paths.CHAMPION_DIR.as_uri())
    client.set_registered_model_alias(tracking.REGISTERED_MODEL, tracking.CHAMPION,
                                      default.version)

    # Exactly the README's commands, from the project root (artifacts stay in tmp_path).
    monkeypatch.chdir(paths.ROOT)
    project = set(paths.ROOT.iterdir())
    assert main(["train", "examples/own-data/experiment.yaml"]) == 0
    table = capsys.readouterr().out
    assert "accuracy" in table and "grouped cross-validation by document" in table
    exported = paths.MODELS / NAME / "champion"
    articles = home / "articles.txt"
    articles.write_text("Voters queued for hours outside the polling stations.\n"
                        "The striker scored twice in the derby.\n", encoding="utf-8")
    assert main(["predict", str(articles), "--unit", "sentence", "--model", str(exported),
                 "--output", str(home / "labeled.jsonl")]) == 0

    rows = [json.loads(line) for line in (home / "labeled.jsonl").read_text().splitlines()]
    names = [label["name"] for label in SCHEMA["labels"]]
    assert len(rows) == 2 and all(len(row["labels"]) == 1 for row in rows)
    assert [row["labels"][0] for row in rows] == ["election", "sport"]
    for row in rows:  # one label: the top score, the scores a distribution over the classes
        scores = {n: row[f"score_{n}"] for n in names}
        assert row["labels"][0] == max(scores, key=scores.get)
        assert sum(scores.values()) == pytest.approx(1, abs=1e-3)

    metadata = json.loads((exported / "metadata.json").read_text())
    assert metadata["type"] == "multiclass" and "thresholds" not in metadata
    assert "scorer" in metadata  # served by the numpy scorer, checked against the pipeline

    # The run: metrics, the K×K confusion matrix, tags; the schema's own registered model.
    version = client.get_model_version_by_alias(NAME, tracking.CHAMPION)
    run = client.get_run(version.run_id)
    assert {"accuracy", "macro_f1", "macro_f1_ci_low", "f1_election"} <= set(run.data.metrics)
    assert run.data.tags["schema_type"] == "multiclass"
    assert run.data.tags["cv_unit"] == "document"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "classification_report.txt"} <= artifacts
    report = Path(client.download_artifacts(run.info.run_id, "classification_report.txt",
                                            str(home))).read_text()
    assert "accuracy" in report and "confusion matrix" in report

    # Nothing written in the project; the default champion: same files, same single version,
    # alias unmoved.
    assert set(paths.ROOT.iterdir()) == project
    assert digests(paths.CHAMPION_DIR) == before
    assert [str(v.version) for v in client.search_model_versions(
        f"name='{tracking.REGISTERED_MODEL}'")] == [str(default.version)]
    assert tracking.champion()[0] == str(default.version)


SENTENCES = "text,labels\nThe striker scored twice.,sport\nTurnout was high.,election\n"


@pytest.mark.parametrize(("data", "schema_edit", "problem"), [
    ("", None, r"sentences\.csv: empty file"),
    ("sentence,labels\nTurnout was high.,election\n", None,
     r"sentences\.csv: missing column\(s\) text"),
    ("text,label\nTurnout was high.,election\n", None,
     r"sentences\.csv: missing column\(s\) labels"),
    (SENTENCES + "Rain fell.,weather\n", None,
     r"sentences\.csv:4: unknown label 'weather'"),
    (SENTENCES + "Rain fell.,\n", None,
     r"sentences\.csv:4: 0 labels \(none\) but schema .*labels\.yaml is multiclass"),
    (SENTENCES + "The mayor ran the marathon.,election;sport\n", None,
     r"sentences\.csv:4: 2 labels \(election;sport\) but schema .* is multiclass"),
    (SENTENCES, {"type": "singlelabel"},
     r"labels\.yaml: type must be multilabel or multiclass, got 'singlelabel'"),
    (SENTENCES, {"labels": "election"}, r"labels\.yaml: expected a mapping with a non-empty"),
    (SENTENCES, {"name": "newsevents"}, r"labels\.yaml: schema name 'newsevents' is the "
                                        r"project's own model's"),
    ("document_id,text,labels\nd1,The striker scored twice.,sport\n"
     "d1,Turnout was high.,election\n", None, r"sentences\.csv: the sentences form 1 fold unit"),
])
def test_bad_file_is_one_line_and_nothing_is_written(home, capsys, data, schema_edit, problem):
    (home / "sentences.csv").write_text(data, encoding="utf-8")
    (home / "labels.yaml").write_text(yaml.safe_dump({**SCHEMA, **(schema_edit or {})}),
                                      encoding="utf-8")
    (home / "experiment.yaml").write_text(yaml.safe_dump({
        "name": "bad", "data": {"source": "sentences.csv", "schema": "labels.yaml"},
        "features": [{"type": "tfidf_word"}], "model": {"type": "logreg"}}), encoding="utf-8")
    inputs = set(home.iterdir())

    assert main(["train", "experiment.yaml"]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("newsevents train: error: ")
    assert re.search(problem, line), line
    assert set(home.iterdir()) == inputs  # no store, no mlruns, no models
