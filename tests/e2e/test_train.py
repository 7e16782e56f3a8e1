"""Training end to end on a small label set of our own, against a temporary MLflow store."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

# A small label set of our own: four "stories" of varied sentences.
STORIES = {
    "cup": [
        ("Lions beat Eagles 3-1 in the cup final on Saturday.", "sports"),
        ("The striker scored twice before half time.", "sports"),
        ("Fans crowded the stadium hours before kick-off.", "sports"),
        ("Heavy rain made the pitch slippery during the second half.", "sports;weather"),
        ("The club's shares rose after the quarterly report.", ""),
        ("A cold front will bring snow to the northern valleys tonight.", "weather"),
        ("The mayor opened a new library in the old town.", ""),
        ("Coach Ramos praised his defenders after the victory.", "sports"),
        ("Forecasters warned of gale-force winds along the coast.", "weather"),
    ],
    "storm": [
        ("A tropical storm flooded roads across the delta.", "weather"),
        ("Temperatures dropped below freezing for the first time this autumn.", "weather"),
        ("The marathon was postponed because of thunderstorms.", "sports;weather"),
        ("Parliament approved the budget after a long debate.", ""),
        ("Hail damaged vineyards in the south on Tuesday.", "weather"),
        ("The tennis champion withdrew with a wrist injury.", "sports"),
        ("Local bakeries raised bread prices again.", ""),
        ("A heatwave pushed the thermometer past 40 degrees.", "weather"),
        ("The cycling team won the mountain stage.", "sports"),
    ],
    "league": [
        ("Rovers clinched the league title with two games to spare.", "sports"),
        ("Dense fog grounded flights at the regional airport.", "weather"),
        ("The goalkeeper saved a penalty in stoppage time.", "sports"),
        ("The city council voted to extend the tram line.", ""),
        ("Drizzle and mist are expected through the weekend.", "weather"),
        ("The derby ended goalless in freezing sleet.", "sports;weather"),
        ("A new museum of maps opened downtown.", ""),
        ("The relay squad broke the national record.", "sports"),
        ("Monsoon rains arrived two weeks early this year.", "weather"),
    ],
    "open": [
        ("The golfer sank a long putt to win the open.", "sports"),
        ("Strong gusts toppled trees in the park overnight.", "weather"),
        ("The sailing regatta was cancelled as winds reached storm force.", "sports;weather"),
        ("The central bank kept interest rates unchanged.", ""),
        ("Sunshine and mild temperatures will return by Thursday.", "weather"),
        ("The boxer retained his title on points.", "sports"),
        ("Farmers protested against new import rules.", ""),
        ("The swimmer set a world record in the final.", "sports"),
        ("Snowdrifts blocked the mountain pass for three days.", "weather"),
    ],
}


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A label schema, a labeled CSV (four stories), two configs and an MLflow store."""
    (tmp_path / "labels.yaml").write_text(yaml.safe_dump({"labels": [
        {"name": "sports", "definition": "sport", "keywords": [
            "match", "cup", "won", "win", "scor", "team", "champion", "title", "record", "goal",
            "stadium", "coach", "final", "derby", "regatta", "marathon", "striker"]},
        {"name": "weather", "definition": "weather", "keywords": [
            "rain", "snow", "storm", "wind", "gust", "temperature", "fog", "heat", "hail",
            "sleet", "sun", "monsoon", "mist", "drizzle", "freez", "forecast"]}]}))
    rows = [{"text": text, "labels": labels, "story_id": story}
            for story, items in STORIES.items() for text, labels in items]
    with (tmp_path / "labeled.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "labels", "story_id"])
        writer.writeheader()
        writer.writerows(rows)
    common = {"seed": 5, "data": {"source": str(tmp_path / "labeled.csv"),
                                  "schema": str(tmp_path / "labels.yaml"), "authored": False},
              "evaluation": {"folds": 3, "repeats": 2, "bootstrap": 200, "inner_folds": 2}}
    for name, model, features in (("good", {"type": "logreg"},
                                   [{"type": "tfidf_word"}, {"type": "lexicon"}]),
                                  ("floor", {"type": "prior"}, [])):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(
            {"name": name, "model": model, "features": features, **common}))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # a server-style URI puts artifacts under ./mlruns
    return tmp_path


