"""Run one patrol in this process with Scrapy's CrawlerProcess.

Twisted's reactor cannot restart, so a process runs at most one patrol; the
scheduler runs each patrol as a ``scrapy crawl`` subprocess instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler.config import PatrolConfig

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """Live counts per target, updated from Scrapy signals."""

    pages: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    new_hits: dict[str, int] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    run_id: int | None = None
    reason: str | None = None
    run_ids: list[int] = field(default_factory=list)
    """Run ids of every crawl of this process, in order (one per spider)."""


def patrol_settings(config_path: Path, target_ids: tuple[str, ...] = (), **overrides) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("FINPATROL_CONFIG", str(config_path), priority="cmdline")
    settings.set("FINPATROL_TARGETS", ",".join(target_ids), priority="cmdline")
    for key, value in overrides.items():
        settings.set(key, value, priority="cmdline")
    return settings


SPIDERS = {
    "site_patrol": "spiders.site_patrol.SitePatrolSpider",
    "ad_channel": "spiders.ad_channel.AdChannelSpider",
    "opinion": "spiders.opinion.OpinionSpider",
}


def run_patrol(
    config: PatrolConfig,
    target_ids: tuple[str, ...] = (),
    spiders: tuple[str, ...] = ("site_patrol",),
    progress: Progress | None = None,
    **overrides,
) -> Progress:
    """Crawl the chosen targets (all enabled when empty) and return the counts.

    Several ``spiders`` run one after the other in this process (the reactor
    starts once); ``target_ids`` then selects targets, channels or sources by id.
    The counts go into ``progress`` when given, so a display can read them live.
    """
    from scrapy.utils.misc import load_object
    from twisted.internet import defer

    settings = patrol_settings(config.source, target_ids, **overrides)
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")  # the CLI configures logging
    process = CrawlerProcess(settings)
    progress = progress if progress is not None else Progress()

    def item_scraped(item, response, spider):
        t = item.target_id
        progress.pages[t] = progress.pages.get(t, 0) + 1
        if item.hit_id:
            progress.hits[t] = progress.hits.get(t, 0) + 1
        if item.new_hit:
            progress.new_hits[t] = progress.new_hits.get(t, 0) + 1

    handlers = []  # signal receivers are weak references: keep ours alive

    def closed_for(crawler):
        def spider_closed(spider, reason):
            progress.reason = reason
            progress.stats = dict(crawler.stats.get_stats())
            run_id = progress.stats.get("patrol/run_id")
            if run_id is not None:
                progress.run_ids.append(run_id)
                progress.run_id = progress.run_id or run_id
        handlers.append(spider_closed)
        return spider_closed

    @defer.inlineCallbacks
    def crawl_all():
        try:
            for name in spiders:
                crawler = process.create_crawler(load_object(SPIDERS[name]))
                crawler.signals.connect(item_scraped, signal=signals.item_scraped)
                crawler.signals.connect(closed_for(crawler), signal=signals.spider_closed)
                yield process.crawl(crawler, config=config, targets=target_ids)
        finally:
            from twisted.internet import reactor

            if reactor.running:
                reactor.stop()

    if len(spiders) == 1:
        crawler = process.create_crawler(load_object(SPIDERS[spiders[0]]))
        crawler.signals.connect(item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(closed_for(crawler), signal=signals.spider_closed)
        process.crawl(crawler, config=config, targets=target_ids)
        process.start()
    else:
        crawl_all()
        process.start(stop_after_crawl=False)
    return progress
