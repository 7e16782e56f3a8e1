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
# Metadata about the raw articles lives beside data/raw/, never in it: every file in raw/ is
# an article, so `newsevents predict data/raw` labels them all. Its `file` column is relative
# to the manifest.
MANIFEST = DATA / "manifest.csv"
ANNOTATIONS = DATA / "annotations"
SEED_ANNOTATIONS = ANNOTATIONS / "seed.csv"
AUTHORED_ANNOTATIONS = ANNOTATIONS / "authored.csv"
# Sentences of new articles labeled with `newsevents annotate` (real news, scored like seed).
ANNOTATED = ANNOTATIONS / "annotated.csv"
# Labeled sentences drawn from the real pools in shared/corpus (one CSV per pool, text included).
POOL_ANNOTATIONS = ANNOTATIONS / "pools"
# A teacher model's scores on unlabeled pool sentences (ids only; training only, never scored).
SOFT_ANNOTATIONS = ANNOTATIONS / "soft"
# The documents of the fixed, held-out test split.
TEST_DOCUMENTS = DATA / "splits" / "test-documents.csv"
PROCESSED = DATA / "processed"
# Contextual-encoder vectors of training sentences, by encoder digest (see embedding_cache).
ENCODER_CACHE = PROCESSED / "encoder-cache"
DEFAULT_SCHEMA = DATA / "labels.yaml"
EXPERIMENTS = ROOT / "experiments"
MODELS = ROOT / "models"
CHAMPION_DIR = MODELS / "champion"
# The best accurate-tier model (contextual encoder), exported beside the fast champion.
ACCURATE_DIR = MODELS / "accurate"
REPORTS = ROOT / "reports"
# Material beside the checkout that is read when present and never copied into the project.
SHARED = Path(os.environ.get("NEWSEVENTS_SHARED", ROOT.parent / "shared")).resolve()
UN_DEBATE = SHARED / "corpus" / "un-general-debate" / "un-general-debate-2014-2024.jsonl.gz"
MUC4 = SHARED / "corpus" / "muc4" / "muc4-news-1989-1991.jsonl.gz"
# The real pools by the name the annotations give them (their ``source`` column).
POOLS = {"un_general_debate": UN_DEBATE, "muc4": MUC4}
