"""Where the project keeps things. Every default path is derived here, from the project root."""

from __future__ import annotations

import os
from pathlib import Path


def _project_root() -> Path:
    # An editable install runs from the checkout; NEWSEVENTS_HOME points elsewhere when needed.
    env = os.environ.get("NEWSEVENTS_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


ROOT = _project_root()
DATA = ROOT / "data"
RAW = DATA / "raw"
MANIFEST = RAW / "manifest.csv"
ANNOTATIONS = DATA / "annotations"
SEED_ANNOTATIONS = ANNOTATIONS / "seed.csv"
AUTHORED_ANNOTATIONS = ANNOTATIONS / "authored.csv"
# Sentences of new articles labeled with `newsevents annotate` (real news, scored like seed).
ANNOTATED = ANNOTATIONS / "annotated.csv"
PROCESSED = DATA / "processed"
# Contextual-encoder vectors of training sentences, by encoder digest (see embedding_cache).
ENCODER_CACHE = PROCESSED / "encoder-cache"
DEFAULT_SCHEMA = DATA / "labels.yaml"
EXTERNAL_ANNOTATIONS = ANNOTATIONS / "external"
EXPERIMENTS = ROOT / "experiments"
MODELS = ROOT / "models"
CHAMPION_DIR = MODELS / "champion"
# The best accurate-tier model (contextual encoder), exported beside the fast champion.
ACCURATE_DIR = MODELS / "accurate"
REPORTS = ROOT / "reports"
# Material beside the checkout that is read when present and never copied into the project.
SHARED = Path(os.environ.get("NEWSEVENTS_SHARED", ROOT.parent / "shared")).resolve()
UN_DEBATE = SHARED / "corpus" / "un-general-debate" / "un-general-debate-2014-2024.jsonl.gz"
