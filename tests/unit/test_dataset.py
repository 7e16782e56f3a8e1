"""Annotation validation, near-duplicate groups, folds and the DatasetDict."""

from __future__ import annotations

import pandas as pd
import pytest

from newsevents.corpus import sentence_id
from newsevents.dataset import (
    AnnotationError,
    load_annotations,
    load_corpus_index,
    load_labeled_file,
    to_dataset_dict,
)
from newsevents.groups import fold_units, group_folds, near_duplicate_groups

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
    assert list(frame["source"]) == ["seed", "seed"]


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


def test_group_folds_never_split_a_unit(table):
    real = table[table["split"] == "train"].reset_index(drop=True)
    seen_test = []
    for train, test in group_folds(real, 5, seed=3):
        assert not set(real["unit_id"].iloc[train]) & set(real["unit_id"].iloc[test])
        assert not set(real["story_id"].iloc[train]) & set(real["story_id"].iloc[test])
        seen_test.extend(test)
    assert sorted(seen_test) == list(range(len(real)))


def test_fold_units_merge_documents_and_near_duplicates():
    frame = pd.DataFrame({"story_id": ["d1", "d1", "d2", "d3", "", ""],
                          "group_id": ["g1", "g2", "g2", "g3", "g4", "g3"]})
    units = fold_units(frame)
    # d1 and d2 share a near-duplicate (g2); the authored row in g3 joins d3; g4 stays alone.
    assert units[0] == units[1] == units[2] != units[3]
    assert units[5] == units[3] != units[4]


def test_folds_use_at_most_one_fold_per_unit():
    frame = pd.DataFrame({"story_id": ["a", "a", "b", "b"], "group_id": ["1", "2", "3", "4"],
                          "labels": [["x"], [], ["x"], []]})
    frame["unit_id"] = fold_units(frame)
    folds = list(group_folds(frame, 5, seed=0))
    assert len(folds) == 2


def test_dataset_dict_features_and_splits(table, schema, tmp_path):
    dataset = to_dataset_dict(table, schema)
    assert set(dataset) == {"train", "test", "authored"}
    feature = dataset["train"].features["labels"]
    assert feature.feature.names == schema.names
    first = dataset["train"][0]
    assert first["label_vector"] == schema.encode(
        [schema.names[i] for i in first["labels"]])
    assert set(dataset["authored"]["source"]) == {"authored"}
    dataset.save_to_disk(str(tmp_path / "ds"))
    dataset["train"].to_parquet(str(tmp_path / "train.parquet"))
    assert len(pd.read_parquet(tmp_path / "train.parquet")) == dataset["train"].num_rows


def test_labeled_file_without_ids_gets_stable_ids_and_no_documents(tmp_path, schema):
    path = tmp_path / "extra.jsonl"
    path.write_text('{"text": "Japan pledged aid to Kenya.", "labels": ["aid_pledge"]}\n'
                    '{"text": "Rain fell.", "labels": []}\n', encoding="utf-8")
    table = load_labeled_file(path, schema)
    assert list(table["sentence_id"]) == [sentence_id("Japan pledged aid to Kenya."),
                                          sentence_id("Rain fell.")]
    assert set(table["story_id"]) == {""}  # no document column: folds by sentence
    assert table["unit_id"].nunique() == 2


def test_labeled_file_keeps_the_users_own_ids_and_documents(tmp_path, schema):
    path = write(tmp_path, ["train00001,doc-a,Japan pledged aid to Kenya.,aid_pledge,",
                            "train00002,doc-a,Rain fell.,,"],
                 header="sentence_id,document_id,text,labels,note")
    table = load_labeled_file(path, schema)
    assert list(table["sentence_id"]) == ["train00001", "train00002"]
    assert list(table["story_id"]) == ["doc-a", "doc-a"]
    assert table["unit_id"].nunique() == 1


def test_labeled_file_merges_exact_repeats_with_one_warning(tmp_path, schema):
    path = write(tmp_path, ["Rain fell.,", "Japan pledged aid.,aid_pledge", "Rain fell.,",
                            "rain  fell,"], header="text,labels")
    with pytest.warns(UserWarning, match="merged 2 rows") as caught:
        table = load_labeled_file(path, schema)
    assert len(caught) == 1
    assert list(table["text"]) == ["Rain fell.", "Japan pledged aid."]


def test_labeled_file_refuses_one_text_with_two_labelings(tmp_path, schema):
    path = write(tmp_path, ["Rain fell.,", "Japan pledged aid.,aid_pledge",
                            "Japan pledged aid.,"], header="text,labels")
    with pytest.raises(AnnotationError, match=r"a\.csv:4: same text as row 3 with other labels"):
        load_labeled_file(path, schema)


@pytest.mark.parametrize(("header", "rows", "problem"), [
    ("text,label", ["Rain fell.,"], r"missing column\(s\) labels"),
    ("sentence,labels", ["Rain fell.,"], r"missing column\(s\) text"),
    ("text,labels", ["Rain fell.,hail"], r"a\.csv:2: unknown label 'hail'"),
])
def test_bad_labeled_file_is_one_line_naming_file_and_row(tmp_path, schema, header, rows,
                                                          problem):
    with pytest.raises(AnnotationError, match=problem):
        load_labeled_file(write(tmp_path, rows, header=header), schema)


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


@pytest.mark.parametrize(("cell", "problem"), [
    ("", r"a\.csv:3: 0 labels \(none\) but schema .*mc\.yaml is multiclass"),
    ("aid_pledge;policy_shift", r"a\.csv:3: 2 labels \(aid_pledge;policy_shift\) but schema"),
])
def test_multiclass_labeled_file_needs_one_label_per_row(tmp_path, cell, problem):
    from newsevents.labels import load_schema

    (tmp_path / "mc.yaml").write_text("type: multiclass\nlabels:\n  - {name: aid_pledge}\n"
                                      "  - {name: policy_shift}\n")
    schema = load_schema(tmp_path / "mc.yaml")
    path = write(tmp_path, ["Rain fell.,policy_shift", f"Japan pledged aid.,{cell}"],
                 header="text,labels")
    with pytest.raises(AnnotationError, match=problem) as err:
        load_labeled_file(path, schema)
    assert len(err.value.problems) == 1


def test_labeled_file_reports_empty_text_rather_than_merging_it(tmp_path, schema):
    path = write(tmp_path, ['"  ",aid_pledge', "Rain fell.,", '"",'], header="text,labels")
    with pytest.raises(AnnotationError) as err:
        load_labeled_file(path, schema)
    assert err.value.problems == [f"{path}:2: empty text", f"{path}:4: empty text"]
