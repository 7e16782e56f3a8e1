"""The model card says what the metrics say, and its weaknesses follow from them."""

from __future__ import annotations

import pytest

from newsevents.labels import Label, LabelSchema
from newsevents.modelcard import CardFacts, headline, render, weaknesses

SCHEMA = LabelSchema((Label("rain", "It rains."), Label("snow", "It snows.")),
                     guideline="docs/guide.md", source="labels.yaml", digest="d" * 64)


def facts(**changes) -> CardFacts:
    base = {"name": "demo", "description": "A demo model.", "schema": SCHEMA,
            "features": ["tfidf_word"], "model": "logreg", "thresholds": [0.4, 0.6],
            "data_source": "data.csv", "data_digest": "a" * 64, "stories": 3, "articles": 5,
            "folds": 5, "repeats": 3, "bootstrap": 1000, "run_id": "r123"}
    return CardFacts(**{**base, **changes})


def metrics(**changes) -> dict[str, float]:
    m = {"macro_f1": 0.7, "macro_f1_ci_low": 0.55, "macro_f1_ci_high": 0.8, "micro_f1": 0.72,
         "loso_macro_f1": 0.6, "loso_micro_f1": 0.61, "n_train_sentences": 120,
         "n_corpus_sentences": 20, "n_authored_sentences": 100}
    for name, (p, r, f, support, loso) in {"rain": (0.8, 0.7, 0.747, 12, 0.71),
                                           "snow": (0.5, 0.9, 0.643, 4, 0.49)}.items():
        m.update({f"precision_{name}": p, f"recall_{name}": r, f"f1_{name}": f,
                  f"support_{name}": support, f"loso_f1_{name}": loso})
    return {**m, **changes}


def with_un(m: dict[str, float]) -> dict[str, float]:
    return {**m, "un_macro_f1": 0.4, "un_micro_f1": 0.42, "n_un_sentences": 300,
            "un_precision_rain": 0.3, "un_recall_rain": 0.8, "un_f1_rain": 0.436,
            "un_precision_snow": 0.7, "un_recall_snow": 0.2, "un_f1_snow": 0.311}


def test_card_reports_every_label_with_its_own_metrics():
    m = metrics()
    card = render(facts(), m)
    assert card.startswith("# Model card: demo\n")
    per_label = card.split("### Per label", 1)[1]
    for name in ("rain", "snow"):
        row = next(line for line in per_label.splitlines() if line.startswith(f"| `{name}` |"))
        assert row == (f"| `{name}` | {int(m[f'support_{name}'])} | "
                       f"{m[f'precision_{name}']:.3f} | {m[f'recall_{name}']:.3f} | "
                       f"{m[f'f1_{name}']:.3f} | {m[f'loso_f1_{name}']:.3f} |")
    assert "| `rain` | It rains. | 0.400 |" in card  # definition and threshold
    assert "r123" in card and "a" * 64 in card and "docs/guide.md" in card
    assert "UN" not in card  # no UN dev set, no UN columns


def test_un_scores_get_their_own_columns_and_row():
    card = render(facts(), with_un(metrics()))
    assert "| UN General Debate dev set (300 labeled speech sentences; final model) | 0.400 |" \
        in card
    assert "| `snow` | 4 | 0.500 | 0.900 | 0.643 | 0.490 | 0.700 | 0.200 | 0.311 |" in card


def test_weaknesses_follow_from_the_metrics():
    found = weaknesses(facts(), with_un(metrics()))
    text = "\n".join(found)
    assert "`snow` has 4 real positive sentences" in text and "`rain` has" not in text
    assert "0.550–0.800 (0.25 wide)" in text
    assert "a story it has not seen (0.600)" in text and "UN General Debate speeches (0.400)" \
        in text
    assert "Weakest label on UN speeches: `snow` (F1 0.311)" in text
    assert "`rain` over-fires on UN speeches (precision 0.300, recall 0.800)" in text
    assert "`snow` misses many cases on UN speeches (precision 0.700, recall 0.200)" in text


def test_a_strong_model_gets_no_invented_weaknesses():
    m = metrics(macro_f1_ci_low=0.68, macro_f1_ci_high=0.72, loso_macro_f1=0.69,
                support_snow=40)
    text = "\n".join(weaknesses(facts(), m))
    assert "few examples" not in text and "Wide uncertainty" not in text
    assert "Generalises less" not in text
    assert "Weakest label on new stories: `snow` (F1 0.490)" in text


@pytest.mark.parametrize("un", [False, True])
def test_headline_is_a_one_row_markdown_table(un):
    m = with_un(metrics()) if un else metrics()
    lines = headline(m).splitlines()
    assert len(lines) == 3 and lines[1].count("---") == len(lines[0].split("|")) - 2
    assert "0.700 [0.550, 0.800]" in lines[2] and "0.600" in lines[2]
    assert ("0.400" in lines[2]) is un