def test_train_logs_registers_promotes_and_exports(project):
    from mlflow.tracking import MlflowClient

    from newsevents import tracking
    from newsevents.config import load_config
    from newsevents.modelcard import MODEL_CARD_FILE
    from newsevents.predict import Predictor
    from newsevents.train import train

    [good] = train([load_config(project / "good.yaml")], export=False)
    assert good.promoted and good.version == "1"
    assert good.metrics["macro_f1"] > 0.8
    assert good.metrics["macro_f1_ci_low"] <= good.metrics["macro_f1"] <= good.metrics[
        "macro_f1_ci_high"]

    client = MlflowClient()
    run = client.get_run(good.run_id)
    assert {"f1_sports", "f1_weather", "macro_f1", "micro_f1", "macro_f1_ci_low",
            "cv_seconds", "n_cv_units"} <= set(run.data.metrics)
    assert run.data.tags["cv_unit"] == "document"  # the file has a story_id column
    assert run.data.metrics["n_cv_units"] == 4
    assert run.data.params["model.type"] == "logreg"
    assert {"git_commit", "data_digest", "schema_digest"} <= set(run.data.tags)
    assert run.inputs.dataset_inputs, "dataset not logged as a run input"
    artifacts = {a.path for a in client.list_artifacts(good.run_id)}
    assert {"confusion_matrices.png", "pr_curves.png", "classification_report.txt",
            "misclassified.csv", "oof_predictions.csv"} <= artifacts
    # Another schema, another registered model: the project's own is never touched.
    assert good.model_name == "labels" and tracking.champion("labels")[0] == "1"
    assert tracking.champion() is None

    # A worse model is registered but the alias stays.
    [floor] = train([load_config(project / "floor.yaml")], export=False)
    assert floor.version == "2" and not floor.promoted
    assert floor.metrics["macro_f1"] < good.metrics["macro_f1"] - 0.1
    assert str(client.get_model_version_by_alias("labels", "champion").version) == "1"
    assert "champion stays at version 1" in floor.message

    exported = tracking.export_champion(project / "models" / "champion", "labels")
    predictor = Predictor.load(exported)
    assert predictor.labels == ["sports", "weather"]
    [rain] = predictor.predict(["Heavy rain and snow are expected overnight."])
    assert "weather" in rain.labels

    # The model card travels with the model: in the run, and beside the exported model.
    logged = Path(client.download_artifacts(good.run_id, MODEL_CARD_FILE, str(project)))
    assert (exported / MODEL_CARD_FILE).read_text() == logged.read_text()
    assert good.run_id in logged.read_text()


def test_runs_show_true_durations_the_champion_and_its_card(project):
    from mlflow.tracking import MlflowClient

    from newsevents import tracking
    from newsevents.config import load_config
    from newsevents.modelcard import MODEL_CARD_FILE
    from newsevents.train import train

    good, floor = train([load_config(project / "good.yaml"), load_config(project / "floor.yaml")],
                        export=False)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    # A model-training experiment, with the saved runs-table view that `newsevents ui` opens.
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert tracking.VIEW_TAG_PREFIX + tracking.RUNS_VIEW_KEY in experiment.tags
    url = tracking.ui_url("http://127.0.0.1:5000")
    assert url.startswith(f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs?")
    assert "workflowType=machine_learning" in url

    run, other = client.get_run(good.run_id), client.get_run(floor.run_id)
    # The run was open while the work ran: its duration covers the timed stages.
    m = run.data.metrics
    assert (run.info.end_time - run.info.start_time) / 1000 >= m["cv_seconds"] + m[
        "final_fit_seconds"]
    assert run.info.status == "FINISHED"

    # Only the champion's run carries the tag.
    assert run.data.tags[tracking.CHAMPION_TAG] == "yes"
    assert tracking.CHAMPION_TAG not in other.data.tags

    # The registered version says what it scored, on which data, and links its run.
    description = client.get_model_version(good.model_name, good.version).description
    assert f"{m['macro_f1']:.3f} [{m['macro_f1_ci_low']:.3f}, {m['macro_f1_ci_high']:.3f}]" \
        in description
    assert f"{m['micro_f1']:.3f}" in description
    assert run.data.tags["data_digest"] in description
    assert f"(#/experiments/{experiment.experiment_id}/runs/{good.run_id})" in description

    # The card's per-label scores are the run's own metrics.
    card = Path(client.download_artifacts(good.run_id, MODEL_CARD_FILE, str(project))).read_text()
    per_label = card.split("### Per label", 1)[1]
    for label in ("sports", "weather"):
        row = next(line for line in per_label.splitlines() if line.startswith(f"| `{label}` |"))
        assert row.endswith(f"| {m[f'recall_{label}']:.3f} | {m[f'f1_{label}']:.3f} |")
    assert good.run_id in card and "## Known weaknesses" in card

    # Moving the alias moves the tag.
    moved, _ = tracking.promote_unless_worse(floor.version, 1.0, model_name=good.model_name)
    assert moved
    assert tracking.CHAMPION_TAG not in client.get_run(good.run_id).data.tags
    assert client.get_run(floor.run_id).data.tags[tracking.CHAMPION_TAG] == "yes"


@pytest.mark.parametrize(("error", "status"), [(RuntimeError, "FAILED"),
                                               (KeyboardInterrupt, "KILLED")])
def test_a_run_that_stops_early_says_so(project, error, status):
    import mlflow

    from newsevents import tracking

    tracking.setup()
    with pytest.raises(error), tracking.open_run("broken") as run_id:
        raise error
    assert mlflow.active_run() is None
    assert mlflow.get_run(run_id).info.status == status


def test_same_config_gives_identical_metrics(project):
    from newsevents.config import load_config
    from newsevents.train import train

    config = load_config(project / "good.yaml")
    first, second = train([config, config], export=False)
    timing = {"cv_seconds", "final_fit_seconds"}
    assert {k: v for k, v in first.metrics.items() if k not in timing} == {
        k: v for k, v in second.metrics.items() if k not in timing}


def test_ui_command_prints_the_runs_table_address_and_starts_mlflow(project, monkeypatch,
                                                                    capsys):
    import os
    import sys

    from newsevents import cli, tracking

    started = []
    monkeypatch.setattr(os, "execv", lambda path, argv: started.append(argv))
    # set, then removed: monkeypatch then restores the unset state after the CLI's setdefault
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "")
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION")
    assert cli.main(["ui", "--port", "5099"]) == cli.EXIT_FAILURE  # only if execv returned
    printed = capsys.readouterr().out
    assert tracking.ui_url("http://127.0.0.1:5099") in printed
    assert started == [[sys.executable, "-m", "mlflow", "ui", "--backend-store-uri",
                        tracking.tracking_uri(), "--host", "127.0.0.1", "--port", "5099"]]
    assert os.environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_accurate_tier_has_its_own_alias_and_cache(project, tiny_encoder, monkeypatch):
    from newsevents import paths, tracking
    from newsevents.config import load_config
    from newsevents.predict import Predictor
    from newsevents.train import train

    monkeypatch.setattr(paths, "ENCODER_CACHE", project / "cache")
    config = yaml.safe_load((project / "good.yaml").read_text())
    config.update(name="acc", features=[*config["features"],
                                        {"type": "encoder", "model": tiny_encoder}])
    (project / "acc.yaml").write_text(yaml.safe_dump(config))
    # One process: the tiny encoder is registered in this one only.
    good, acc = train([load_config(project / "good.yaml"), load_config(project / "acc.yaml")],
                      export=False, n_jobs=1)
    assert (good.tier, acc.tier) == ("fast", "accurate")
    assert good.promoted and acc.promoted
    # the default stays the fast model
    assert tracking.champion(good.model_name)[0] == good.version
    assert tracking.champion(good.model_name, tracking.ACCURATE)[0] == acc.version
    assert len(list((project / "cache").rglob("shard-*.npz"))) == 1  # encoded once, up front
    exported = tracking.export_champion(project / "models" / "accurate", good.model_name,
                                        tracking.ACCURATE)
    predictor = Predictor.load(exported)
    assert predictor.engine == "numpy"
    assert predictor.metadata["encoders"][0]["name"] == tiny_encoder
    [rain] = predictor.predict(["Heavy rain and snow are expected overnight."])
    assert "weather" in rain.labels


