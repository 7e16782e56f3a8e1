"""Inter-annotator agreement on the double-annotated pool sentences: Cohen's kappa per label.

Reads ``data/annotations/agreement/double-annotation.csv`` (two independent labelings and the
adjudicated result, by sentence id) and the pool files (for each sentence's pool and how it was
drawn), and prints kappa per label overall, per pool, and on the randomly drawn sentences alone
(the targeted ones are richer in positives, which raises kappa).

    python scripts/agreement.py
"""

from __future__ import annotations

import sys

import pandas as pd
from sklearn.metrics import cohen_kappa_score

from newsevents import paths
from newsevents.labels import load_schema

AGREEMENT = paths.ANNOTATIONS / "agreement" / "double-annotation.csv"


def kappa_table(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Kappa, positives per annotator and disagreements, one row per label."""
    rows = []
    for name in names:
        first = frame["first"].map(lambda cell, n=name: n in cell.split(";"))
        second = frame["second"].map(lambda cell, n=name: n in cell.split(";"))
        rows.append({"label": name, "kappa": round(cohen_kappa_score(first, second), 3),
                     "positives_first": int(first.sum()), "positives_second": int(second.sum()),
                     "disagreements": int((first != second).sum())})
    return pd.DataFrame(rows)


def main() -> int:
    schema = load_schema()
    frame = pd.read_csv(AGREEMENT, dtype=str, keep_default_na=False)
    pools = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False)
                       for p in sorted(paths.POOL_ANNOTATIONS.glob("*.csv"))])
    frame = frame.merge(pools[["sentence_id", "source", "sampled_by"]], on="sentence_id")
    parts = {"all": frame, **{f"pool {s}": g for s, g in frame.groupby("source")},
             "random draws only": frame[frame["sampled_by"].str.startswith("random")]}
    for title, part in parts.items():
        print(f"\n{title}: {len(part)} sentences, "
              f"{int((part['first'] != part['second']).sum())} with any disagreement")
        print(kappa_table(part, schema.names).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
