"""Batch labeling: units, chunking, formats, summaries, failures that do not stop the batch,
atomic output and the parallel path."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from newsevents import batch, paths
from newsevents.batch import (
    chunk_articles,
    label_batch,
    split_lines,
)
from newsevents.corpus import Article, sentence_id, split_article
from newsevents.output import (
    Formatter,
    atomic_writer,
    infer_format,
    row_columns,
    summary_columns,
)
from newsevents.predict import LabeledSentence, Predictor

SEED_ARTICLES = sorted(paths.RAW.glob("*.txt"))
GOOD = "Japan pledged $50 million in aid to Kenya. The two leaders met in Nairobi on Monday.\n"


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return Predictor.load(tiny_model_dir)


def jsonl_rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_split_lines_is_one_sentence_per_nonblank_line():
    sentences = split_lines("  First   line here \n\n\tSecond line.\nFirst line here\n", "doc")
    assert [(s.article_id, s.index, s.text) for s in sentences] == [
        ("doc", 0, "First line here"), ("doc", 1, "Second line."), ("doc", 2, "First line here")]
    assert sentences[1].id == sentence_id("Second line.")


def test_chunks_keep_every_article_in_order():
    articles = [Article(str(i), "x" * (i * 10), "") for i in range(1, 30)]
    chunks = list(chunk_articles(articles, max_chars=200))
    assert [a for chunk in chunks for a in chunk] == articles
    assert all(sum(len(a.text) for a in chunk[:-1]) < 200 for chunk in chunks)
    assert list(chunk_articles([], 10)) == []


@pytest.mark.parametrize(("path", "fmt"), [("a.csv", "csv"), ("a.JSONL", "jsonl"),
                                           ("a.json", "jsonl"), ("a.out", "jsonl"),
                                           (None, "jsonl")])
def test_infer_format(path, fmt):
    assert infer_format(path) == fmt


def test_csv_and_jsonl_rows_parse_back():
    labels = ["aid_pledge", "policy_shift"]
    row = {"article_id": "a", "sentence_index": 0, "sentence_id": "s1",
           "text": 'He said, "yes"; then left.', "labels": ["aid_pledge", "policy_shift"],
           "score_aid_pledge": 0.9, "score_policy_shift": 0.5}
    columns = tuple(row_columns(labels))
    as_csv = Formatter("csv", columns)
    parsed = list(csv.DictReader(io.StringIO(as_csv.header() + as_csv.format([row]))))
    assert parsed == [{**{k: str(v) for k, v in row.items()},
                       "labels": "aid_pledge;policy_shift"}]
    assert jsonl_rows(Formatter("jsonl", columns).format([row, row])) == [row, row]


def test_summary_counts_labels_and_picks_the_top_sentence():
    labels = ["aid_pledge", "policy_shift"]
    sentences = [LabeledSentence("A", ["aid_pledge"], {"aid_pledge": 0.7, "policy_shift": 0.1},
                                 "art", 0, "s0"),
                 LabeledSentence("B", ["aid_pledge"], {"aid_pledge": 0.9, "policy_shift": 0.3},
                                 "art", 1, "s1")]
    row = batch.summary_row(Article("art", "A B", "f.txt"), sentences, labels)
    assert list(row) == summary_columns(labels)
    assert row["sentences"] == 2 and row["n_aid_pledge"] == 2 and row["n_policy_shift"] == 0
    assert (row["top_aid_pledge_text"], row["top_aid_pledge_score"]) == ("B", 0.9)
    assert row["top_policy_shift_sentence_id"] == "s1"


def test_seed_articles_every_sentence_once_in_order(predictor):
    out = io.StringIO()
    report = label_batch(SEED_ARTICLES, predictor, out)
    rows = jsonl_rows(out.getvalue())
    expected = [(p.stem, s.index, s.id) for p in SEED_ARTICLES
                for s in split_article(p.read_text(encoding="utf-8"), p.stem)]
    assert [(r["article_id"], r["sentence_index"], r["sentence_id"]) for r in rows] == expected
    assert report.ok and report.articles == 5 and report.sentences == len(expected)
    assert report.files == 5 and report.jobs == 1 and report.rate > 0
    assert "5 articles" in report.summary_line() and "0 failed" in report.summary_line()


def test_bad_inputs_are_reported_and_the_batch_goes_on(predictor, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "good.txt").write_text(GOOD)
    (inputs / "empty.txt").write_text("  \n")
    (inputs / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    (inputs / "latin1.txt").write_bytes("Caf\xe9 pledged aid.".encode("latin-1"))
    (inputs / "records.jsonl").write_text(json.dumps({"id": "r1", "text": GOOD}) + "\n{oops\n"
                                          + json.dumps({"id": "r3", "text": ""}) + "\n")
    (inputs / "notext.csv").write_text("id,body\n1,hello\n")
    (tmp_path / "empty_dir").mkdir()
    errors = tmp_path / "errors.txt"
    seen: list[str] = []
    out = io.StringIO()
    report = label_batch([inputs, tmp_path / "empty_dir", tmp_path / "missing.txt"], predictor,
                         out, errors_file=errors, on_error=seen.append)
    expected = {"binary.txt: binary file", "empty.txt: empty file", "latin1.txt: not UTF-8",
                "records.jsonl:2: malformed JSON", "records.jsonl:3: no sentences found",
                "notext.csv: CSV has no 'text' column", "empty_dir: directory has no",
                "missing.txt: cannot read"}
    assert len(report.failures) == len(expected)
    for fragment in expected:
        assert sum(fragment in f for f in report.failures) == 1, fragment
    assert seen == report.failures
    assert errors.read_text().splitlines() == report.failures
    assert {r["article_id"] for r in jsonl_rows(out.getvalue())} == {"good", "r1"}
    assert not report.ok and report.articles == 2


def test_sentence_unit_labels_each_line_and_record(predictor, tmp_path):
    (tmp_path / "list.txt").write_text("Japan pledged aid.\n\nThe leaders met.\n"
                                       "Japan pledged aid.\n")
    (tmp_path / "list.csv").write_text('id,text\nx,"One sentence. Not split."\n')
    out = io.StringIO()
    label_batch([tmp_path / "list.txt", tmp_path / "list.csv"], predictor, out, unit="sentence")
    rows = jsonl_rows(out.getvalue())
    assert [(r["article_id"], r["sentence_index"], r["text"]) for r in rows] == [
        ("list", 0, "Japan pledged aid."), ("list", 1, "The leaders met."),
        ("list", 2, "Japan pledged aid."), ("x", 0, "One sentence. Not split.")]


def test_stdin_is_one_article(predictor):
    out = io.StringIO()
    report = label_batch(["-"], predictor, out, stdin=io.BytesIO(GOOD.encode()))
    rows = jsonl_rows(out.getvalue())
    assert [r["article_id"] for r in rows] == ["stdin", "stdin"] and report.ok
    report = label_batch(["-"], predictor, io.StringIO(), stdin=io.BytesIO(b""))
    assert report.failures == ["<stdin>: empty input"]


def test_summary_file_and_csv_output(predictor, tmp_path):
    report = label_batch(SEED_ARTICLES[:2], predictor, tmp_path / "rows.csv", fmt="csv",
                         summary=tmp_path / "summary.jsonl")
    with (tmp_path / "rows.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    summary = jsonl_rows((tmp_path / "summary.jsonl").read_text())
    assert len(rows) == report.sentences == sum(s["sentences"] for s in summary)
    for article in summary:
        mine = [r for r in rows if r["article_id"] == article["article_id"]]
        for name in predictor.labels:
            assert article[f"n_{name}"] == sum(name in r["labels"].split(";") for r in mine)
            assert article[f"top_{name}_score"] == max(float(r[f"score_{name}"]) for r in mine)


def test_atomic_writer_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]
    with atomic_writer(tmp_path / "new.jsonl") as handle:
        handle.write("new\n")
    assert (tmp_path / "new.jsonl").read_text() == "new\n"
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "new.jsonl").stat().st_mode & 0o777 == 0o666 & ~umask


def test_interrupted_batch_leaves_no_half_written_output(predictor, tmp_path, monkeypatch):
    target, summary = tmp_path / "out.jsonl", tmp_path / "summary.csv"
    target.write_text("previous run\n")
    real = batch.label_chunk
    calls = []

    def fail_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "label_chunk", fail_on_second)
    with pytest.raises(KeyboardInterrupt):
        label_batch(SEED_ARTICLES, predictor, target, summary=summary, chunk_chars=1)
    assert target.read_text() == "previous run\n" and not summary.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_jobs_choice_follows_input_size(tmp_path, monkeypatch):
    small = tmp_path / "a.txt"
    small.write_text(GOOD)
    assert batch.choose_jobs(None, [small]) == 1
    assert batch.choose_jobs(3, [small]) == 3
    monkeypatch.setattr(batch, "PARALLEL_MIN_BYTES", 10)
    assert batch.choose_jobs(None, [small, "-"]) == batch.available_cores()


@pytest.mark.slow
def test_worker_processes_give_the_same_output(predictor, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.csv"
    inputs: list[str | Path] = [*SEED_ARTICLES, *SEED_ARTICLES]
    label_batch(inputs, predictor, one, jobs=1, chunk_chars=3000)
    report = label_batch(inputs, predictor, two, fmt="jsonl", jobs=2, chunk_chars=3000)
    assert report.jobs == 2 and report.ok
    assert one.read_text() == two.read_text()
