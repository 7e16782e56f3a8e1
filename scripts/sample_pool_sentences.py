"""Pick the real pool sentences to label (UN General Debate speeches and MUC-4 news wire).

A third of each pool's quota is drawn at random, so that "none" and the base rates are real; the
rest is targeted per label: keyword hits, the champion's most uncertain sentences, and sentences
where the champion and a second model (static embeddings only) disagree. At most 10 sentences per
document (counting sentences labeled earlier), at most 40 per UN country. A quarter of the
sampled documents of each pool (never a document labeled before) is drawn as the test split.

Writes ``OUT/queue.jsonl`` (one sentence per line with its context, pool, document and how it was
picked) and ``OUT/test-documents.csv``. Reads ``shared/corpus``; exits cleanly without it.

    python scripts/sample_pool_sentences.py --second-model DIR --out /tmp/queue

``--top-up LABEL=N`` (repeatable) draws a second round instead: the N unlabeled sentences that a
model trained on the first round's labels (``--model DIR``) scores highest for LABEL, from the
documents already sampled (so the test split's document list stays as it was), within the caps;
``random=N`` draws N of those sentences at random (``random-topup``).

    python scripts/sample_pool_sentences.py --model DIR --top-up aid_pledge=450 --out /tmp/topup
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from newsevents import paths
from newsevents.corpus import split_article
from newsevents.labels import load_schema
from newsevents.lexicon import count_keywords, keyword_patterns
from newsevents.predict import Predictor

POOLS = {"un_general_debate": paths.UN_DEBATE,
         "muc4": paths.SHARED / "corpus" / "muc4" / "muc4-news-1989-1991.jsonl.gz"}
QUOTA = {"un_general_debate": 2800, "muc4": 2700}
RANDOM_SHARE = 1 / 3
STRATEGY_SHARE = {"keyword": 0.4, "uncertain": 0.3, "disagree": 0.3}
PER_DOCUMENT, PER_COUNTRY = 10, 40
TEST_SHARE = 0.25
MIN_CHARS, MAX_CHARS, MIN_WORDS = 20, 1000, 4
SEED = 20261125


def read_pool(name: str, path: Path) -> pd.DataFrame:
    """Every sentence of a pool, split as training and prediction split them."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            sentences = split_article(doc["text"], doc["id"])
            texts = [s.text for s in sentences]
            for i, s in enumerate(sentences):
                rows.append({"pool": name, "document_id": doc["id"], "index": s.index,
                             "sentence_id": s.id, "text": s.text,
                             "country": doc.get("country", ""), "year": doc.get("year", ""),
                             "context_before": " ".join(texts[max(0, i - 2):i]),
                             "context_after": " ".join(texts[i + 1:i + 2])})
    return pd.DataFrame(rows)


def already_labeled() -> tuple[set[str], Counter]:
    """Sentence ids labeled anywhere in the project, and pool documents' counts of them."""
    ids: set[str] = set()
    for path in paths.ANNOTATIONS.rglob("*.csv"):
        ids |= set(pd.read_csv(path, dtype=str, keep_default_na=False)["sentence_id"])
    per_document: Counter = Counter()
    for path in paths.POOL_ANNOTATIONS.glob("*.csv"):
        per_document.update(pd.read_csv(path, dtype=str, keep_default_na=False)["document_id"])
    return ids, per_document


class Picker:
    """Draws sentences while keeping the per-document and per-country caps."""

    def __init__(self, table: pd.DataFrame, prior_docs: Counter, rng: np.random.Generator):
        self.table, self.rng = table, rng
        self.per_doc: Counter = Counter(prior_docs)
        self.per_country: Counter = Counter()
        self.chosen: dict[int, str] = {}  # row -> sampled_by

    def take(self, candidates: np.ndarray, n: int, why: str) -> int:
        """Take up to ``n`` rows of ``candidates`` (in the order given) that fit the caps."""
        taken = 0
        for row in candidates:
            if taken >= n:
                break
            if row in self.chosen:
                continue
            doc, country = self.table.at[row, "document_id"], self.table.at[row, "country"]
            if self.per_doc[doc] >= PER_DOCUMENT or (
                    country and self.per_country[country] >= PER_COUNTRY):
                continue
            self.chosen[row] = why
            self.per_doc[doc] += 1
            if country:
                self.per_country[country] += 1
            taken += 1
        return taken


