"""finpatrol classifiers: a pure library, text in, verdict out.

No network, no Scrapy, no file writes; only the package's own files are read (its rules, and its
source for ``ruleset.fingerprint``). The
module-level :func:`classify` uses a default :class:`Classifier` built lazily on first
use, so importing the package is cheap (the engine itself is imported on first use) and
worker processes (the crawler forks or spawns them) each build their own on demand.
"""

from __future__ import annotations

import logging
import threading

from typing import TYPE_CHECKING

from .names import screen_name
from .taxonomy import CATEGORIES, Category
from .verdict import Finding, Verdict, YieldClaim

if TYPE_CHECKING:
    from .engine import Classifier
    from .ruleset import RuleFileError

logger = logging.getLogger(__name__)

__all__ = ["classify", "Classifier", "Verdict", "Finding", "YieldClaim", "screen_name",
           "CATEGORIES", "Category", "RuleFileError", "default_classifier"]

_default: Classifier | None = None
_lock = threading.Lock()


def __getattr__(name: str):
    """``Classifier`` and ``RuleFileError`` are imported on first use (PEP 562): the engine
    pulls in YAML and the automata, which a process that only reads CATEGORIES never needs."""
    if name == "Classifier":
        from .engine import Classifier
        return Classifier
    if name == "RuleFileError":
        from .ruleset import RuleFileError
        return RuleFileError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_classifier() -> "Classifier":
    """The shared classifier with the bundled rules (built once per process)."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                from .engine import Classifier
                _default = Classifier()
    return _default


def classify(text: str, *, title: str = "", url: str = "", kind: str | None = None) -> Verdict:
    """Classify one text with the bundled rules; see :meth:`Classifier.classify`."""
    return default_classifier().classify(text, title=title, url=url, kind=kind)
