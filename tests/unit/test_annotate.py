"""The annotation queue, the store, the labeling session and the spreadsheet round trip."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from newsevents import paths
from newsevents.annotate import (
    AnnotationStore,
    Session,
    already_labeled,
    build_queue,
    export_queue,
    import_annotations,
    labeled_elsewhere,
    uncertainty,
)
from newsevents.cli import main
from newsevents.corpus import Sentence, sentence_id
from newsevents.dataset import AnnotationError, load_annotations, load_table
from newsevents.predict import ModelError, Predictor

KENYA = """Japan pledges emergency aid to flood-hit Kenya

Japan will give $12 million in emergency food aid to Kenya after the floods, its embassy said.
The money will be channelled through the World Food Programme, the embassy said in a statement.
Kenya's foreign minister met the Japanese ambassador in Nairobi on Thursday to discuss relief.
Opposition leaders accused the government of ignoring early warnings about the floods.
"""
DUPLICATE = ("Belarus accused NATO of massing troops near its border and warned it would respond "
             "to any provocation.")
MINSK = [
    {"id": "minsk-1", "text": f"Belarus warns of Western aggression\n\n{DUPLICATE}\n"
                              "Lithuania's president will visit Warsaw next week for talks."},
    {"id": "minsk-2", "text": "Lithuania rejects Belarus claims\n\n"
                              f"{DUPLICATE[:-1]}, state media reported.\n"
                              "Lithuania said the claims were baseless and made up."},
]


@pytest.fixture(scope="module")
def seed_sentence() -> str:
    """A sentence the shipped seed annotations already label."""
    return str(pd.read_csv(paths.SEED_ANNOTATIONS, dtype=str)["text"].iloc[1])


@pytest.fixture
def inputs(tmp_path, seed_sentence):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "kenya.txt").write_text(KENYA, encoding="utf-8")
    (folder / "minsk.jsonl").write_text("\n".join(json.dumps(r) for r in MINSK) + "\n{oops\n",
                                        encoding="utf-8")
    (folder / "seen.txt").write_text(f"Old news\n\n{seed_sentence}\n", encoding="utf-8")
    return folder


class KeywordModel:
    """Scores from fixed keywords, so the ranking is known in advance."""

    def __init__(self, n_labels: int, rules: dict[str, list[float]]):
        self.n_labels, self.rules = n_labels, rules

    def predict_proba(self, texts):
        return np.array([next((v for k, v in self.rules.items() if k in t), [0.0] * self.n_labels)
                         for t in texts])


@pytest.fixture
def predictor(schema):
    n = len(schema)
    first_on = [0.9] + [0.0] * (n - 1)
    rules = {"money": [0.45] + [0.0] * (n - 1),  # right under the first threshold: most doubtful
             "Belarus accused": [0.0, 0.6] + [0.0] * (n - 2),
             "met the": [0.0, 0.0, 0.95] + [0.0] * (n - 3),
             "Japan will give": first_on}
    return Predictor(KeywordModel(n, rules), schema.names, [0.5] * n)


def item(text: str, suggested=(), article_id="a1", index=0):
    from newsevents.annotate import QueueItem

    return QueueItem(Sentence(article_id, index, sentence_id(text), text), "", "", "", {},
                     tuple(suggested), 0.5)


# --------------------------------------------------------------------------- ranking

def test_uncertainty_is_one_on_the_threshold_and_zero_at_the_extremes():
    scores = np.array([[0.2, 0.0], [1.0, 0.0], [0.6, 0.9], [0.0, 0.0]])
    got = uncertainty(scores, np.array([0.2, 0.6]))
    assert got[0] == pytest.approx(1.0)
    assert got[1] == pytest.approx(0.0) and got[3] == pytest.approx(0.0)
    # 0.6 is halfway between a 0.2 threshold and 1 (margin 0.5); 0.9 sits 3/4 above 0.6.
    assert got[2] == pytest.approx(0.5)


def test_queue_drops_labeled_and_near_duplicates_and_ranks_by_doubt(inputs, predictor, schema,
                                                                   seed_sentence):
    queue = build_queue([inputs], predictor, schema, labeled_elsewhere(schema))
    texts = [i.sentence.text for i in queue.items]
    assert seed_sentence not in texts and queue.n_labeled == 1
    assert sum(t.startswith("Belarus accused") for t in texts) == 1
    assert queue.n_near_duplicates == 1
    assert texts[0].startswith("The money")
    assert [i.uncertainty for i in queue.items] == sorted((i.uncertainty for i in queue.items),
                                                          reverse=True)
    assert len(queue.errors) == 1 and "minsk.jsonl:3: malformed JSON" in queue.errors[0]
    assert queue.n_articles == 4


def test_queue_items_carry_context_and_suggestions(inputs, predictor, schema):
    items = {i.sentence.text[:15]: i for i in
             build_queue([inputs], predictor, schema, set()).items}
    money = items["The money will "]
    assert money.headline == "Japan pledges emergency aid to flood-hit Kenya"
    assert money.previous.startswith("Japan will give") and money.next.startswith("Kenya's")
    assert money.suggested == () and money.scores[schema.names[0]] == pytest.approx(0.45)
    assert items["Japan will give"].suggested == (schema.names[0],)
    headline = items["Japan pledges e"]
    assert headline.headline == "" and headline.previous == ""


def test_queue_limit_and_model_that_does_not_fit_the_schema(inputs, predictor, schema):
    assert len(build_queue([inputs], predictor, schema, set(), limit=2).items) == 2
    alien = Predictor(KeywordModel(1, {}), ["famine"], [0.5])
    with pytest.raises(ModelError, match="famine"):
        build_queue([inputs], alien, schema, set())


# --------------------------------------------------------------------------- store and session

def test_store_keeps_a_valid_file_after_every_change(tmp_path, schema):
    path = tmp_path / "sub" / "annotated.csv"
    store = AnnotationStore(path, schema)
    a, b = item("Japan pledged aid to Kenya.").sentence, item("Talks failed.").sentence
    store.add(a, [schema.names[1], schema.names[0]])
    store.add(b, [])
    frame = load_annotations(path, schema)
    assert list(frame["labels"]) == [[schema.names[0], schema.names[1]], []]
    with pytest.raises(ValueError, match="already"):
        store.add(a, [])
    store.remove(a.id)
    assert list(load_annotations(path, schema)["sentence_id"]) == [b.id]
    store.remove(b.id)
    assert load_annotations(path, schema).empty
    assert [p.name for p in path.parent.iterdir()] == ["annotated.csv"]  # no temp file left
    assert AnnotationStore(path, schema).ids == set()


def test_store_refuses_an_invalid_file_instead_of_overwriting_it(tmp_path, schema):
    path = tmp_path / "annotated.csv"
    path.write_text("sentence_id,text,labels\ns000000000000,Edited text.,\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match="does not match the text"):
        AnnotationStore(path, schema)


def test_store_does_not_overwrite_rows_another_session_saved(tmp_path, schema):
    path = tmp_path / "annotated.csv"
    mine, theirs = AnnotationStore(path, schema), AnnotationStore(path, schema)
    theirs.add(item("Saved by the other session.").sentence, [])
    with pytest.raises(AnnotationError, match="changed by another program"):
        mine.add(item("Mine.").sentence, [])
    assert list(load_annotations(path, schema)["text"]) == ["Saved by the other session."]
    assert len(mine) == 0  # memory still matches what this store last wrote


def test_session_toggle_accept_skip_undo(tmp_path, schema):
    first, second = schema.names[0], schema.names[1]
    items = [item("One pledge.", [first]), item("Two talks.", [second]), item("Three.")]
    store = AnnotationStore(tmp_path / "a.csv", schema)
    session = Session(items, store, schema)
    assert session.chosen == {first}
    session.toggle(second)
    assert session.accept() == (first, second)
    session.skip()
    assert session.chosen == set()
    session.undo()  # the skip: nothing in the file changes
    assert session.current is items[1] and session.chosen == {second}
    session.undo()  # the accept: its row leaves the file, its labels come back
    assert session.current is items[0] and session.chosen == {first, second}
    assert len(load_annotations(store.path, schema)) == 0
    for _ in items:
        session.accept()
    assert session.current is None and session.n_accepted == 3
    with pytest.raises(IndexError):
        session.accept()
    assert list(load_annotations(store.path, schema)["labels"]) == [[first, second], [second], []]
    assert already_labeled(store, schema, files=()) == {i.sentence.id for i in items}


# --------------------------------------------------------------------------- spreadsheets

def test_export_then_import_round_trip(tmp_path, inputs, predictor, schema):
    queue = build_queue([inputs], predictor, schema, set())
    sheet = tmp_path / "queue.csv"
    assert export_queue(queue, sheet, schema) == len(queue.items)
    assert sheet.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    with pytest.raises(FileExistsError):
        export_queue(queue, sheet, schema)
    with sheet.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["labels"] == rows[0]["suggested"] and rows[0]["headline"]
    rows[0]["labels"] = f"{schema.names[3]}; {schema.names[2]}"  # a person corrects one row
    rows[1]["note"] = "checked"
    del rows[2]  # and leaves one out
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    store = AnnotationStore(tmp_path / "annotated.csv", schema)
    assert import_annotations(sheet, store, schema, elsewhere={}) == len(rows)
    frame = load_annotations(store.path, schema)
    assert list(frame["sentence_id"]) == [r["sentence_id"] for r in rows]
    assert frame["labels"][0] == [schema.names[2], schema.names[3]]
    assert frame["note"][1] == "checked" and frame["article_id"][0] == rows[0]["article_id"]


def test_import_reports_every_problem_with_file_and_row_and_merges_nothing(tmp_path, schema,
                                                                           seed_sentence):
    store = AnnotationStore(tmp_path / "annotated.csv", schema)
    stored = item("Already stored here.").sentence
    store.add(stored, [])
    good, peru = "Japan pledged aid to Kenya.", "Japan pledged aid to Peru."
    rows = [
        (sentence_id(good), good, f"{schema.names[0]};famine"),
        (sentence_id(peru), "Japan pledged more aid to Peru.", ""),  # text edited in the sheet
        (sentence_id(good), good, ""),
        (sentence_id(seed_sentence), seed_sentence, ""),
        (stored.id, stored.text, ""),
    ]
    sheet = tmp_path / "sheet.csv"

    def write_sheet(selected):
        with sheet.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sentence_id", "article_id", "text", "labels", "note"])
            writer.writerows([(sid, "a", text, labels, "") for sid, text, labels in selected])

    write_sheet(rows)
    with pytest.raises(AnnotationError) as err:
        import_annotations(sheet, store, schema)
    assert str(err.value).splitlines() == [
        f"{sheet}:2: unknown label 'famine' (schema {schema.source} has: "
        f"{', '.join(schema.names)})",
        f"{sheet}:3: sentence id {sentence_id(peru)} does not match the text (was the text "
        f"edited? its id would be {sentence_id('Japan pledged more aid to Peru.')})",
        f"{sheet}:4: duplicate sentence id {sentence_id(good)} (first at row 2)",
    ]
    write_sheet(rows[3:])  # with those fixed, the sentences labeled elsewhere are reported
    with pytest.raises(AnnotationError) as err:
        import_annotations(sheet, store, schema)
    assert str(err.value).splitlines() == [
        f"{sheet}:2: sentence {sentence_id(seed_sentence)} is already labeled in "
        f"{paths.SEED_ANNOTATIONS}",
        f"{sheet}:3: sentence {stored.id} is already labeled in {store.path}",
    ]
    assert store.ids == {stored.id}
    assert len(load_annotations(store.path, schema)) == 1


def test_imported_labels_join_the_scored_training_split(tmp_path, schema):
    store = AnnotationStore(tmp_path / "annotated.csv", schema)
    text = "Norway pledged new grants to rebuild schools in Mozambique."
    store.add(Sentence("oslo-1", 3, sentence_id(text), text), [schema.names[0]])
    table = load_table(schema, annotated=store.path)
    row = table[table["sentence_id"] == sentence_id(text)].iloc[0]
    assert row["source"] == "annotated" and row["story_id"] == "oslo-1"
    assert row["split"] == "train"


# --------------------------------------------------------------------------- command line

def test_cli_export_and_import(tmp_path, inputs, tiny_model_dir, schema, capsys):
    sheet, annotations = tmp_path / "q.csv", tmp_path / "annotated.csv"
    common = ["--annotations", str(annotations)]
    assert main(["annotate", str(inputs), "--model", str(tiny_model_dir), "--limit", "3",
                 "--export", str(sheet), *common]) == 0
    out = capsys.readouterr()
    assert "3 queued" in out.out and "malformed JSON" in out.err
    assert main(["annotate", str(inputs), "--model", str(tiny_model_dir),
                 "--export", str(sheet), *common]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["annotate", "--import", str(sheet), *common]) == 0
    assert len(load_annotations(annotations, schema)) == 3
    assert main(["annotate", "--import", str(sheet), *common]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(f"{sheet}:" in e and "already labeled" in e for e in err)


@pytest.mark.parametrize(("argv", "message"), [
    ([], "give at least one INPUT"),
    (["in.txt", "--limit", "0"], "--limit must be at least 1"),
    (["in.txt"], "needs a terminal"),  # pytest's stdin is not a terminal
    (["in.txt", "--import", "x.csv"], "--import takes no INPUT"),
])
def test_cli_usage_errors(tmp_path, argv, message, capsys):
    assert main(["annotate", *argv, "--annotations", str(tmp_path / "a.csv")]) == 2
    assert message in capsys.readouterr().err
