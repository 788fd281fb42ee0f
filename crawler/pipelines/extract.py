"""Extract pipeline: SHA-256 of the body, skip pages already stored unchanged (or
answered 304 Not Modified), else
title, text, date and language in a worker process (trafilatura, comments excluded).

Settings: FINPATROL_CONFIG (to find the state DB), FINPATROL_WORKERS.
"""

from __future__ import annotations

import hashlib
import logging

from crawler.config import load_config
from crawler.items import PageItem
from crawler.pipelines import workers
from crawler.store.db import StateDB
from crawler.store.pages import known_fingerprints

logger = logging.getLogger(__name__)


class ExtractPipeline:
    def __init__(self, db_url: str, workers_count: int, stats):
        self.db_url = db_url
        self.workers_count = workers_count
        self.stats = stats
        self.known: dict[tuple[str, str], str] = {}
        self.pool = None

    @classmethod
    def from_crawler(cls, crawler):
        config = load_config(crawler.settings.get("FINPATROL_CONFIG"))
        pipeline = cls(config.db_url, crawler.settings.getint("FINPATROL_WORKERS"), crawler.stats)
        pipeline.crawler = crawler
        return pipeline

    def open_spider(self):
        db = StateDB(self.db_url)
        try:
            self.known = known_fingerprints(db, getattr(self.crawler.spider, "crawls", {}).keys())
        finally:
            db.close()
        self.pool = workers.acquire(self.workers_count)

    def close_spider(self):
        workers.release()

    async def process_item(self, item: PageItem) -> PageItem:
        if item.unchanged:  # the server said 304 Not Modified: there is no body
            self.stats.inc_value("extract/not_modified")
            return item
        item.sha256 = hashlib.sha256(item.body).hexdigest()
        if self.known.get((item.target_id, item.url)) == item.sha256:
            item.unchanged = True
            self.stats.inc_value("extract/unchanged")
            return item
        result = await workers.run(self.pool, workers.extract_job, item.body, item.encoding, item.url)
        item.title, item.text = result.title, result.text
        item.published, item.language = result.published, result.language
        item.text_fingerprint = result.text_fingerprint
        item.title_tokens, item.text_tokens = result.title_tokens, result.text_tokens
        self.stats.inc_value("extract/pages")
        if result.used_fallback:
            self.stats.inc_value("extract/visible_text_fallback")
        return item
