"""Slot pipeline (after extract, 150): a listed result is classified on what the list shows.

For items with ``slot_only`` (a search ad, a classifieds row, a board entry as
listed) the body is the whole list page, kept as evidence, but the title and
text to classify are the result's own listed title and snippet.
Stats: ``slot/items``.
"""

from __future__ import annotations

import hashlib
import logging

from crawler.items import PageItem

logger = logging.getLogger(__name__)


class SlotPipeline:
    def __init__(self, stats):
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.stats)

    def process_item(self, item: PageItem) -> PageItem:
        if not item.slot_only or item.unchanged:
            return item
        item.title = " ".join(item.slot_title.split())
        item.text = " ".join(item.slot_text.split())
        if item.posted_at:
            item.published = item.posted_at[:10]
        blob = f"{item.title}\n{item.text}".encode("utf-8")
        item.text_fingerprint = hashlib.sha256(blob).hexdigest()
        self.stats.inc_value("slot/items")
        return item
