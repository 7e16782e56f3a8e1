"""`newsevents predict --engine spark` as a user runs it, and the registry route: an MLflow
``spark_udf`` over ``models:/newsevents@champion`` in a temporary SQLite store, after splitting."""

from __future__ import annotations

import json

import pytest

from newsevents.cli import main
from newsevents.predict import Predictor

pytestmark = pytest.mark.slow
pd = pytest.importorskip("pandas")
pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")

GOOD = "Japan pledged $50 million in aid to Kenya. The two leaders met in Nairobi on Monday.\n"
ARTICLES = {"kenya": GOOD,
            "geneva": "The foreign ministers met in Geneva on Monday.\n\nThe government lifted "
                      "its ban on arms exports, officials said.",
            "port": "Russia was accused of shelling the port, officials said.",
            "caption": "Share this"}


def test_cli_writes_parquet_and_reports_bad_inputs(spark, tiny_model_dir, tmp_path, capsys):
    # In this process, so that the command finds the tests' running session: a second JVM
    # would double the cost of these tests, and spark_session() is the code path either way.
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text(GOOD)
    (folder / "latin1.txt").write_bytes("Caf\xe9 pledged aid.".encode("latin-1"))
    (folder / "feed.jsonl").write_text(json.dumps({"id": "r1", "text": GOOD}) + "\n{oops\n")
    out = tmp_path / "labeled"
    code = main(["predict", str(folder), "--engine", "spark", "--model", str(tiny_model_dir),
                 "-o", str(out)])
    assert code == 1
    lines = capsys.readouterr().err.splitlines()
    assert sorted(lines[:-1]) == sorted(
        [f"newsevents predict: error: {folder / 'feed.jsonl'}:2: malformed JSON (Expecting "
         "property name enclosed in double quotes)",
         f"newsevents predict: error: {folder / 'latin1.txt'}: not UTF-8 text (byte 0xe9 at "
         "offset 3)"])
    assert lines[-1].startswith("newsevents predict: 2 articles, 4 sentences, 2 failed")
    rows = pd.read_parquet(out / "sentences").sort_values(["article_id", "sentence_index"])
    expected = Predictor.load(tiny_model_dir).label_article(GOOD)
    assert list(rows["article_id"]) == ["good", "good", "r1", "r1"]
    assert [list(x) for x in rows["labels"]][:2] == [s.labels for s in expected]
    assert json.loads((out / "report.json").read_text())["failed"] == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--engine", "spark"], "needs --output DIR"),
    (["--engine", "spark", "-o", "x", "--summary", "s.csv"], "--summary: not available"),
    (["--engine", "spark", "-o", "x", "--format", "csv"], "parquet (default) or jsonl"),
    (["-o", "x.parquet", "--format", "parquet"], "need --engine spark"),
    (["-o", "hdfs://namenode/labels"], "need --engine spark"),
])
def test_cli_usage_errors(args, message, tmp_path, capsys):
    (tmp_path / "a.txt").write_text(GOOD)
    assert main(["predict", str(tmp_path / "a.txt"), *args]) == 2
    assert message in capsys.readouterr().err


@pytest.fixture(scope="module")
def registry(registered_model):
    """``newsevents.tracking``, pointed at a store with the tiny model as
    ``newsevents@champion`` (see conftest)."""
    from newsevents import tracking

    return tracking


def test_registry_route_gives_the_same_labels(spark, registry, tiny_model_dir):
    from newsevents.spark import apply_pyfunc_udf, label_dataframe, split_dataframe

    articles = spark.createDataFrame(list(ARTICLES.items()), "id string, text string")
    split = split_dataframe(articles)
    udf = registry.spark_udf(spark, "models:/newsevents@champion")
    via_registry = apply_pyfunc_udf(split.sentences, udf).toPandas()
    direct = label_dataframe(articles, Predictor.load(tiny_model_dir)).sentences.toPandas()

    key = ["article_id", "sentence_index"]
    for frame in (via_registry, direct):
        frame["labels"] = frame["labels"].map(list)
        frame.sort_values(key, inplace=True, ignore_index=True)
    assert len(direct) == 5 and direct["labels"].map(len).sum() > 0
    pd.testing.assert_frame_equal(via_registry, direct, check_dtype=False, check_exact=True)
    assert [(r.article_id, r.error) for r in split.errors.collect()] == [
        ("caption", "caption: no sentences found")]