def sample_pool(table: pd.DataFrame, scores: np.ndarray, thresholds: np.ndarray,
                second: np.ndarray, second_thresholds: np.ndarray, keywords: np.ndarray,
                names: list[str], quota: int, prior_docs: Counter,
                rng: np.random.Generator) -> dict[int, str]:
    picker = Picker(table, prior_docs, rng)
    n_random = round(quota * RANDOM_SHARE)
    picker.take(rng.permutation(len(table)), n_random, "random")
    per_label = (quota - n_random) / len(names)
    # Distance from the decision threshold on the logit scale: near zero = unsure.
    logit = np.log(np.clip(scores, 1e-6, 1 - 1e-6) / np.clip(1 - scores, 1e-6, 1))
    margin = np.abs(logit - np.log(thresholds / (1 - thresholds)))
    for j, name in enumerate(names):
        pools = {
            "keyword": np.flatnonzero(keywords[:, j] > 0),
            # Draw at random among the 3x most uncertain, so one cluster does not fill the quota.
            "uncertain": np.argsort(margin[:, j], kind="stable")[: int(per_label * 3)],
            "disagree": np.flatnonzero((scores[:, j] >= thresholds[j])
                                       != (second[:, j] >= second_thresholds[j])),
        }
        for strategy, share in STRATEGY_SHARE.items():
            picker.take(rng.permutation(pools[strategy]), round(per_label * share),
                        f"{strategy}:{name}")
    # Top up with random sentences if a strategy ran dry (no-op when the quota is met).
    picker.take(rng.permutation(len(table)), quota - len(picker.chosen), "random")
    return picker.chosen


def candidates(pool: str, path: Path, labeled: set[str]) -> pd.DataFrame:
    """A pool's sentences that may be drawn: unlabeled, of a sensible length."""
    table = read_pool(pool, path).drop_duplicates("sentence_id")
    n_words = table["text"].str.split().str.len()
    return table[~table["sentence_id"].isin(labeled)
                 & table["text"].str.len().between(MIN_CHARS, MAX_CHARS)
                 & (n_words >= MIN_WORDS)].reset_index(drop=True)


def top_up(model: Predictor, wanted: dict[str, int], out: Path) -> None:
    """Second round: the highest-scoring unlabeled sentences of already sampled documents."""
    schema = load_schema()
    labeled, per_document = already_labeled()
    tables = []
    for pool, path in POOLS.items():
        table = candidates(pool, path, labeled)
        tables.append(table[table["document_id"].isin(per_document)])
    table = pd.concat(tables, ignore_index=True)
    scores = model.scores(list(table["text"]))
    picker = Picker(table, per_document, np.random.default_rng(SEED))
    for name, n in wanted.items():
        if name == "random":  # random sentences of the sampled documents, for the base rates
            picker.take(picker.rng.permutation(len(table)), n, "random-topup")
            continue
        j = schema.index(name)
        picker.take(np.argsort(-scores[:, j], kind="stable"), n, f"topup:{name}")
    part = table.loc[list(picker.chosen)].assign(sampled_by=list(picker.chosen.values()))
    out.mkdir(parents=True, exist_ok=True)
    part.to_json(out / "queue.jsonl", orient="records", lines=True, force_ascii=False)
    print(f"wrote {len(part)} sentences to {out}: {Counter(part['sampled_by'])}",
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--second-model", type=Path,
                        help="model directory of the second (disagreement) model")
    parser.add_argument("--model", type=Path, help="model directory (default: the champion)")
    parser.add_argument("--top-up", action="append", default=[], metavar="LABEL=N")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not all(p.exists() for p in POOLS.values()):
        print(f"pools not found under {paths.SHARED / 'corpus'}; nothing to do", file=sys.stderr)
        return 0
    if args.top_up:
        wanted = {k: int(v) for k, v in (item.split("=") for item in args.top_up)}
        top_up(Predictor.load(args.model), wanted, args.out)
        return 0
    if args.second_model is None:
        parser.error("--second-model is required for the first round")
    schema = load_schema()
    champion, second = Predictor.load(args.model), Predictor.load(args.second_model)
    patterns = keyword_patterns([label.keywords for label in schema.labels])
    labeled, prior_docs = already_labeled()
    rng = np.random.default_rng(SEED)
    picked, test_docs = [], []
    for pool, path in POOLS.items():
        table = candidates(pool, path, labeled)
        texts = list(table["text"])
        print(f"{pool}: {len(table):,} candidate sentences", file=sys.stderr)
        scores, other = champion.scores(texts), second.scores(texts)
        keywords = np.array([count_keywords(patterns, t) for t in texts])
        chosen = sample_pool(table, scores, champion.thresholds, other, second.thresholds,
                             keywords, schema.names, QUOTA[pool], prior_docs, rng)
        part = table.loc[list(chosen)].assign(sampled_by=list(chosen.values()))
        docs = sorted(set(part["document_id"]) - set(prior_docs))
        n_test = int(np.ceil(TEST_SHARE * len(docs)))
        test_docs += [(pool, d) for d in rng.permutation(docs)[:n_test]]
        picked.append(part)
        print(f"{pool}: {len(part)} sentences from {part['document_id'].nunique()} documents; "
              f"{Counter(s.split(':')[0] for s in part['sampled_by'])}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    queue = pd.concat(picked, ignore_index=True)
    queue.to_json(args.out / "queue.jsonl", orient="records", lines=True, force_ascii=False)
    pd.DataFrame(sorted(test_docs), columns=["pool", "document_id"]).to_csv(
        args.out / "test-documents.csv", index=False)
    print(f"wrote {len(queue)} sentences and {len(test_docs)} test documents to {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