def test_a_model_trained_on_soft_labels_is_the_student_not_the_champion(project, monkeypatch):
    import gzip
    import json

    import pandas as pd

    from newsevents import paths, tracking
    from newsevents.config import load_config
    from newsevents.corpus import split_article
    from newsevents.soft_labels import sidecar
    from newsevents.train import train

    docs = {"P1": "The striker scored twice as the team won the cup final. "
                  "Snow fell on the stadium overnight and the pitch froze.",
            "P2": "Heavy rain and strong wind are forecast for the weekend. "
                  "The coach praised his team after the derby."}
    pool = project / "pool.jsonl.gz"
    with gzip.open(pool, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"id": doc, "text": text}) + "\n"
                          for doc, text in docs.items())
    monkeypatch.setattr(paths, "POOLS", {"fake": pool})
    rows = [{"sentence_id": s.id, "source": "fake", "document_id": doc, "stratum": "x",
             "score_sports": float(any(w in s.text for w in ("team", "cup", "coach"))),
             "score_weather": float(any(w in s.text for w in ("Snow", "rain", "wind")))}
            for doc, text in docs.items() for s in split_article(text, doc)]
    soft = project / "teacher.csv.gz"
    pd.DataFrame(rows).to_csv(soft, index=False)
    sidecar(soft).write_text(json.dumps({"thresholds": {"sports": 0.5, "weather": 0.5}}))
    config = yaml.safe_load((project / "good.yaml").read_text())
    config["name"] = "student"
    config["data"]["soft_labels"] = str(soft)
    (project / "student.yaml").write_text(yaml.safe_dump(config))

    good, student = train([load_config(project / "good.yaml"),
                           load_config(project / "student.yaml")], export=False, n_jobs=1)
    assert (good.tier, student.tier) == ("fast", "student")
    assert student.metrics["n_soft_sentences"] == len(rows)
    # the soft-labeled model never competes with the champion: its own alias
    assert good.promoted and student.promoted
    assert tracking.champion(good.model_name)[0] == good.version
    assert tracking.champion(good.model_name, tracking.STUDENT)[0] == student.version
    # Without the pool text no soft label is used: a plain fast model, not a student.
    monkeypatch.setattr(paths, "POOLS", {"fake": project / "absent.jsonl.gz"})
    [plain] = train([load_config(project / "student.yaml")], export=False, n_jobs=1)
    assert plain.tier == "fast" and plain.metrics["n_soft_sentences"] == 0
    assert tracking.champion(good.model_name, tracking.STUDENT)[0] == student.version
