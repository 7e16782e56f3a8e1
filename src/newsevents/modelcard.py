"""The model card: a markdown page about one trained model, written from its run's metrics.

Every figure in the card comes from the metrics logged for the run (and the label schema,
config and data facts given here); none is typed in by hand, so the card can never disagree
with MLflow. Training writes it into the model directory (so it is logged with the model and
exported beside it in ``models/champion/``) and into the run's artifacts.

>>> card = render(facts, metrics)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from newsevents import paths
from newsevents.labels import LabelSchema

MODEL_CARD_FILE = "model_card.md"
# Rules for "known weaknesses": a label with fewer real positives than this is scored on too
# little to trust; an interval wider than this, or a drop larger than this, is worth a line.
FEW_POSITIVES = 10
WIDE_INTERVAL = 0.10
NOTABLE_DROP = 0.05
# Precision and recall further apart than this: the label over-fires or misses.
IMBALANCE = 0.20


@dataclass(frozen=True)
class CardFacts:
    """What the card says about a model besides its metrics."""

    name: str
    description: str
    schema: LabelSchema
    features: Sequence[str]
    model: str
    thresholds: Sequence[float]  # empty for a multiclass model (the top label wins)
    data_source: str
    data_digest: str
    documents: int  # real training documents (0: the data has no document column)
    cv_unit: str  # "document" or "sentence": what cross-validation keeps whole
    folds: int
    repeats: int
    bootstrap: int
    config_path: str = ""
    run_id: str = ""


def _shown(path: str) -> str:
    """A path inside the project relative to its root (the card travels with the model)."""
    try:
        return str(Path(path).resolve().relative_to(paths.ROOT))
    except ValueError:
        return path


def _f(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"


def headline(metrics: Mapping[str, float]) -> str:
    """The headline metrics as a small markdown table (the registered version's description)."""
    cells = [("macro-F1, grouped CV [95% CI]",
              f"{_f(metrics['macro_f1'])} [{_f(metrics.get('macro_f1_ci_low'))}, "
              f"{_f(metrics.get('macro_f1_ci_high'))}]"),
             ("micro-F1", _f(metrics["micro_f1"]))]
    if "accuracy" in metrics:
        cells.append(("accuracy", _f(metrics["accuracy"])))
    return "\n".join(["| " + " | ".join(c[0] for c in cells) + " |",
                      "|" + "---|" * len(cells),
                      "| " + " | ".join(c[1] for c in cells) + " |"])


def render(facts: CardFacts, metrics: Mapping[str, float]) -> str:
    """The whole card as markdown; the test-split section appears once the model is champion."""
    m, names = metrics, facts.schema.names
    test = "test_macro_f1" in m
    multiclass = facts.schema.multiclass
    lines = [f"# Model card: {facts.name}", ""]
    if facts.description:
        lines += [facts.description, ""]
    if facts.run_id:
        lines += [f"MLflow run `{facts.run_id}`. Written by `newsevents train` from the run's "
                  "logged metrics.", ""]
    kind = ("one label per sentence (multiclass)" if multiclass else
            "multi-label: a sentence may have several or none")
    rule = ("The label with the highest score is given." if multiclass else
            "A label is given when its score reaches its threshold (chosen per label to "
            "maximise F1 on the cross-validation's out-of-fold scores of real training "
            "sentences).")
    lines += [
        "## What it is for", "",
        f"It labels each sentence of an English text with the labels below ({kind}). Use it to "
        "find and count sentences that report these events, with a person checking what "
        "matters; it does not tell whether a report is true.", "",
        "| label | definition | threshold |", "|---|---|---|",
        *(f"| `{label.name}` | {label.definition} | {'–' if t is None else f'{t:.3f}'} |"
          for label, t in zip(facts.schema.labels, facts.thresholds or [None] * len(names),
                              strict=True)),
        "", rule + (f" Labeling rules: `{facts.schema.guideline}`."
                    if facts.schema.guideline else ""), "",
        "## Model", "",
        f"Features: {', '.join(facts.features) or 'none'}. Classifier: {facts.model}."
        + (f" Config: `{_shown(facts.config_path)}`." if facts.config_path else ""), "",
        "## Training data", "",
        f"- {int(m['n_train_sentences']):,} sentences: {int(m['n_real_sentences']):,} real "
        "sentences" + (f" from {facts.documents:,} documents" if facts.documents else "")
        + f", and {int(m['n_authored_sentences']):,} authored sentences (training only, never "
        "scored)" + (f"; plus {int(m['n_soft_sentences']):,} unlabeled pool sentences with a "
                     "teacher model's soft labels (training only, never scored)"
                     if m.get("n_soft_sentences") else "") + ".",
        f"- Source: `{_shown(facts.data_source)}`; data digest (sha256) `{facts.data_digest}`; "
        f"label schema `{_shown(facts.schema.source)}`, digest `{facts.schema.digest}`.", "",
        "## Evaluation", "",
        f"Only real sentences are scored. Cross-validation keeps every {facts.cv_unit} and its "
        "near-duplicates on one side of each split.", "",
        "| measure | macro-F1 | micro-F1 |", "|---|---|---|",
        f"| grouped CV by {facts.cv_unit}, {facts.folds} folds × {facts.repeats} repeat(s) "
        f"(95% cluster-bootstrap CI, {facts.bootstrap:,} draws) | {_f(m['macro_f1'])} "
        f"[{_f(m.get('macro_f1_ci_low'))}, {_f(m.get('macro_f1_ci_high'))}] | "
        f"{_f(m['micro_f1'])} |",
    ]
    if test:
        lines.append(f"| held-out test split ({int(m['test_n_sentences']):,} sentences from "
                     f"{int(m['test_n_documents']):,} documents never used for training, "
                     f"thresholds or choosing the model) | {_f(m['test_macro_f1'])} "
                     f"[{_f(m.get('test_macro_f1_ci_low'))}, "
                     f"{_f(m.get('test_macro_f1_ci_high'))}] | {_f(m.get('test_micro_f1'))} |")
    lines += ["", "### Per label", "",
              "| label | real positives | precision | recall | F1"
              + (" | test precision | test recall | test F1 |" if test else " |"),
              "|---|---|---|---|---|" + ("---|---|---|" if test else "")]
    for n in names:
        row = (f"| `{n}` | {int(m.get(f'support_{n}', 0))} | {_f(m.get(f'precision_{n}'))} | "
               f"{_f(m.get(f'recall_{n}'))} | {_f(m.get(f'f1_{n}'))} |")
        if test:
            row += (f" {_f(m.get(f'test_precision_{n}'))} | {_f(m.get(f'test_recall_{n}'))} | "
                    f"{_f(m.get(f'test_f1_{n}'))} |")
        lines.append(row)
    lines += ["", "Precision, recall and F1: grouped CV (mean over repeats)"
              + ("; test columns: the final model on the held-out test split." if test else "."),
              "", "## Known weaknesses", "", *(f"- {w}" for w in weaknesses(facts, metrics)), ""]
    return "\n".join(lines)


def weaknesses(facts: CardFacts, metrics: Mapping[str, float]) -> list[str]:
    """Plain-language weaknesses read off the metrics by fixed rules (see the constants)."""
    m, names = metrics, facts.schema.names
    out: list[str] = []
    few = [(n, int(m.get(f"support_{n}", 0))) for n in names
           if m.get(f"support_{n}", 0) < FEW_POSITIVES]
    if few:
        out.append("Scored on very few examples: " + ", ".join(
            f"`{n}` has {k} real positive sentence{'' if k == 1 else 's'}" for n, k in few)
            + "; its scores can move a lot with one sentence more or less.")
    low, high = m.get("macro_f1_ci_low", math.nan), m.get("macro_f1_ci_high", math.nan)
    if high - low > WIDE_INTERVAL:
        out.append(f"Wide uncertainty: the 95% interval of macro-F1 is {_f(low)}–{_f(high)} "
                   f"({high - low:.2f} wide), because few real sentences are scored; a "
                   "difference between models well inside that width is no evidence.")
    if m.get("n_soft_sentences", 0) > 0:
        out.append("Cross-validation overstates this model: its soft labels come from a teacher "
                   "trained on every fold, so each fold's model learned from a teacher that saw "
                   "the sentences it is scored on (`scripts/soft_label_crossfit.py` measures "
                   "by how much); the test split is the fair figure.")
    if facts.cv_unit != "document":
        out.append("No document column: cross-validation kept only sentences (and their "
                   "near-duplicates) apart, so the scores say little about new documents.")
    test = "test_macro_f1" in m
    if test and m["macro_f1"] - m["test_macro_f1"] > NOTABLE_DROP:
        out.append(f"Generalises less than cross-validation suggests: macro-F1 "
                   f"{_f(m['macro_f1'])} in grouped CV, {_f(m['test_macro_f1'])} on the "
                   "held-out test split.")
    prefix, where = ("test_", "the test split") if test else ("", "cross-validation")
    if names:
        worst = min(names, key=lambda n: m.get(f"{prefix}f1_{n}", math.inf))
        out.append(f"Weakest label on {where}: `{worst}` (F1 "
                   f"{_f(m.get(f'{prefix}f1_{worst}'))}).")
    for n in names:
        p, r = m.get(f"{prefix}precision_{n}", math.nan), m.get(f"{prefix}recall_{n}", math.nan)
        if p - r > IMBALANCE:
            out.append(f"`{n}` misses many cases on {where} (precision {_f(p)}, recall {_f(r)}).")
        elif r - p > IMBALANCE:
            out.append(f"`{n}` over-fires on {where} (precision {_f(p)}, recall {_f(r)}).")
    bundled = Path(facts.data_source).resolve() == paths.ANNOTATIONS.resolve()
    out.append("Trained and scored on English news (1989–91 wire copy, 2023–25 articles) and UN "
               "General Debate statements (2014–24) only; other languages, genres and events "
               "outside the definitions above are untested." if bundled else
               "Trained and scored on the labeled file named above only; other text is untested.")
    return out
