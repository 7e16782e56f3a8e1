"""The real labeling screen in a pseudo-terminal: keys in, annotation file contents out."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

pexpect = pytest.importorskip("pexpect")

from newsevents.annotate import AnnotationStore, already_labeled, build_queue  # noqa: E402
from newsevents.dataset import load_annotations  # noqa: E402
from newsevents.predict import Predictor  # noqa: E402

ARTICLES = {
    "kenya.txt": """Japan pledges emergency aid to flood-hit Kenya

Japan will give $12 million in emergency food aid to Kenya after the floods, its embassy said.
The money will be channelled through the World Food Programme, the embassy said in a statement.
Kenya's foreign minister met the Japanese ambassador in Nairobi on Thursday to discuss relief.
Opposition leaders accused the government of ignoring early warnings about the floods.
Kenya's government also said it would lift a ban on maize imports from Tanzania.
""",
    "baltic.txt": """Lithuania rejects Belarus claims

Belarus accused NATO of massing troops near its border and warned it would respond.
Lithuania said the claims were baseless and that the drills were announced months ago.
Lithuania's president will visit Warsaw next week for talks on border security.
The European Union is considering new sanctions against Minsk over the migrant crisis.
"We will not be intimidated," the Lithuanian defence minister told reporters in Vilnius.
""",
    "pacific.txt": """Australia and Fiji sign security pact

Australia will provide patrol boats and training to Fiji's navy under a new agreement.
The two prime ministers signed the pact during a visit to Suva on Tuesday.
China's embassy warned that the deal could destabilise the region.
Fiji said it would review its policing agreement with Beijing.
""",
}
LIMIT = 12
HELP = "Enter accept"  # on the bottom line of every screen


@pytest.fixture
def workspace(tmp_path):
    articles = tmp_path / "articles"
    articles.mkdir()
    for name, text in ARTICLES.items():
        (articles / name).write_text(text, encoding="utf-8")
    return articles, tmp_path / "annotations" / "annotated.csv"


@pytest.fixture
def queue(workspace, tiny_model_dir, schema):
    """The queue the program will show: same inputs, model and already-labeled sentences."""
    articles, annotations = workspace
    store = AnnotationStore(annotations, schema)
    return build_queue([articles], Predictor.load(tiny_model_dir), schema,
                       already_labeled(store, schema), LIMIT).items


def spawn(workspace, tiny_model_dir):
    articles, annotations = workspace
    env = dict(os.environ, TERM="xterm", LANG="C.UTF-8", OMP_NUM_THREADS="1")
    child = pexpect.spawn(sys.executable, ["-m", "newsevents.cli", "annotate", str(articles),
                                           "--model", str(tiny_model_dir), "--limit", str(LIMIT),
                                           "--annotations", str(annotations)],
                          env=env, dimensions=(30, 110), encoding="utf-8", timeout=30)
    child.expect(HELP)  # the screen is up: keys sent now are read by it
    return child


def wait_for_rows(path, schema, n, timeout=15.0):
    """The annotation file once it holds ``n`` rows (it must validate at every read)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = len(load_annotations(path, schema)) if path.exists() else 0
        if rows == n:
            return load_annotations(path, schema)
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} has {rows} rows, expected {n}")
        time.sleep(0.05)


def flip(labels, name):
    return set(labels) ^ {name}


def test_keys_toggle_accept_skip_undo_and_quit(workspace, tiny_model_dir, queue, schema):
    path = workspace[1]
    first, second, third = schema.names[:3]
    child = spawn(workspace, tiny_model_dir)
    child.send("1")  # toggle the first label of the first sentence
    child.send("\r")
    wait_for_rows(path, schema, 1)
    child.send("s")  # skip the second sentence
    child.send("2\r")  # third sentence: toggle the second label, accept
    wait_for_rows(path, schema, 2)
    child.send("u")  # undo: the row leaves the file, its labels come back on screen
    wait_for_rows(path, schema, 1)
    child.send("3\r")  # toggle the third label on top of them, accept again
    wait_for_rows(path, schema, 2)
    child.send("x")  # unknown keys are explained, not fatal
    child.expect("unknown key")
    child.send("q")
    child.expect("2 sentences labeled, 1 skipped")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    frame = load_annotations(path, schema)
    assert list(frame["sentence_id"]) == [queue[0].sentence.id, queue[2].sentence.id]
    assert list(frame["article_id"]) == [queue[0].sentence.article_id,
                                         queue[2].sentence.article_id]
    assert set(frame["labels"][0]) == flip(queue[0].suggested, first)
    assert set(frame["labels"][1]) == flip(flip(queue[2].suggested, second), third)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupt_keeps_every_decision_and_restores_the_terminal(workspace, tiny_model_dir,
                                                                  queue, schema, how):
    path = workspace[1]
    child = spawn(workspace, tiny_model_dir)
    child.send("\r")
    wait_for_rows(path, schema, 1)
    if how == "ctrl-c":
        child.sendintr()
    else:
        child.kill(signal.SIGTERM)
    child.expect_exact("\x1b[?1049l")  # curses gave the terminal back (xterm's rmcup)
    child.expect("1 sentence labeled")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    frame = load_annotations(path, schema)
    assert list(frame["sentence_id"]) == [queue[0].sentence.id]
    assert set(frame["labels"][0]) == set(queue[0].suggested)


def test_sigkill_mid_session_leaves_a_valid_file_with_the_decisions_made(workspace, tiny_model_dir,
                                                                       queue, schema):
    path = workspace[1]
    child = spawn(workspace, tiny_model_dir)
    for n in (1, 2, 3):
        child.send("\r")
        wait_for_rows(path, schema, n)
    child.send("\r" * 6)  # a burst of decisions, killed while they are being written
    time.sleep(0.05)
    child.kill(signal.SIGKILL)
    child.close(force=True)
    assert child.signalstatus == signal.SIGKILL

    frame = load_annotations(path, schema)  # valid, whatever moment the kill hit
    ids = [item.sentence.id for item in queue]
    assert 3 <= len(frame) <= 9
    assert list(frame["sentence_id"]) == ids[:len(frame)]
    # The next session starts where this one stopped.
    store = AnnotationStore(path, schema)
    rest = build_queue([workspace[0]], Predictor.load(tiny_model_dir), schema,
                       already_labeled(store, schema), LIMIT).items
    assert not {item.sentence.id for item in rest} & set(frame["sentence_id"])
