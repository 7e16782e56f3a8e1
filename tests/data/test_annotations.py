"""The shipped annotations: valid, complete, and the authored bank as the issue asks."""

from __future__ import annotations

import pandas as pd

from newsevents import paths
from newsevents.dataset import load_corpus_index


def test_every_corpus_sentence_is_annotated_exactly_once(table):
    corpus = load_corpus_index()
    seed = table[table["article_id"].isin(corpus.stories)]
    assert set(seed["sentence_id"]) == set(corpus.sentences)
    assert seed["sentence_id"].is_unique
    assert len(seed) >= 60


def test_seed_labels_follow_the_guide_examples(table):
    def labels_of(fragment):
        [labels] = table.loc[table["text"].str.contains(fragment, regex=False), "labels"]
        return labels

    assert "aid_pledge" in labels_of("thanked South Korea for providing non-lethal aid")
    assert "aid_pledge" not in labels_of("NATO called on South Korea to increase military")
    assert "policy_shift" in labels_of("would review the possibility of supplying weapons")
    assert "policy_shift" not in labels_of("because the country’s policy prohibits the supply")
    assert "diplomatic_meeting" in labels_of("he has invited the leaders of South Korea")
    assert "threat_attribution" in labels_of("strongly condemned a strategic partnership")


def test_authored_bank_is_marked_and_large_enough(schema):
    authored = pd.read_csv(paths.AUTHORED_ANNOTATIONS, dtype=str, keep_default_na=False)
    assert set(authored["source"]) == {"authored"}
    labels = authored["labels"].map(schema.parse)
    for name in schema.names:
        assert sum(name in ls for ls in labels) >= 80, name
    assert sum(not ls for ls in labels) >= 200  # hard negatives


def test_manifest_lists_every_raw_article_with_a_story():
    manifest = pd.read_csv(paths.MANIFEST, dtype=str, keep_default_na=False)
    # data/raw/ holds articles and nothing else: `newsevents predict data/raw` reads all of it.
    assert paths.MANIFEST.parent != paths.RAW
    listed = sorted((paths.MANIFEST.parent / f).resolve() for f in manifest["file"])
    assert listed == sorted(p.resolve() for p in paths.RAW.iterdir())
    assert manifest["story_id"].value_counts().to_dict()["nato-presser-2024-07-05"] == 3
    assert (manifest[["article_id", "outlet", "date", "story_id"]] != "").all().all()


def test_articles_sharing_quotes_share_a_story(table):
    seed = table[table["source"] == "seed"]
    stories_per_group = seed.groupby("group_id")["story_id"].nunique()
    assert stories_per_group.max() == 1

