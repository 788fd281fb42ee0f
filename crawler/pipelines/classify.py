"""Classify pipeline: ``classifiers.classify()`` on title and text, in a worker process.

The document kind passed to the classifier is the item's ``kind`` (platform_page
for a target's own pages; ad, social_post, forum, complaint or news from channels
and opinion sources).

Settings: FINPATROL_CONFIG (yield ceiling and extra rule files), FINPATROL_WORKERS.
Stats: ``classify/pages``, ``classify/label/<category>``.
"""

from __future__ import annotations

import logging

from crawler.config import load_config
from crawler.items import PageItem
from crawler.pipelines import workers

logger = logging.getLogger(__name__)


class ClassifyPipeline:
    def __init__(self, rule_files: tuple[str, ...], ceiling: float, workers_count: int, stats):
        self.rule_files = rule_files
        self.ceiling = ceiling
        self.workers_count = workers_count
        self.stats = stats
        self.pool = None

    @classmethod
    def from_crawler(cls, crawler):
        config = load_config(crawler.settings.get("FINPATROL_CONFIG"))
        rule_files = tuple(str(p) for p in config.rules_files)
        workers_count = crawler.settings.getint("FINPATROL_WORKERS")
        return cls(rule_files, config.yield_ceiling, workers_count, crawler.stats)

    def open_spider(self):
        workers.load_classifier(self.rule_files, self.ceiling)  # a bad rules file fails here, named
        self.pool = workers.acquire(self.workers_count)

    def close_spider(self):
        workers.release()

    async def process_item(self, item: PageItem) -> PageItem:
        if item.unchanged:
            return item
        item.verdict = await workers.run(
            self.pool, workers.classify_job, item.title, item.text, item.url, self.rule_files, self.ceiling,
            item.kind,
        )
        self.stats.inc_value("classify/pages")
        for label in item.verdict["labels"]:
            self.stats.inc_value(f"classify/label/{label}")
        return item
