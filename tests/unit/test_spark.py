"""The Spark engine in a real ``local[2]`` session: the same rows as the local engine, bad
records in the errors output, output committed only when the job succeeds."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from newsevents import paths
from newsevents.batch import label_batch
from newsevents.predict import METADATA_FILE, ModelError, Predictor

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
pd = pytest.importorskip("pandas")

from newsevents.spark import (  # noqa: E402
    REPORT_FILE,
    SparkEngineError,
    check_java,
    label_dataframe,
    label_files,
)

pytestmark = pytest.mark.slow
N_ARTICLES = 200
KEY = ["article_id", "sentence_index"]


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    # The champion when `make train` has run (it always has under `make test`): its embedding
    # and lexicon blocks are the parts most likely to drift between engines.
    location = paths.CHAMPION_DIR if (paths.CHAMPION_DIR / METADATA_FILE).is_file() else None
    return Predictor.load(location or tiny_model_dir)


@pytest.fixture(scope="module")
def records(table):
    """200 articles of 1-12 shipped sentences in 1-3 paragraphs, the seed articles, and the
    records no engine can label (fixed seed)."""
    rng = random.Random(13)
    pool = list(table["text"])
    out = []
    for i in range(N_ARTICLES - 5):
        sentences = rng.sample(pool, rng.randint(1, 12))
        cut = sorted(rng.sample(range(1, len(sentences) + 1), min(2, len(sentences))))
        paragraphs = [sentences[a:b] for a, b in zip([0, *cut], [*cut, len(sentences)],
                                                     strict=True)]
        out.append({"id": f"art{i:03d}", "text": "\n\n".join(" ".join(p) for p in paragraphs
                                                              if p)})
    out += [{"id": p.stem, "text": p.read_text(encoding="utf-8")}
            for p in sorted(paths.RAW.glob("*.txt"))]
    return [*out, {"id": "blank", "text": "  \n"}, {"id": "furniture", "text": "Share this"},
            {"id": "no-text", "title": "only a title"}]


@pytest.fixture(scope="module")
def inputs(records, tmp_path_factory):
    """The records in four JSONL files (so Spark has several tasks), plus a malformed line."""
    folder = tmp_path_factory.mktemp("spark-in")
    for k in range(4):
        lines = [json.dumps(r) for r in records[k::4]] + (["{not json"] if k == 0 else [])
        (folder / f"part{k}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "empty.txt").write_text("")
    return folder


@pytest.fixture(scope="module")
def local_run(inputs, predictor, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "labels.jsonl"
    report = label_batch([inputs], predictor, out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return pd.DataFrame(rows), report


def comparable(frame):
    """Rows sorted by article and position, scores rounded to 4 places, labels as lists."""
    frame = frame.sort_values(KEY).reset_index(drop=True)
    frame["labels"] = frame["labels"].map(list)
    scores = [c for c in frame.columns if c.startswith("score_")]
    frame[scores] = frame[scores].astype(float).round(4)
    frame["sentence_index"] = frame["sentence_index"].astype(int)
    return frame


def same(left, right):
    """Equal values in every row and column, floats included (no tolerance)."""
    pd.testing.assert_frame_equal(left, right, check_dtype=False, check_exact=True)


def test_same_answers_as_the_local_engine(spark, inputs, predictor, local_run, tmp_path):
    local, local_report = local_run
    out = tmp_path / "labeled"
    report = label_files(spark, [inputs], predictor).write(out)

    labeled = pd.read_parquet(out / "sentences")
    assert list(labeled.columns) == list(local.columns)
    assert len(local) > 1000 and local["article_id"].nunique() == N_ARTICLES
    same(comparable(labeled), comparable(local))
    assert (report.sentences, report.articles) == (local_report.sentences,
                                                    local_report.articles)
    assert report.files == 5

    errors = pd.read_parquet(out / "errors")
    assert sorted(errors["error"]) == sorted(local_report.failures)
    assert report.failed == len(local_report.failures) == 5
    # Records that were read carry their id; a line or file that could not be read, none.
    assert sorted(errors["article_id"].dropna()) == ["blank", "furniture"]
    summary = json.loads((out / REPORT_FILE).read_text())
    assert summary["sentences"] == len(local) and summary["failed"] == 5
    assert summary["model"]["sha256"] == predictor.metadata["sha256"]


def test_jsonl_output_has_the_local_rows(spark, inputs, predictor, local_run, tmp_path):
    local, _ = local_run
    out = tmp_path / "labeled"
    label_files(spark, [inputs], predictor).write(out, fmt="jsonl")
    rows = [json.loads(line) for part in sorted((out / "sentences").glob("part-*.json"))
            for line in part.read_text(encoding="utf-8").splitlines()]
    expected = {(r["article_id"], r["sentence_index"]): r for r in local.to_dict("records")}
    assert {(r["article_id"], r["sentence_index"]): r for r in rows} == expected


def test_dataframe_api_labels_and_reports_bad_records(spark, records, predictor):
    good = [r for r in records if r.get("text", "").strip()]
    good = [*good[:20], *(r for r in good if r["id"] == "furniture")]
    frame = spark.createDataFrame(
        [(r["id"], r["text"]) for r in good] + [("none", None), ("empty", "")],
        "id string, text string")
    frames = label_dataframe(frame, predictor)
    rows = frames.sentences.toPandas()
    expected = pd.DataFrame([{"article_id": s.article_id, "sentence_index": s.index,
                              "sentence_id": s.sentence_id, "text": s.text,
                              "labels": s.labels,
                              **{f"score_{n}": v for n, v in s.scores.items()}}
                             for r in good for s in predictor.label_article(r["text"], r["id"])])
    same(comparable(rows), comparable(expected))
    errors = {r.article_id: r.error for r in frames.errors.collect()}
    assert errors == {"none": "none: no text", "furniture": "furniture: no sentences found",
                      "empty": "empty: no sentences found"}


def test_binary_text_is_decoded_with_the_file_checks_and_ids_default_to_a_hash(spark,
                                                                              predictor):
    frame = spark.createDataFrame([(b"Japan pledged $50 million in aid to Kenya.",),
                                   ("Caf\xe9 pledged aid.".encode("latin-1"),), (b"\x00\x01",),
                                   (b"",)], "body binary")
    frames = label_dataframe(frame, predictor, text_col="body", id_col=None)
    [row] = frames.sentences.collect()
    assert row.labels == predictor.label_article(
        "Japan pledged $50 million in aid to Kenya.")[0].labels
    assert row.article_id.startswith("a") and len(row.article_id) == 13
    reasons = sorted(r.error.split(": ", 1)[1] for r in frames.errors.collect())
    assert reasons == ["binary text, not text", "empty text",
                       "not UTF-8 text (byte 0xe9 at offset 3)"]
    with pytest.raises(ValueError, match="no 'text' column"):
        label_dataframe(frame, predictor)


def test_output_is_committed_only_when_the_job_succeeds(spark, inputs, tiny_model_dir,
                                                        tmp_path):
    folder = shutil.copytree(inputs, tmp_path / "in")
    out = tmp_path / "labeled"
    good = Predictor.load(tiny_model_dir)
    first = label_files(spark, [folder], good).write(out)
    before = (out / REPORT_FILE).read_text()

    # A file that vanishes after it was listed (as on a shared store) fails the job; the
    # previous output stays as it was, with nothing half-written beside it.
    frames = label_files(spark, [folder], good)
    (folder / "part3.jsonl").unlink()
    with pytest.raises(Exception, match=r"part3\.jsonl"):
        frames.write(out)
    assert (out / REPORT_FILE).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "labeled"]

    # A second good run replaces the first, again leaving nothing beside it.
    second = label_files(spark, [folder], good).write(out, fmt="jsonl")
    assert json.loads((out / REPORT_FILE).read_text())["format"] == "jsonl"
    assert 0 < second.sentences < first.sentences
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "labeled"]


def test_a_model_file_changed_after_loading_is_refused(spark, inputs, tiny_model_dir,
                                                       tmp_path):
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    loaded = Predictor.load(model)
    (model / "scorer.npz").write_bytes(b"tampered")
    with pytest.raises(ModelError, match=r"scorer\.npz: sha256 .* changed after the model was"):
        label_files(spark, [inputs], loaded)


def test_refuses_to_replace_a_directory_it_did_not_write(spark, inputs, predictor, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SparkEngineError, match="not a newsevents output"):
        label_files(spark, [inputs], predictor).write(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_missing_java_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(SparkEngineError, match=r"needs Java 17\+ and none was found"):
        check_java()


def test_only_the_spark_package_imports_pyspark_and_it_stays_off_the_training_stack():
    import subprocess
    import sys

    src = paths.ROOT / "src" / "newsevents"
    importers = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                       if "import pyspark" in p.read_text() or "from pyspark" in p.read_text())
    assert importers and all(name.startswith("spark/") for name in importers)
    forbidden = ("mlflow", "datasets", "sklearn", "newsevents.train", "newsevents.tracking")
    code = ("import sys, newsevents.spark; "
            f"print([m for m in {forbidden!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"
