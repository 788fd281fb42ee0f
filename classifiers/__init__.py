"""finpatrol classifiers: a pure library, text in, verdict out.

No network, no Scrapy, no file writes; only the package's own rule files are read. The
module-level :func:`classify` uses a default :class:`Classifier` built lazily on first
use, so importing the package is cheap and worker processes (the crawler forks or spawns
them) each build their own on demand.
"""

from __future__ import annotations

import logging
import threading

from .engine import Classifier
from .names import screen_name
from .ruleset import RuleFileError
from .taxonomy import CATEGORIES, Category
from .verdict import Finding, Verdict, YieldClaim

logger = logging.getLogger(__name__)

__all__ = ["classify", "Classifier", "Verdict", "Finding", "YieldClaim", "screen_name",
           "CATEGORIES", "Category", "RuleFileError", "default_classifier"]

_default: Classifier | None = None
_lock = threading.Lock()


def default_classifier() -> Classifier:
    """The shared classifier with the bundled rules (built once per process)."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = Classifier()
    return _default


def classify(text: str, *, title: str = "", url: str = "", kind: str | None = None) -> Verdict:
    """Classify one text with the bundled rules; see :meth:`Classifier.classify`."""
    return default_classifier().classify(text, title=title, url=url, kind=kind)
