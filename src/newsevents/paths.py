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
PROCESSED = DATA / "processed"
DEFAULT_SCHEMA = DATA / "labels.yaml"
EXPERIMENTS = ROOT / "experiments"
MODELS = ROOT / "models"
CHAMPION_DIR = MODELS / "champion"
REPORTS = ROOT / "reports"
