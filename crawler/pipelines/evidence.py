"""Evidence pipeline (after store): WARC records for pages behind hits, indexed in the state DB.

Runs after the store pipeline (which sets page_id, hit_id, new_hit and removed_hit_id: a page
whose hit this fetch removed is archived as the proof of when). A 404/410 answer
yields no item, so the pipeline also listens to ``response_received`` and captures such an
answer when its page has an open hit: the store marks that page gone when the patrol ends,
and the answer is the proof of when it went. The WARC writing and its DB row happen on one
dedicated thread, in order, so compressing a large page never stalls the reactor and records
never interleave. A failed capture is logged and counted; the item goes on.
Settings: FINPATROL_CONFIG (``state_dir`` and the ``evidence:`` block).
Stats: ``evidence/captures``, ``evidence/screenshots``, ``evidence/gone``, ``evidence/errors``.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor

from scrapy import signals

from crawler.crawl_config import crawl_config
from crawler.evidence.archive import Archive, evidence_root
from crawler.items import PageItem, response_item
from crawler.store.db import StateDB

logger = logging.getLogger(__name__)


class EvidencePipeline:
    def __init__(self, config, stats):
        self.config = config
        self.stats = stats
        self.db: StateDB | None = None
        self.archive: Archive | None = None
        self.executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_crawler(cls, crawler):
        pipeline = cls(crawl_config(crawler.settings), crawler.stats)
        crawler.signals.connect(pipeline.response_received, signal=signals.response_received)
        return pipeline

    def open_spider(self):
        self.db = StateDB(self.config.db_url)
        self.archive = Archive(self.db, evidence_root(self.config.state_dir), self.config.evidence)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finpatrol-warc")

    async def process_item(self, item: PageItem) -> PageItem:
        if not self.archive.may_need_capture(item):
            return item
        run_id = self.stats.get_value("patrol/run_id")
        try:
            future = self.executor.submit(self.archive.capture, item, run_id)
            evidence_id = await asyncio.wrap_future(future)
        except Exception:  # one page's evidence failing must not lose the patrol
            logger.exception("evidence capture failed for %s", item.url)
            self.stats.inc_value("evidence/errors")
            return item
        if evidence_id is not None:
            self.stats.inc_value("evidence/captures")
            if item.screenshot is not None:
                self.stats.inc_value("evidence/screenshots")
        return item

    def response_received(self, response, request, spider=None):
        """Queue a 404/410 answer to a patrol's page request (after redirects) for ``capture_gone``."""
        if response.status not in GONE_STATUSES or self.executor is None:
            return
        target_id, url = response.meta.get("finpatrol_target"), response.meta.get("finpatrol_url")
        if not target_id or not url:  # not a page of a target (sitemap, robots.txt, a channel's list)
            return
        future = self.executor.submit(self.archive.capture_gone, response_item(response, target_id, url),
                                      self.stats.get_value("patrol/run_id"))
        future.add_done_callback(self._gone_captured)

    def _gone_captured(self, future: Future) -> None:
        try:
            if future.result() is not None:
                self.stats.inc_value("evidence/gone")
        except Exception:  # the answer's evidence failing must not lose the patrol
            logger.exception("capturing a 404/410 answer failed")
            self.stats.inc_value("evidence/errors")

    def close_spider(self):
        try:
            if self.executor is not None:
                self.executor.submit(self.archive.close).result()
                self.executor.shutdown(wait=True)
        except Exception:
            logger.exception("closing the WARC file failed")
            self.stats.inc_value("evidence/errors")
        finally:
            if self.db is not None:
                self.db.close()


GONE_STATUSES = frozenset({404, 410})
"""The answers that show a page gone (as ``spiders.site_patrol`` judges them)."""
