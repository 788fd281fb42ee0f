"""Store pipeline: pages and hits into the state DB, and the patrol run record.

The run's per-target counts come from Scrapy's stats (``patrol/target/<id>/...``)
when the spider closes, so a crawl is judged by what happened, not by its exit code.
Then pages of fully patrolled targets that this run did not fetch are marked gone.
Settings: FINPATROL_CONFIG.
"""

from __future__ import annotations

import logging

from scrapy import signals

from crawler.config import load_config
from crawler.items import PageItem
from crawler.store.changes import gone_candidates, mark_gone
from crawler.store.db import StateDB
from crawler.store.pages import save_pages
from crawler.store.runs import finish_run, start_run, sync_targets

logger = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, config, stats):
        self.config = config
        self.stats = stats
        self.db: StateDB | None = None
        self.run_id: int | None = None
        self.target_ids: list[str] = []

    @classmethod
    def from_crawler(cls, crawler):
        pipeline = cls(load_config(crawler.settings.get("FINPATROL_CONFIG")), crawler.stats)
        pipeline.crawler = crawler
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    def open_spider(self):
        spider = self.crawler.spider
        self.db = StateDB(self.config.db_url)
        crawls = getattr(spider, "crawls", {})
        self.target_ids = list(crawls)
        sync_targets(self.db, [c.target for c in crawls.values()])
        self.run_id = start_run(self.db, spider.name)
        self.stats.set_value("patrol/run_id", self.run_id)

    def process_item(self, item: PageItem) -> PageItem:
        (saved,) = save_pages(self.db, [item], self.run_id)
        item.page_id, item.hit_id, item.new_hit = saved.page_id, saved.hit_id, saved.new_hit
        prefix = f"patrol/target/{item.target_id}"
        self.stats.inc_value("store/pages")
        if saved.hit_id:
            self.stats.inc_value(f"{prefix}/hits")
        if saved.new_hit:
            self.stats.inc_value(f"{prefix}/new_hits")
            self.stats.inc_value("store/new_hits")
        return item

    def spider_closed(self, spider, reason):
        if self.db is None or self.run_id is None:
            return
        stats = self.stats.get_stats()
        per_target = {t: target_counts(stats, t) for t in self.target_ids}
        status = finish_run(self.db, self.run_id, reason, stats, per_target)
        self.stats.set_value("patrol/status", status)
        max_pages = {t.id: t.max_pages for t in self.config.targets}
        mark_gone(self.db, self.run_id, gone_candidates(per_target, reason, max_pages))
        self.db.close()


def target_counts(stats: dict, target_id: str) -> dict:
    prefix = f"patrol/target/{target_id}/"
    errors = {
        k[len(prefix) + len("errors/"):]: v
        for k, v in stats.items()
        if k.startswith(prefix + "errors/")
    }
    return {
        "pages": stats.get(prefix + "pages", 0),
        "failed": stats.get(prefix + "failed", 0),
        "hits": stats.get(prefix + "hits", 0),
        "new_hits": stats.get(prefix + "new_hits", 0),
        "errors": errors,
    }
