"""`newsevents predict` as a user runs it: real processes for the seed articles, stdin, pipes
and a missing model; in-process `main()` for each class of bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from newsevents import paths
from newsevents.cli import main
from newsevents.corpus import split_article
from newsevents.predict import Predictor, save_model_dir
from newsevents.scorer import ARRAYS_FILE

CLI = str(Path(sys.executable).parent / "newsevents")
SEED_ARTICLES = sorted(paths.RAW.glob("*.txt"))
GOOD = "Japan pledged $50 million in aid to Kenya. The two leaders met in Nairobi on Monday.\n"
SUMMARY_LINE = re.compile(r"^newsevents predict: (\d+) articles?, ([\d,]+) sentences, "
                          r"(\d+) failed, [\d.]+ s, [\d,]+ sentences/s")
FORBIDDEN = ("mlflow", "datasets", "newsevents.train", "newsevents.evaluate",
             "newsevents.tracking", "newsevents.config", "newsevents.dataset", "sklearn", "scipy")


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "predict", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, check=False)


def jsonl(path_or_text: Path | str) -> list[dict]:
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    return [json.loads(line) for line in text.splitlines()]


def test_seed_articles_every_sentence_labeled(tiny_model_dir, schema, tmp_path):
    out, summary = tmp_path / "labels.jsonl", tmp_path / "summary.csv"
    result = run(*map(str, SEED_ARTICLES), "--model", str(tiny_model_dir), "--output", str(out),
                 "--summary", str(summary))
    assert result.returncode == 0, result.stderr
    rows = jsonl(out)
    expected = [(p.stem, s.index, s.id, s.text) for p in SEED_ARTICLES
                for s in split_article(p.read_text(encoding="utf-8"), p.stem)]
    assert [(r["article_id"], r["sentence_index"], r["sentence_id"], r["text"])
            for r in rows] == expected
    thresholds = dict(zip(schema.names, Predictor.load(tiny_model_dir).thresholds, strict=True))
    for row in rows:
        scores = {n: row[f"score_{n}"] for n in schema.names}
        assert all(0.0 <= s <= 1.0 for s in scores.values())
        assert set(row["labels"]) <= set(schema.names)
        # Scores are rounded to 4 places: only a score right at a threshold could disagree.
        assert {n for n, s in scores.items() if abs(s - thresholds[n]) > 1e-4 and
                s >= thresholds[n]} <= set(row["labels"])
    assert (tmp_path / "labels.errors.txt").read_text() == ""
    with summary.open(newline="") as handle:
        per_article = list(csv.DictReader(handle))
    assert [a["article_id"] for a in per_article] == [p.stem for p in SEED_ARTICLES]
    assert sum(int(a["sentences"]) for a in per_article) == len(rows)
    last = SUMMARY_LINE.match(result.stderr.splitlines()[-1])
    assert last and last.groups() == ("5", str(len(rows)), "0")
    assert "\r" not in result.stderr  # no progress bar when stderr is not a terminal


def test_prediction_path_imports_no_training_stack(tiny_model_dir, tmp_path):
    code = (f"import sys; from newsevents.cli import main; "
            f"rc = main(['predict', {str(SEED_ARTICLES[0])!r}, '--model', "
            f"{str(tiny_model_dir)!r}, '-o', {str(tmp_path / 'o.jsonl')!r}]); "
            f"print(rc, [m for m in {FORBIDDEN!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "0 []"


def test_stdin_to_stdout_as_articles_and_as_sentences(tiny_model_dir):
    result = run("-", "--model", str(tiny_model_dir), stdin=GOOD)
    assert result.returncode == 0, result.stderr
    assert [(r["article_id"], r["sentence_index"]) for r in jsonl(result.stdout)] == \
        [("stdin", 0), ("stdin", 1)]
    result = run("-", "--model", str(tiny_model_dir), "--unit", "sentence", "--format", "csv",
                 stdin="Japan pledged aid. It was welcome.\nThe leaders met.\n")
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [r["text"] for r in rows] == ["Japan pledged aid. It was welcome.", "The leaders met."]


def test_piped_into_head_stops_quietly(tiny_model_dir):
    result = subprocess.run(f"{CLI} predict {paths.RAW} --model {tiny_model_dir} | head -n 1",
                            shell=True, capture_output=True, text=True, timeout=120, check=False)
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_missing_default_model_says_make_train(tmp_path):
    result = run(str(SEED_ARTICLES[0]), env={"NEWSEVENTS_HOME": str(tmp_path)})
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert str(tmp_path / "models" / "champion") in line and "make train" in line


def test_csv_output_parses_back(tiny_model_dir, schema, tmp_path, capsys):
    out = tmp_path / "labels.csv"
    assert main(["predict", str(SEED_ARTICLES[0]), "--model", str(tiny_model_dir),
                 "-o", str(out)]) == 0
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["article_id", "sentence_index", "sentence_id", "text", "labels",
                                 *(f"score_{n}" for n in schema.names)]
    assert len(rows) == len(split_article(SEED_ARTICLES[0].read_text(encoding="utf-8")))
    for row in rows:
        assert set(filter(None, row["labels"].split(";"))) <= set(schema.names)
        assert all(0.0 <= float(row[f"score_{n}"]) <= 1.0 for n in schema.names)
    assert "1 article, " in capsys.readouterr().err


BAD_INPUTS = {
    "empty": ("empty.txt", b"", "empty file"),
    "binary": ("scan.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    "non-utf8": ("latin1.txt", "Café au lait.".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
    "missing": ("missing.txt", None, "cannot read (No such file or directory)"),
    # Root reads any file whatever its mode, so make the read itself fail.
    "unreadable": ("good.txt/inner.txt", None, "cannot read (Not a directory)"),
    "malformed-jsonl": ("records.jsonl", b'{"text": "Japan pledged aid."}\n{"text": \n',
                        "records.jsonl:2: malformed JSON"),
    "csv-without-text": ("table.csv", b"id,body\n1,Japan pledged aid.\n",
                         "CSV has no 'text' column (columns: id, body)"),
    "unsupported": ("report.pdf", b"%PDF-1.4", "unsupported file type '.pdf'"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_one_line_and_the_batch_goes_on(case, tiny_model_dir, tmp_path, capsys):
    name, content, problem = BAD_INPUTS[case]
    (tmp_path / "good.txt").write_text(GOOD)
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    out = tmp_path / "out" / "labels.jsonl"
    out.parent.mkdir()
    code = main(["predict", str(tmp_path / "good.txt"), str(bad), "--model", str(tiny_model_dir),
                 "-o", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    [error] = [line for line in err if "error:" in line]
    assert error.startswith(f"newsevents predict: error: {bad}") and problem in error
    assert "good" in {r["article_id"] for r in jsonl(out)}  # the good file was still labeled
    [listed] = (out.parent / "labels.errors.txt").read_text().splitlines()
    assert listed == error.removeprefix("newsevents predict: error: ")
    assert SUMMARY_LINE.match(err[-1]) and " 1 failed" in err[-1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tiny_model_dir, tmp_path, capsys):
    locked = tmp_path / "locked.txt"
    locked.write_text(GOOD)
    locked.chmod(0)
    assert main(["predict", str(locked), "--model", str(tiny_model_dir)]) == 1
    assert f"{locked}: cannot read (Permission denied)" in capsys.readouterr().err


def test_tampered_model_is_refused(tiny_model_dir, tmp_path, capsys):
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    with (model / ARRAYS_FILE).open("r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    out = tmp_path / "labels.jsonl"
    assert main(["predict", str(SEED_ARTICLES[0]), "--model", str(model), "-o", str(out)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert f"{model / ARRAYS_FILE}: sha256" in line and "refusing" in line
    assert not out.exists()


def test_model_not_matching_its_metadata_is_refused(tiny_model_dir, tmp_path, capsys):
    tiny = Predictor.load(tiny_model_dir, engine="sklearn")
    model = save_model_dir(tmp_path / "model", tiny.model, tiny.labels[1:], [0.5] * 3)
    assert main(["predict", str(SEED_ARTICLES[0]), "--model", str(model)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert f"{model / ARRAYS_FILE}: model gives 4 scores per sentence" in line


def test_missing_output_directory_is_a_user_error(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "nope" / "labels.jsonl"
    assert main(["predict", str(SEED_ARTICLES[0]), "--model", str(tiny_model_dir),
                 "-o", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_interrupted_run_keeps_the_previous_output(tiny_model_dir, tmp_path, monkeypatch,
                                                   capsys):
    from newsevents import batch

    out = tmp_path / "labels.jsonl"
    out.write_text("previous\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "label_chunk", interrupted)
    assert main(["predict", str(SEED_ARTICLES[0]), "--model", str(tiny_model_dir),
                 "-o", str(out)]) == 130
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.jsonl"]
    assert capsys.readouterr().err.splitlines() == [
        "newsevents predict: interrupted; nothing was written"]


def test_progress_bar_on_a_terminal(tiny_model_dir, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(CLI, ["predict", str(paths.RAW), "--model", str(tiny_model_dir),
                                "-o", str(tmp_path / "labels.jsonl")],
                          dimensions=(24, 120), timeout=60, encoding="utf-8")
    child.expect(pexpect.EOF)
    child.close()
    assert "file/s" in child.before or "s/file" in child.before  # tqdm's rate, files as unit
    # data/raw/ holds the seed articles and nothing else (the manifest lives in data/).
    assert f"{len(SEED_ARTICLES)} articles" in child.before and "error" not in child.before
    assert child.exitstatus == 0
    rows = jsonl(tmp_path / "labels.jsonl")
    assert sorted({r["article_id"] for r in rows}) == [p.stem for p in SEED_ARTICLES]
