"""Score an exported model on the held-out test split, per label (for reporting only).

The README's "before and after" table comes from this script: the champion exported before the
pool sentences were labeled (kept outside the repo) and the current champion, both scored on the
same test sentences. Do not use it to choose models or thresholds: the test split is for the
champion's final report only.

    python scripts/score_test_split.py models/champion [OTHER_MODEL_DIR ...]
"""

from __future__ import annotations

import sys

import pandas as pd

from newsevents.dataset import TEST, load_table, multi_hot
from newsevents.evaluate import bootstrap_macro_f1, decide, label_metrics
from newsevents.labels import load_schema
from newsevents.predict import Predictor


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    schema = load_schema()
    table = load_table(schema)
    test = table[table["split"] == TEST].reset_index(drop=True)
    y = multi_hot(test, schema)
    rows = []
    for location in argv:
        predictor = Predictor.load(location)
        if predictor.labels != schema.names:
            print(f"{location}: labels {predictor.labels} are not the schema's", file=sys.stderr)
            return 1
        pred = decide(predictor.scores(list(test["text"])), predictor.thresholds)
        metrics = label_metrics(y, pred, schema.names, schema.multiclass)
        low, high = bootstrap_macro_f1(y, [pred], test["unit_id"].to_numpy(), 1000, seed=13)
        rows.append({"model": location, **{n: round(metrics[f"f1_{n}"], 3) for n in schema.names},
                     "macro_f1": round(metrics["macro_f1"], 3),
                     "95% CI": f"[{low:.3f}, {high:.3f}]"})
    print(f"test split: {len(test)} sentences from {test['article_id'].nunique()} documents")
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
