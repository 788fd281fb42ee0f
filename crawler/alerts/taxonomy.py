"""Category names and legal basis for messages, read from ``classifiers.CATEGORIES``.

Falls back to the bare id when a category is unknown (e.g. a rule file added one
that an older message template does not know), so a message is never lost to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CategoryText:
    id: str
    name_zh: str
    seed_section: str
    severity: str = ""


def category_text(category: str) -> CategoryText:
    if category == "opinion_spike":
        return CategoryText(category, "舆情预警：风险信号激增", "三(六)")
    if category == "operator":
        return CategoryText(category, "巡查运行异常", "")
    try:
        from classifiers import CATEGORIES

        info = CATEGORIES[category]
    except (ImportError, KeyError):
        return CategoryText(category, category, "")
    return CategoryText(
        category,
        getattr(info, "name_zh", category),
        str(getattr(info, "seed_section", "") or ""),
        str(getattr(info, "severity", "") or ""),
    )
