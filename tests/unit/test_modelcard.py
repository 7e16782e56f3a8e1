"""The model card says what the metrics say, and its weaknesses follow from them."""

from __future__ import annotations

from newsevents.labels import Label, LabelSchema
from newsevents.modelcard import CardFacts, headline, render, weaknesses

SCHEMA = LabelSchema((Label("rain", "It rains."), Label("snow", "It snows.")),
                     guideline="docs/guide.md", source="labels.yaml", digest="d" * 64)


def facts(**changes) -> CardFacts:
    base = {"name": "demo", "description": "A demo model.", "schema": SCHEMA,
            "features": ["tfidf_word"], "model": "logreg", "thresholds": [0.4, 0.6],
            "data_source": "data.csv", "data_digest": "a" * 64, "documents": 5,
            "cv_unit": "document", "folds": 5, "repeats": 1, "bootstrap": 1000,
            "run_id": "r123"}
    return CardFacts(**{**base, **changes})


def metrics(**changes) -> dict[str, float]:
    m = {"macro_f1": 0.7, "macro_f1_ci_low": 0.55, "macro_f1_ci_high": 0.8, "micro_f1": 0.72,
         "n_train_sentences": 120, "n_real_sentences": 20, "n_authored_sentences": 100}
    for name, (p, r, f, support) in {"rain": (0.8, 0.7, 0.747, 12),
                                     "snow": (0.5, 0.9, 0.643, 4)}.items():
        m.update({f"precision_{name}": p, f"recall_{name}": r, f"f1_{name}": f,
                  f"support_{name}": support})
    return {**m, **changes}


def with_test(m: dict[str, float]) -> dict[str, float]:
    return {**m, "test_macro_f1": 0.4, "test_macro_f1_ci_low": 0.3, "test_macro_f1_ci_high": 0.5,
            "test_micro_f1": 0.42, "test_n_sentences": 300, "test_n_documents": 40,
            "test_precision_rain": 0.3, "test_recall_rain": 0.8, "test_f1_rain": 0.436,
            "test_precision_snow": 0.7, "test_recall_snow": 0.2, "test_f1_snow": 0.311}


def test_card_reports_every_label_with_its_own_metrics():
    m = metrics()
    card = render(facts(), m)
    assert card.startswith("# Model card: demo\n")
    per_label = card.split("### Per label", 1)[1]
    for name in ("rain", "snow"):
        row = next(line for line in per_label.splitlines() if line.startswith(f"| `{name}` |"))
        assert row == (f"| `{name}` | {int(m[f'support_{name}'])} | "
                       f"{m[f'precision_{name}']:.3f} | {m[f'recall_{name}']:.3f} | "
                       f"{m[f'f1_{name}']:.3f} |")
    assert "| `rain` | It rains. | 0.400 |" in card  # definition and threshold
    assert "r123" in card and "a" * 64 in card and "docs/guide.md" in card
    assert "20 real sentences from 5 documents" in card
    assert "test split" not in card  # only the champion is scored on it


def test_the_champions_test_scores_get_their_own_columns_and_row():
    card = render(facts(), with_test(metrics()))
    assert ("| held-out test split (300 sentences from 40 documents never used for training, "
            "thresholds or choosing the model) | 0.400 [0.300, 0.500] | 0.420 |") in card
    assert "| `snow` | 4 | 0.500 | 0.900 | 0.643 | 0.700 | 0.200 | 0.311 |" in card


def test_weaknesses_follow_from_the_metrics():
    text = "\n".join(weaknesses(facts(), with_test(metrics())))
    assert "`snow` has 4 real positive sentences" in text and "`rain` has" not in text
    assert "0.550–0.800 (0.25 wide)" in text
    assert "macro-F1 0.700 in grouped CV, 0.400 on the held-out test split" in text
    assert "Weakest label on the test split: `snow` (F1 0.311)" in text
    assert "`rain` over-fires on the test split (precision 0.300, recall 0.800)" in text
    assert "`snow` misses many cases on the test split (precision 0.700, recall 0.200)" in text


def test_a_strong_model_gets_no_invented_weaknesses():
    m = metrics(macro_f1_ci_low=0.68, macro_f1_ci_high=0.72, support_snow=40,
                precision_snow=0.6, recall_snow=0.7)
    text = "\n".join(weaknesses(facts(), m))
    assert "few examples" not in text and "Wide uncertainty" not in text
    assert "Generalises less" not in text and "over-fires" not in text
    assert "Weakest label on cross-validation: `snow` (F1 0.643)" in text


def test_data_without_documents_is_named_as_a_weakness():
    text = "\n".join(weaknesses(facts(documents=0, cv_unit="sentence"), metrics()))
    assert "No document column" in text


def test_headline_is_a_one_row_markdown_table():
    lines = headline(metrics()).splitlines()
    assert len(lines) == 3 and lines[1].count("---") == len(lines[0].split("|")) - 2
    assert "0.700 [0.550, 0.800]" in lines[2] and "0.720" in lines[2]


def test_a_multiclass_card_has_no_thresholds():
    schema = LabelSchema(SCHEMA.labels, source="labels.yaml", type="multiclass")
    card = render(facts(schema=schema, thresholds=[]), metrics())
    assert "| `rain` | It rains. | – |" in card and "highest score" in card
