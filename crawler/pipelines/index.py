"""Index pipeline: queue stored pages and hits for the search cluster and push them.

Runs after the store pipeline (priority 850) and only with an ``elasticsearch:``
block in the config (``NotConfigured`` otherwise). ``process_item`` never waits
for the cluster: it records in the state DB what must be pushed and, once a
batch is waiting, starts a background push through ``AsyncElasticsearch`` (the
sync bulk helper sleeps on retries and would block the reactor). When the
cluster is down the crawl goes on, the documents stay pending and the next push
is tried after a back-off; the spider's open pushes whatever earlier patrols
left pending and its close pushes the rest (bounded by
``FINPATROL_ES_CLOSE_TIMEOUT`` seconds). The store marks pages gone only at
``spider_closed``, after every pipeline closed; that queues their hits' documents
again, so this pipeline pushes once more at ``spider_closed`` (its handler runs
after the store's: the store pipeline is built, and connects, first) unless the
cluster was failing. Counts go to stats under ``index/``.
Settings: FINPATROL_CONFIG, FINPATROL_ES_CLOSE_TIMEOUT.
The Elasticsearch client is imported only when the pipeline is configured, so a
patrol without a cluster does not carry it in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler.crawl_config import crawl_config
from crawler.items import PageItem
from crawler.store import elastic_queue as queue
from crawler.store.db import StateDB

if TYPE_CHECKING:
    from crawler.store.elastic_sync import PushResult

logger = logging.getLogger(__name__)

BACKOFF = (5, 15, 60, 300)


class IndexPipeline:
    def __init__(self, config, stats, close_timeout: float = 120.0):
        self.config = config
        self.es_config = config.elasticsearch
        self.stats = stats
        self.close_timeout = close_timeout
        self.db: StateDB | None = None
        self.es = None
        self.task: asyncio.Task | None = None
        self.waiting = 0
        self.failures = 0
        self.retry_at = 0.0
        self.pushed_all = False

    @classmethod
    def from_crawler(cls, crawler):
        config = crawl_config(crawler.settings)
        if getattr(config, "elasticsearch", None) is None:
            # The embedded default, not a fault: Scrapy logs a NotConfigured with a message as a warning.
            logger.info("no elasticsearch: block in the config; the embedded search index is the only one")
            raise NotConfigured
        pipeline = cls(config, crawler.stats, crawler.settings.getfloat("FINPATROL_ES_CLOSE_TIMEOUT", 120.0))
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    async def open_spider(self):
        from crawler.store.elastic_client import make_async_client

        self.db = StateDB(self.config.db_url)
        self.es = make_async_client(self.es_config)
        targets = [t.id for t in self.config.targets if t.enabled]
        if targets:
            queue.enqueue(self.db, [("target", t) for t in targets])
        self.start_push()  # what earlier patrols left pending, and the targets

    def process_item(self, item: PageItem) -> PageItem:
        docs = []
        if item.page_id is not None and not item.unchanged:
            docs.append(("page", item.page_id))
        if item.hit_id is not None:
            docs.append(("hit", item.hit_id))
            docs.append(("target", item.target_id))
        if docs:
            queue.enqueue(self.db, docs)
            self.stats.inc_value("index/enqueued", len(docs))
            self.waiting += len(docs)
        if self.waiting >= self.es_config.batch_size:
            self.start_push()
        return item

    def start_push(self) -> None:
        if self.task is not None and not self.task.done():
            return
        if time.monotonic() < self.retry_at:
            return
        self.waiting = 0
        self.task = asyncio.ensure_future(self._push())

    async def _push(self) -> PushResult:
        from crawler.store.elastic_sync import PushResult, push_pending

        try:
            result = await push_pending(self.db, self.es, self.es_config)
        except Exception as e:  # a batch boundary: never let indexing break the crawl
            logger.exception("indexing failed; documents stay pending")
            result = PushResult(error=f"{type(e).__name__}: {e}")
        self._count(result)
        return result

    def _count(self, result: PushResult) -> None:
        for key in ("acked", "rejected", "deferred", "gone", "batches"):
            value = getattr(result, key)
            if value:
                self.stats.inc_value(f"index/{key}", value)
        if result.error:
            self.stats.inc_value("index/unavailable")
            self.stats.set_value("index/last_error", result.error)
            self.retry_at = time.monotonic() + BACKOFF[min(self.failures, len(BACKOFF) - 1)]
            self.failures += 1
        else:
            self.failures, self.retry_at = 0, 0.0

    async def close_spider(self):
        self.pushed_all = await self._push_rest()

    async def spider_closed(self):
        """Push what marking pages gone queued, then let go of the cluster and the state DB."""
        if self.db is None:  # opening failed
            return
        try:
            if self.pushed_all:  # a failing or slow cluster is not waited for twice
                await self._push_rest()
        finally:
            await self.es.close()
            self.db.close()

    async def _push_rest(self) -> bool:
        """Push everything pending; True unless the cluster failed or the time ran out."""
        try:
            if self.task is not None and not self.task.done():
                await asyncio.wait_for(asyncio.shield(self.task), self.close_timeout)
            self.retry_at = 0.0
            self.start_push()
            if self.task is not None:
                await asyncio.wait_for(asyncio.shield(self.task), self.close_timeout)
            return not self.failures
        except asyncio.TimeoutError:
            self.task.cancel()
            logger.warning("indexing did not finish within %.0f s; the rest stays pending", self.close_timeout)
            return False
        finally:
            pending = sum(c.get("pending", 0) for c in queue.counts(self.db).values())
            self.stats.set_value("index/pending", pending)
            if pending:
                logger.info("%d documents stay pending for `finpatrol es sync`", pending)
