"""Soft labels: read by id, text re-split from a pool, kept apart from held-out sentences."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from newsevents.config import parse_config
from newsevents.corpus import split_article
from newsevents.dataset import (
    SOFT,
    TEST,
    TRAIN,
    AnnotationError,
    add_soft_labels,
    sample_weights,
    target_matrix,
)
from newsevents.groups import fold_units, near_duplicate_groups
from newsevents.soft_labels import SCORES, read_soft_labels, sidecar, soft_rows

DOCS = {
    "D1": "Japan pledged 50 million dollars in aid to Kenya on Monday. "
          "The minister met his counterpart in Nairobi. Rain fell all week.",
    "D2": "The government accused the rebels of shelling the capital overnight. "
          "Officials said the talks would resume in Geneva next month.",
    "D3": "Seoul will end its fuel subsidy next year, the finance minister said. "
          "Japan pledged 50 million dollars in aid to Kenya on Monday, officials said.",
    "D4": "NATO leaders met in Vilnius to discuss air defence for Ukraine. "
          "The summit ended without a joint statement.",
    "D5": "The government accused the rebels of shelling the capital overnight, radio said.",
}


def sentences(doc):
    return split_article(DOCS[doc], doc)


def write_pool(path, docs=DOCS):
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for doc, text in docs.items():
            handle.write(json.dumps({"id": doc, "text": text}) + "\n")
    return path


def write_soft(tmp_path, schema, rows, thresholds=0.5, name="teacher.csv.gz"):
    """rows: (document, sentence index, scores); a pool file ``fake`` holds DOCS."""
    records = []
    for doc, index, scores in rows:
        sid = sentences(doc)[index].id
        records.append({"sentence_id": sid, "source": "fake", "document_id": doc,
                        "stratum": "x", **{f"score_{n}": s for n, s in
                                           zip(schema.names, scores, strict=True)}})
    path = tmp_path / name
    pd.DataFrame(records).to_csv(path, index=False)
    sidecar(path).write_text(json.dumps({"thresholds": dict.fromkeys(schema.names,
                                                                     thresholds)}))
    return path


def gold_table(schema, test_docs=()):
    """Hand-labeled rows: the first sentence of D1, D2 and D4, as load_table builds them."""
    rows = [(doc, sentences(doc)[0]) for doc in ("D1", "D2", "D4")]
    table = pd.DataFrame({
        "sentence_id": [s.id for _, s in rows], "article_id": [d for d, _ in rows],
        "text": [s.text for _, s in rows], "labels": [[schema.names[0]], [], []], "note": "",
        "source": "fake", "story_id": [d for d, _ in rows],
        "split": [TEST if d in test_docs else TRAIN for d, _ in rows]})
    table["group_id"] = near_duplicate_groups(list(table["sentence_id"]), list(table["text"]))
    table["unit_id"] = fold_units(table)
    return table


def test_soft_labels_are_read_by_id_and_re_split_from_the_pool(tmp_path, schema):
    path = write_soft(tmp_path, schema, [("D1", 1, [0.1, 0.2, 0.9, 0.3]),
                                         ("D2", 1, [0.0, 0.6, 0.7, 0.0])])
    soft = read_soft_labels(path, schema)
    rows, message = soft_rows(soft, {"fake": write_pool(tmp_path / "pool.jsonl.gz")}, SCORES,
                              weight=0.5)
    assert list(rows["text"]) == [sentences("D1")[1].text, sentences("D2")[1].text]
    assert list(rows["labels"]) == [[schema.names[2]], [schema.names[1], schema.names[2]]]
    np.testing.assert_allclose(np.stack(rows["soft_scores"]), soft.scores)
    assert list(rows["weight"]) == [0.5, 0.5]
    assert "2 pool sentences re-split" in message


def test_ids_that_no_longer_match_the_pool_are_counted_not_hidden(tmp_path, schema):
    path = write_soft(tmp_path, schema, [("D1", 1, [0.1] * 4), ("D2", 1, [0.1] * 4)])
    pool = write_pool(tmp_path / "pool.jsonl.gz", {"D1": DOCS["D1"], "D2": "Something else."})
    rows, message = soft_rows(read_soft_labels(path, schema), {"fake": pool})
    assert len(rows) == 1 and "1 ids no longer match a pool sentence" in message


def test_without_the_pool_the_soft_labels_are_skipped_in_one_line(tmp_path, schema):
    path = write_soft(tmp_path, schema, [("D1", 1, [0.1] * 4)])
    table = gold_table(schema)
    out, message = add_soft_labels(table, schema, path, pools={"fake": tmp_path / "absent.gz"})
    assert out is table
    assert "skipped" in message and "absent.gz" in message and "\n" not in message


def test_soft_rows_join_the_units_of_their_documents_and_keep_off_the_test_split(tmp_path,
                                                                                  schema):
    path = write_soft(tmp_path, schema, [
        ("D1", 1, [0.1, 0.1, 0.9, 0.1]),  # in a document with a labeled training sentence
        ("D1", 0, [0.9, 0.1, 0.1, 0.1]),  # that labeled sentence itself
        ("D2", 1, [0.1, 0.1, 0.9, 0.1]),  # in a test document
        ("D3", 0, [0.1, 0.1, 0.1, 0.9]),  # in a document with no labeled sentence
        ("D3", 1, [0.9, 0.1, 0.1, 0.1]),  # ... near-duplicating D1's labeled sentence
        ("D5", 0, [0.1, 0.9, 0.1, 0.1]),  # near-duplicating D2's test sentence
    ])
    table = gold_table(schema, test_docs=("D2",))
    out, message = add_soft_labels(table, schema, path,
                                   pools={"fake": write_pool(tmp_path / "pool.jsonl.gz")})
    soft = out[out["split"] == SOFT]
    assert list(soft["text"]) == [sentences("D1")[1].text, *(s.text for s in sentences("D3"))]
    unit_of_d1 = table["unit_id"][table["article_id"] == "D1"].item()
    assert list(soft["unit_id"]) == [unit_of_d1, "ufake:D3", unit_of_d1]
    assert "1 labeled by hand" in message
    assert "2 in a test document or a near-duplicate of a test sentence" in message
    assert out.iloc[:len(table)][table.columns].equals(table)  # hand-labeled rows untouched


def test_soft_rows_that_would_join_two_units_are_left_out(tmp_path, schema):
    # D3's second sentence near-duplicates D1's labeled sentence while D3 has a labeled
    # sentence of its own: keeping it would tie D1's and D3's units (and change the folds).
    path = write_soft(tmp_path, schema, [("D3", 1, [0.9, 0.1, 0.1, 0.1])])
    table = gold_table(schema)
    d3 = sentences("D3")[0]
    extra = pd.DataFrame({"sentence_id": [d3.id], "article_id": ["D3"], "text": [d3.text],
                          "labels": [[]], "note": "", "source": "fake", "story_id": ["D3"],
                          "split": TRAIN})
    table = pd.concat([table, extra], ignore_index=True)
    table["group_id"] = near_duplicate_groups(list(table["sentence_id"]), list(table["text"]))
    table["unit_id"] = fold_units(table)
    assert table["unit_id"].nunique() == 4
    out, message = add_soft_labels(table, schema, path,
                                   pools={"fake": write_pool(tmp_path / "pool.jsonl.gz")})
    assert (out["split"] != SOFT).all()
    assert "1 near-duplicates in two fold units" in message


def test_targets_and_weights_of_soft_rows(tmp_path, schema):
    path = write_soft(tmp_path, schema, [("D3", 0, [0.9, 0.2, 0.1, 0.0])])
    table = gold_table(schema)
    out, _ = add_soft_labels(table, schema, path, SCORES, 0.25,
                             pools={"fake": write_pool(tmp_path / "pool.jsonl.gz")})
    y = target_matrix(out, schema)
    np.testing.assert_allclose(y[-1], [0.9, 0.2, 0.1, 0.0])
    np.testing.assert_array_equal(y[:-1], [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(sample_weights(out), [1, 1, 1, 0.25])
    hard, _ = add_soft_labels(table, schema, path,
                              pools={"fake": write_pool(tmp_path / "pool.jsonl.gz")})
    assert target_matrix(hard, schema).dtype == np.int8  # teacher decisions: plain labels
    assert sample_weights(table) is None


@pytest.mark.parametrize(("change", "problem"), [
    (lambda f, m: f.drop(columns="score_aid_pledge"), "missing column"),
    (lambda f, m: f.assign(score_aid_pledge=1.5), r"in \[0, 1\]"),
    (lambda f, m: pd.concat([f, f]), "duplicate sentence id"),
    (lambda f, m: m.pop("thresholds"), "'thresholds'"),
])
def test_bad_soft_label_files_are_one_line_naming_the_file(tmp_path, schema, change, problem):
    path = write_soft(tmp_path, schema, [("D1", 1, [0.1] * 4)])
    frame, meta = pd.read_csv(path), json.loads(sidecar(path).read_text())
    changed = change(frame, meta)
    if isinstance(changed, pd.DataFrame):
        changed.to_csv(path, index=False)
    sidecar(path).write_text(json.dumps(meta))
    with pytest.raises(AnnotationError, match=problem) as err:
        add_soft_labels(gold_table(schema), schema, path, pools={})
    assert len(err.value.problems) == 1 and str(tmp_path / "teacher.") in str(err.value)


@pytest.mark.parametrize(("data", "key"), [
    ({"soft_labels": "nope.csv.gz"}, "'data.soft_labels'"),
    ({"soft_targets": "maybe"}, "'data.soft_targets'"),
    ({"soft_weight": 0}, "'data.soft_weight'"),
])
def test_bad_soft_label_settings_name_the_key(data, key):
    from newsevents.config import ConfigError

    with pytest.raises(ConfigError, match=key):
        parse_config({"name": "x", "data": data, "features": [{"type": "tfidf_word"}],
                      "model": {"type": "logreg"}}, "exp.yaml")
