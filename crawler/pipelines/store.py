"""Store pipeline: pages and hits into the state DB, and the patrol run record.

The run's per-target counts come from Scrapy's stats (``patrol/target/<id>/...``)
when the spider closes, so a crawl is judged by what happened, not by its exit code.
Then the pages the server answered 404/410 for (the spider's ``crawls[id].gone``) are
marked gone; a page merely not fetched is not. When the spider opens, it is told the
stored URLs of each target's pages with open hits (``crawls[id].revisit``), which it
asks for if its links do not lead there.
Pages are written in batches, one transaction each, on a writer thread: the reactor
keeps downloading while SQLite works, and commits are shared by many pages.
Settings: FINPATROL_CONFIG, FINPATROL_STORE_BATCH (pages per transaction).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from scrapy import signals

from crawler.crawl_config import crawl_config
from crawler.items import PageItem
from crawler.store.changes import mark_gone
from crawler.store.db import StateDB
from crawler.store.pages import open_hit_urls, save_pages
from crawler.store.runs import finish_run, start_run, sync_targets

logger = logging.getLogger(__name__)


class BatchWriter:
    """Collects items into batches written in order on one thread; each item awaits its batch."""

    def __init__(self, write, max_items: int, max_delay: float = 0.2):
        self.write, self.max_items, self.max_delay = write, max_items, max_delay
        self.pending: list[tuple[PageItem, asyncio.Future]] = []
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finpatrol-store")
        self.timer: asyncio.TimerHandle | None = None

    async def submit(self, item: PageItem):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((item, future))
        if len(self.pending) >= self.max_items:
            self.flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.max_delay, self.flush)
        return await future

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending = self.pending, []
        if not batch:
            return
        job = asyncio.wrap_future(self.executor.submit(self.write, [item for item, _ in batch]))

        def settle(task: asyncio.Future) -> None:
            error = task.exception()
            results = [error] * len(batch) if error else task.result()
            for (_, future), result in zip(batch, results):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

        job.add_done_callback(settle)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def write_batch(db: StateDB, items: list[PageItem], run_id: int | None) -> list:
    """One transaction for the batch; if it fails, page by page so one bad page loses nothing else."""
    try:
        return save_pages(db, items, run_id)
    except Exception:  # a batch boundary: isolate the page that broke it
        logger.exception("storing a batch of %d pages failed; storing them one by one", len(items))
    results: list = []
    for item in items:
        try:
            results.extend(save_pages(db, [item], run_id))
        except Exception as e:  # reported per page below, the crawl goes on
            results.append(e)
    return results


class StorePipeline:
    def __init__(self, config, stats, batch_size: int = 32):
        self.config = config
        self.stats = stats
        self.batch_size = batch_size
        self.db: StateDB | None = None
        self.writer: BatchWriter | None = None
        self.run_id: int | None = None
        self.target_ids: list[str] = []

    @classmethod
    def from_crawler(cls, crawler):
        config = crawl_config(crawler.settings)
        pipeline = cls(config, crawler.stats, crawler.settings.getint("FINPATROL_STORE_BATCH", 32))
        pipeline.crawler = crawler
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    def open_spider(self):
        spider = self.crawler.spider
        self.db = StateDB(self.config.db_url)
        crawls = getattr(spider, "crawls", {})
        self.target_ids = list(crawls)
        sync_targets(self.db, [c.target for c in crawls.values()])
        for target_id, urls in open_hit_urls(self.db, self.target_ids).items():
            if hasattr(crawls[target_id], "revisit"):  # the site spider's; listings have none
                crawls[target_id].revisit = urls
        self.run_id = start_run(self.db, spider.name, targets=self.target_ids)
        self.stats.set_value("patrol/run_id", self.run_id)
        self.writer = BatchWriter(lambda items: write_batch(self.db, items, self.run_id), self.batch_size)

    def close_spider(self):
        if self.writer is not None:  # None when opening failed before the writer started
            self.writer.flush()
            self.writer.close()

    async def process_item(self, item: PageItem) -> PageItem:
        try:
            saved = await self.writer.submit(item)
        except Exception:
            logger.exception("could not store %s", item.url)
            self.stats.inc_value("store/errors")
            self.stats.inc_value(f"patrol/target/{item.target_id}/errors/store")
            return item
        item.page_id, item.hit_id, item.new_hit = saved.page_id, saved.hit_id, saved.new_hit
        item.removed_hit_id = saved.removed_hit_id
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
        gone = {t: getattr(crawl, "gone", ()) for t, crawl in getattr(spider, "crawls", {}).items()}
        try:  # before the run's stats are recorded, so they hold the counts of pages gone
            for target_id, count in mark_gone(self.db, self.run_id, gone).items():
                self.stats.set_value(f"patrol/target/{target_id}/gone", count)
        finally:
            stats = self.stats.get_stats()
            per_target = {t: target_counts(stats, t) for t in self.target_ids}
            status = finish_run(self.db, self.run_id, reason, stats, per_target)
            self.stats.set_value("patrol/status", status)
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
