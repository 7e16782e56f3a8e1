"""The labeled pool sentences and the fixed test split: complete, consistent and leak-free."""

from __future__ import annotations

import pandas as pd
import pytest

from newsevents import paths
from newsevents.corpus import sentence_id
from newsevents.dataset import leaking_rows, read_test_documents

POOL_FILES = {"un_general_debate": paths.POOL_ANNOTATIONS / "un-general-debate.csv",
              "muc4": paths.POOL_ANNOTATIONS / "muc4.csv"}
COLUMNS = ["sentence_id", "source", "document_id", "text", "labels", "sampled_by", "note"]


@pytest.fixture(scope="module")
def pools() -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(path, dtype=str, keep_default_na=False)
            for name, path in POOL_FILES.items()}


def test_pool_files_have_the_columns_their_pool_and_matching_ids(pools):
    for name, frame in pools.items():
        assert list(frame.columns) == COLUMNS, name
        assert set(frame["source"]) == {name}
        assert (frame["sentence_id"] == frame["text"].map(sentence_id)).all(), name
        assert frame["sentence_id"].is_unique
        assert (frame["sampled_by"] != "").all()


def test_pools_are_large_spread_out_and_rich_in_every_label(pools, schema):
    for name, frame in pools.items():
        assert len(frame) >= 2000, name
        assert frame.groupby("document_id").size().max() <= 10, name
    both = pd.concat(pools.values())
    assert len(both) >= 5000
    labels = both["labels"].map(schema.parse)
    for label in schema.names:
        assert sum(label in ls for ls in labels) >= 400, label
    # About a third drawn at random (first round, and a random top-up of the sampled
    # documents), so that base rates and "none" are real.
    assert both["sampled_by"].str.startswith("random").mean() >= 0.3


def test_test_split_holds_whole_documents_of_each_pool(pools, table):
    held_out = read_test_documents()
    for name, frame in pools.items():
        documents = set(frame["document_id"])
        test_docs = {doc for pool, doc in held_out if pool == name}
        assert test_docs <= documents, f"{name}: test documents without labeled sentences"
        assert len(test_docs) >= 0.2 * len(documents), name
    # No document on both sides, and every held-out sentence is in the test split.
    splits = table.groupby(["source", "article_id"])["split"].nunique()
    assert splits.max() == 1
    test = table[table["split"] == "test"]
    assert set(zip(test["source"], test["article_id"], strict=True)) == held_out


def test_no_training_sentence_near_duplicates_a_test_sentence(table):
    leaking = table[leaking_rows(table)]
    assert leaking.empty, leaking[["source", "article_id", "text"]].head().to_string()


@pytest.mark.parametrize("path", sorted(paths.SOFT_ANNOTATIONS.glob("*.csv.gz")),
                         ids=lambda p: p.name)
def test_committed_soft_labels_are_well_formed_and_stay_off_the_test_split(path, schema, table):
    from newsevents.soft_labels import read_soft_labels

    soft = read_soft_labels(path, schema)  # columns, sidecar thresholds, scores in [0, 1]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(frame) > 1000 and "text" not in frame.columns  # the pools' text stays out
    assert len(soft.scores) == len(frame)
    assert not set(zip(frame["source"], frame["document_id"], strict=True)) & \
        read_test_documents()
    assert not set(frame["sentence_id"]) & set(table["sentence_id"])  # none labeled by hand
