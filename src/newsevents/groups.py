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
# Why a training-only row gets no fold unit (training_only_units); a unit id never starts with !.
LABELED = "!labeled by hand"
HELD_OUT = "!in a test document or a near-duplicate of a test sentence"
SPANS = "!near-duplicates in two fold units"

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


def _near_duplicate_pairs(words: sparse.csr_matrix, rows: range, cols: range,
                          threshold: float) -> Iterator[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i`` in ``rows`` and ``j`` in ``cols`` (``i < j`` when the ranges
    overlap), of near-duplicate word sets: see :func:`near_duplicate_groups`."""
    sizes = np.asarray(words.sum(axis=1)).ravel()
    transposed = words[cols.start:cols.stop].T.tocsc()
    # Blocks of rows: the full overlap matrix of ten thousand sentences would take gigabytes.
    for start in range(rows.start, rows.stop, 1000):
        stop = min(start + 1000, rows.stop)
        overlap = (words[start:stop] @ transposed).tocoo()
        left, right = overlap.row + start, overlap.col + cols.start
        shared = overlap.data
        smaller = np.maximum(np.minimum(sizes[left], sizes[right]), 1)
        union = sizes[left] + sizes[right] - shared
        keep = ((left != right) & (shared >= threshold * smaller) & (shared >= 4)
                & (shared >= NEAR_DUPLICATE_JACCARD * union))
        if rows == cols:
            keep &= left < right
        yield from zip(left[keep].tolist(), right[keep].tolist(), strict=True)


def near_duplicate_groups(ids: Sequence[str], texts: Sequence[str],
                          threshold: float = NEAR_DUPLICATE_CONTAINMENT) -> list[str]:
    """Group id per sentence: sentences sharing ≥ ``threshold`` of the shorter one's words, and
    at least half of all their words, join.

    Containment (overlap / size of the smaller word set) catches a quote that one outlet
    prefixes with "Quote from X:"; the overlap bound keeps "We are very proud of that." apart
    from the long sentences that happen to contain its words. Groups are closed transitively.
    """
    n = len(texts)
    sets = _UnionFind(n)
    for i, j in _near_duplicate_pairs(_word_sets(texts), range(n), range(n), threshold):
        sets.union(i, j)
    return sets.labels([str(i) for i in ids], "g")


def near_duplicates_of(texts: Sequence[str], reference: Sequence[str],
                       threshold: float = NEAR_DUPLICATE_CONTAINMENT) -> list[set[int]]:
    """Per text, the indices of the ``reference`` texts it near-duplicates (the same test as
    :func:`near_duplicate_groups`, pair by pair, not closed transitively).

    >>> near_duplicates_of(["NATO will meet Seoul next week in Washington, officials said."],
    ...                    ["Rain fell.", "NATO will meet Seoul next week in Washington."])
    [{1}]
    """
    n = len(texts)
    words = _word_sets([*texts, *reference])
    out: list[set[int]] = [set() for _ in range(n)]
    for i, j in _near_duplicate_pairs(words, range(n), range(n, n + len(reference)), threshold):
        out[i].add(j - n)
    return out


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


def training_only_units(reference: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """Per training-only row (``source``, ``article_id``, ``text``; soft-labeled pool
    sentences), the fold unit that keeps it out of every fold that scores a sentence of its
    document or one it near-duplicates, among the labeled ``reference`` rows (``source``,
    ``article_id``, ``text``, ``unit_id``, ``held_out``).

    A row near no labeled sentence of another document, in a document with none, is a unit of
    its own document. Instead of a unit: :data:`HELD_OUT` for a row of a held-out document or
    near a held-out sentence, :data:`SPANS` for a row that would tie two units together (that
    would change the folds).
    """
    doc_unit = dict(zip(zip(reference["source"], reference["article_id"], strict=True),
                        reference["unit_id"], strict=True))
    held = reference["held_out"].to_numpy()
    held_docs = set(zip(reference["source"][held], reference["article_id"][held], strict=True))
    unit_ids = reference["unit_id"].to_numpy()
    out = []
    for source, doc, linked in zip(rows["source"], rows["article_id"],
                                   near_duplicates_of(list(rows["text"]),
                                                      list(reference["text"])), strict=True):
        touched = {unit_ids[j] for j in linked}
        if (source, doc) in doc_unit:
            touched.add(doc_unit[(source, doc)])
        if (source, doc) in held_docs or any(held[j] for j in linked):
            out.append(HELD_OUT)
        elif len(touched) > 1:
            out.append(SPANS)
        else:
            out.append(touched.pop() if touched else f"u{source}:{doc}")
    return out


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
