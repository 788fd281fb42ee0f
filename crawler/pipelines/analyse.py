"""Analyse pipeline: skip what is already stored, else extract and classify in a worker.

A page answered 304 Not Modified, or whose body has the SHA-256 stored for its URL and
whose stored verdict came from this patrol's classifier and the item's kind (its
``verdict_stamp``), is marked unchanged and costs nothing more. Any other page goes to
a worker process in one round trip that runs, in order:

- extraction (``crawler.extract``): title, text, date and language, trafilatura with
  comments excluded; for a listed result (``slot_only``: a search ad, a classifieds
  row, a board entry) the listed title and snippet instead, since its body is the
  whole list page, kept only as evidence;
- the search-index tokens of title and text (``classifiers.tokenize``), unless the page
  still has the title and text fingerprint stored for it (its markup changed, its text
  did not: the stored index terms stand);
- ``classifiers.classify()`` on title and text, for the item's ``kind``.

One round trip instead of one per step: every trip pickles the page or its text both
ways through the pool's feeder and result threads, about 0.9 ms of the crawler
process's CPU per page and as much again in the workers.

Settings: FINPATROL_CONFIG (state DB, yield ceiling, extra rule files), FINPATROL_WORKERS.
Stats (named after the steps, as when they were separate pipelines): ``extract/pages``
(pages extracted from HTML), ``slot/items`` (listed results, not extracted),
``extract/unchanged``, ``extract/not_modified``, ``extract/same_text`` (a new body, the
stored title and text), ``extract/visible_text_fallback``,
``classify/pages``, ``classify/label/<category>``, ``classify/rules_changed`` (the stored
body, classified again because the rules, the yield ceiling or the kind changed).
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache, partial

from crawler.crawl_config import crawl_config
from crawler.items import PageItem, text_key, verdict_stamp
from crawler.pipelines import workers
from crawler.store.db import StateDB
from crawler.store.pages import Known, known_pages

logger = logging.getLogger(__name__)


class AnalysePipeline:
    def __init__(self, db_url: str, rule_files: tuple[str, ...], ceiling: float, workers_count: int, stats):
        self.db_url = db_url
        self.rule_files = rule_files
        self.ceiling = ceiling
        self.workers_count = workers_count
        self.stats = stats
        self.known: dict[tuple[str, str], Known] = {}
        self.stamp = None
        """kind → ``verdict_stamp`` of this patrol's classifier for that kind (cached per kind)."""
        self.pool = None

    @classmethod
    def from_crawler(cls, crawler):
        config = crawl_config(crawler.settings)
        rule_files = tuple(str(p) for p in config.rules_files)
        workers_count = crawler.settings.getint("FINPATROL_WORKERS")
        pipeline = cls(config.db_url, rule_files, config.yield_ceiling, workers_count, crawler.stats)
        pipeline.crawler = crawler
        return pipeline

    def open_spider(self):
        fingerprint = workers.load_classifier(self.rule_files, self.ceiling).fingerprint  # a bad rules file fails here
        self.stamp = cache(partial(verdict_stamp, fingerprint))
        db = StateDB(self.db_url)
        try:
            self.known = known_pages(db, getattr(self.crawler.spider, "crawls", {}).keys())
        finally:
            db.close()
        self.pool = workers.start_pool(self.workers_count, self.rule_files, self.ceiling)

    def close_spider(self):
        if self.pool is not None:  # None when opening failed before the pool started
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    async def process_item(self, item: PageItem) -> PageItem:
        if item.unchanged:  # the server said 304 Not Modified: there is no body
            self.stats.inc_value("extract/not_modified")
            return item
        digest = hashlib.sha256(item.body).digest()
        item.sha256 = digest.hex()
        key = (item.target_id, item.url)
        known = self.known.get(key)
        item.verdict_by = self.stamp(item.kind)
        if known is not None and known.sha256 == digest:
            if known.verdict_by == item.verdict_by:
                item.unchanged = True
                self.stats.inc_value("extract/unchanged")
                return item
            self.stats.inc_value("classify/rules_changed")
        listed = (item.slot_title, item.slot_text) if item.slot_only else None
        result, item.verdict = await workers.run(
            self.pool, workers.analyse_job, b"" if listed else item.body, item.encoding, item.url, listed,
            item.kind, self.rule_files, self.ceiling, known.text_key if known is not None else None,
        )
        if result.text_tokens is None:
            self.stats.inc_value("extract/same_text")
        # What the store is about to keep: a URL met again in this patrol (a listed
        # result on two list pages) is compared with this fetch, not the patrol's start.
        self.known[key] = Known(digest, text_key(result.title, result.text_fingerprint), item.verdict_by)
        item.title, item.text = result.title, result.text
        item.published, item.language = result.published, result.language
        item.text_fingerprint = result.text_fingerprint
        item.title_tokens, item.text_tokens = result.title_tokens, result.text_tokens
        if item.slot_only and item.posted_at:
            item.published = item.posted_at[:10]
        self._count(item, result.used_fallback)
        return item

    def _count(self, item: PageItem, used_fallback: bool) -> None:
        if item.slot_only:
            self.stats.inc_value("slot/items")
        else:
            self.stats.inc_value("extract/pages")
            if used_fallback:
                self.stats.inc_value("extract/visible_text_fallback")
        self.stats.inc_value("classify/pages")
        for label in item.verdict["labels"]:
            self.stats.inc_value(f"classify/label/{label}")
