"""Which sentences must stay together: near-duplicate groups, fold units and the folds.

A quote syndicated in several articles, or a line a country repeats every year, is one
*near-duplicate group*; a document and every group that touches it form one *fold unit*.
Cross-validation folds (:func:`group_folds`) never put one unit on both sides, so no model is
scored on a sentence it saw, or on a copy of one.

>>> near_duplicate_groups(["s1", "s2", "s3"], ["NATO will meet Seoul next week in Washington.",
...     "NATO will meet Seoul next week in Washington, officials said.", "Rain fell."])
['gs1', 'gs1', 'gs3']
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from newsevents.corpus import normalize

# Two sentences are near-duplicates when most words of the shorter one are in the longer one
# and the two are of similar length (else a short stock phrase would join every long sentence
# that contains its words, and chain unrelated documents together).
NEAR_DUPLICATE_CONTAINMENT = 0.8
NEAR_DUPLICATE_JACCARD = 0.5
STRATIFY_MAX_UNITS = 500

_WORD = re.compile(r"[^\W_]{3,}")  # runs of 3+ letters or digits


def _word_sets(texts: Sequence[str]) -> sparse.csr_matrix:
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        words = set(_WORD.findall(normalize(text)))
        for w in words:
            rows.append(i)
            cols.append(vocab.setdefault(w, len(vocab)))
    data = np.ones(len(rows), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(texts), max(len(vocab), 1)))


class _UnionFind:
    """Disjoint sets over ``0..n-1`` (path halving)."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)

    def labels(self, names: Sequence[str], prefix: str) -> list[str]:
        """Per element: ``prefix`` + the smallest name in its set."""
        roots = [self.find(i) for i in range(len(names))]
        smallest: dict[int, str] = {}
        for root, name in zip(roots, names, strict=True):
            smallest[root] = min(smallest.get(root, name), name)
        return [prefix + smallest[root] for root in roots]


def near_duplicate_groups(ids: Sequence[str], texts: Sequence[str],
                          threshold: float = NEAR_DUPLICATE_CONTAINMENT) -> list[str]:
    """Group id per sentence: sentences sharing ≥ ``threshold`` of the shorter one's words, and
    at least half of all their words, join.

    Containment (overlap / size of the smaller word set) catches a quote that one outlet
    prefixes with "Quote from X:"; the overlap bound keeps "We are very proud of that." apart
    from the long sentences that happen to contain its words. Groups are closed transitively.
    """
    n = len(texts)
    words = _word_sets(texts)
    sizes = np.asarray(words.sum(axis=1)).ravel()
    sets = _UnionFind(n)
    transposed = words.T.tocsc()
    # Blocks of rows: the full overlap matrix of ten thousand sentences would take gigabytes.
    for start in range(0, n, 1000):
        overlap = (words[start:start + 1000] @ transposed).tocoo()
        rows = overlap.row + start
        shared, cols = overlap.data, overlap.col
        smaller = np.maximum(np.minimum(sizes[rows], sizes[cols]), 1)
        union = sizes[rows] + sizes[cols] - shared
        keep = ((rows < cols) & (shared >= threshold * smaller) & (shared >= 4)
                & (shared >= NEAR_DUPLICATE_JACCARD * union))
        for i, j in zip(rows[keep], cols[keep], strict=True):
            sets.union(int(i), int(j))
    return sets.labels([str(i) for i in ids], "g")


def fold_units(table: pd.DataFrame) -> list[str]:
    """Per row, the unit that folds keep whole: its document merged with its near-duplicates.

    Rows with an empty ``story_id`` (authored sentences, or a labeled file without a document
    column) are units of their near-duplicate group alone.
    """
    sets = _UnionFind(len(table))
    first: dict[str, int] = {}
    for i, key in enumerate(zip(table["story_id"], table["group_id"], strict=True)):
        for kind, value in zip(("s:", "g:"), key, strict=True):
            if value:
                sets.union(i, first.setdefault(kind + value, i))
    return sets.labels(list(table["group_id"]), "u")


def group_folds(table: pd.DataFrame, n_splits: int, seed: int, stratify: bool = True
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """K folds over ``table`` rows that never split a fold unit (document + near-duplicates).

    ``K`` is at most the number of units. ``stratify`` spreads each row's rarest label over
    the folds (StratifiedGroupKFold). Its greedy search takes seconds on thousands of units,
    where random assignment spreads labels evenly anyway: above
    :data:`STRATIFY_MAX_UNITS` units, and in inner splits, folds are drawn at random.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    # Integer codes: scikit-learn's membership tests on string arrays cost ~0.3 s per fold.
    units = pd.factorize(table["unit_id"])[0]
    n_units = int(units.max()) + 1 if len(units) else 0
    n_splits = min(n_splits, n_units)
    if not stratify or n_units > STRATIFY_MAX_UNITS:
        folds = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        yield from folds.split(np.zeros(len(table)), groups=units)
        return
    counts = pd.Series([n for ls in table["labels"] for n in ls]).value_counts()
    strata = [min(ls, key=lambda n: counts[n]) if ls else "none" for ls in table["labels"]]
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Expected with few sentences: some labels have fewer members than folds.
        warnings.filterwarnings("ignore", message="The least populated class")
        yield from folds.split(np.zeros(len(table)), strata, groups=units)
