"""newsevents: label event sentences (aid pledges, threat attributions, diplomatic meetings,
policy shifts) in news articles.

>>> from newsevents import Predictor  # doctest: +SKIP
>>> Predictor.load("models/champion").label_article(text)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Predictor", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import newsevents` stays cheap for the CLI and the prediction path.
    if name == "Predictor":
        from newsevents.predict import Predictor

        return Predictor
    raise AttributeError(f"module 'newsevents' has no attribute {name!r}")
