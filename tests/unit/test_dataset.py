"""Annotation validation, near-duplicate groups, folds and the DatasetDict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from newsevents.corpus import sentence_id
from newsevents.dataset import (
    AnnotationError,
    group_folds,
    load_annotations,
    load_corpus_index,
    load_labeled_file,
    near_duplicate_groups,
    story_folds,
    to_dataset_dict,
)

GOOD = "Japan pledged 50 million dollars in aid to Kenya."


def write(tmp_path, rows, header="sentence_id,article_id,text,labels,note", name="a.csv",
          encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes((header + "\n" + "\n".join(rows) + "\n").encode(encoding))
    return path


def row(text=GOOD, labels="aid_pledge", sid=None):
    return f'{sid or sentence_id(text)},art1,"{text}",{labels},'


def test_valid_file_loads(tmp_path, schema):
    frame = load_annotations(write(tmp_path, [row(), row("Talks failed.", "")]), schema)
    assert list(frame["labels"]) == [["aid_pledge"], []]
    assert list(frame["source"]) == ["corpus", "corpus"]


@pytest.mark.parametrize(("rows", "problem"), [
    ([row(labels="aid_pledge;famine")], ":2: unknown label 'famine'"),
    ([row(), row()], ":3: duplicate sentence id"),
    ([row(sid=sentence_id("Japan pledged aid."))], ":2: sentence id .* does not match the text"),
    ([row(text=" ", sid="s000000000000")], ":2: empty text"),
])
def test_each_problem_is_one_line_naming_file_and_row(tmp_path, schema, rows, problem):
    path = write(tmp_path, rows)
    with pytest.raises(AnnotationError, match=problem) as err:
        load_annotations(path, schema)
    assert all(str(path) in line for line in err.value.problems)


def test_all_problems_are_reported_together(tmp_path, schema):
    with pytest.raises(AnnotationError) as err:
        load_annotations(write(tmp_path, [row(labels="x"), row("Other.", "y")]), schema)
    assert len(err.value.problems) == 2


def test_text_that_no_longer_matches_the_corpus(tmp_path, schema):
    with pytest.raises(AnnotationError, match="no longer matches any corpus sentence"):
        load_annotations(write(tmp_path, [row()]), schema, corpus=load_corpus_index())


def test_missing_columns_bad_encoding_malformed_csv_empty_file(tmp_path, schema):
    with pytest.raises(AnnotationError, match=r"missing column.*labels"):
        load_annotations(write(tmp_path, [f"{sentence_id(GOOD)},x,{GOOD}"],
                               header="sentence_id,article_id,text"), schema)
    with pytest.raises(AnnotationError, match="not UTF-8"):
        load_annotations(write(tmp_path, [row("Café à Paris.", "")], encoding="latin-1"), schema)
    with pytest.raises(AnnotationError, match="malformed CSV"):
        load_annotations(write(tmp_path, [row(), 'a,b,"c,d,e,f,g']), schema)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(AnnotationError, match=r"empty\.csv: empty file"):
        load_annotations(tmp_path / "empty.csv", schema)


def test_syndicated_stoltenberg_quote_is_one_group(table):
    quote = table[table["text"].str.contains("fuelling Russia", regex=False)]
    assert len(quote) == 2  # the third copy has the same normalised text, hence the same id
    assert quote["article_id"].nunique() == 2 and quote["group_id"].nunique() == 1
    propping = table[table["text"].str.contains("propping up Russia", regex=False)]
    assert propping["group_id"].nunique() == 1 and len(propping) == 2


def test_unrelated_sentences_stay_apart():
    texts = ["NATO will meet South Korea in Washington next week.",
             "Japan pledged 50 million dollars in aid to Kenya.",
             "NATO will meet South Korea in Washington next week, officials said."]
    groups = near_duplicate_groups([sentence_id(t) for t in texts], texts)
    assert groups[0] == groups[2] != groups[1]


def test_group_folds_never_split_a_group(table):
    corpus = table[table["source"] == "corpus"].reset_index(drop=True)
    seen_test = []
    for train, test in group_folds(corpus, 5, seed=3):
        assert not set(corpus["group_id"].iloc[train]) & set(corpus["group_id"].iloc[test])
        seen_test.extend(test)
    assert sorted(seen_test) == list(range(len(corpus)))


def test_story_folds_hold_out_whole_stories_and_their_quotes(table):
    corpus = table[table["source"] == "corpus"].reset_index(drop=True)
    folds = list(story_folds(corpus))
    assert [story for story, _, _ in folds] == sorted(corpus["story_id"].unique())
    for story, train, test in folds:
        assert set(corpus["story_id"].iloc[test]) == {story}
        assert story not in set(corpus["story_id"].iloc[train])
        assert not set(corpus["group_id"].iloc[train]) & set(corpus["group_id"].iloc[test])


def test_dataset_dict_features_and_splits(table, schema, tmp_path):
    dataset = to_dataset_dict(table, schema)
    assert set(dataset) == {"corpus", "authored"}
    feature = dataset["corpus"].features["labels"]
    assert feature.feature.names == schema.names
    first = dataset["corpus"][0]
    assert first["label_vector"] == schema.encode(
        [schema.names[i] for i in first["labels"]])
    assert set(dataset["authored"]["source"]) == {"authored"}
    dataset.save_to_disk(str(tmp_path / "ds"))
    dataset["corpus"].to_parquet(str(tmp_path / "corpus.parquet"))
    assert len(pd.read_parquet(tmp_path / "corpus.parquet")) == dataset["corpus"].num_rows


def test_generic_labeled_file_with_its_own_ids(tmp_path, schema):
    path = tmp_path / "extra.jsonl"
    path.write_text('{"text": "Japan pledged aid to Kenya.", "labels": ["aid_pledge"]}\n'
                    '{"text": "Rain fell.", "labels": []}\n', encoding="utf-8")
    table = load_labeled_file(path, schema)
    assert list(table["sentence_id"]) == [sentence_id("Japan pledged aid to Kenya."),
                                          sentence_id("Rain fell.")]
    assert np.all(table["story_id"] != "")


@pytest.mark.parametrize(("content", "problem"), [
    ('{"text": "Rain fell.", "labels": []}\n[1, 2]\n', r"extra\.jsonl:2: not a JSON object"),
    ('{"text": "Rain fell.", "labels": []}\n\n{"text": \n', r"extra\.jsonl:3: malformed JSON"),
    ('{"text": "Rain fell.", "labels": []}\n\n{"text": "Hail.", "labels": ["hail"]}\n',
     r"extra\.jsonl:3: .*hail"),
])
def test_bad_labeled_jsonl_names_the_line(tmp_path, schema, content, problem):
    path = tmp_path / "extra.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AnnotationError, match=problem):
        load_labeled_file(path, schema)
