"""Run one patrol in this process with Scrapy's CrawlerProcess.

Twisted's reactor cannot restart, so a process runs at most one patrol; the
scheduler runs each patrol as a ``scrapy crawl`` subprocess instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler.config import PatrolConfig
from crawler.items import PageItem

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


def patrol_settings(config_path: Path, target_ids: tuple[str, ...] = (), **overrides) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("FINPATROL_CONFIG", str(config_path), priority="cmdline")
    settings.set("FINPATROL_TARGETS", ",".join(target_ids), priority="cmdline")
    for key, value in overrides.items():
        settings.set(key, value, priority="cmdline")
    return settings


def run_patrol(
    config: PatrolConfig,
    target_ids: tuple[str, ...] = (),
    on_item: Callable[[Progress, PageItem], None] | None = None,
    **overrides,
) -> Progress:
    """Crawl the chosen targets (all enabled when empty) and return the counts."""
    from spiders.site_patrol import SitePatrolSpider

    settings = patrol_settings(config.source, target_ids, **overrides)
    process = CrawlerProcess(settings, install_root_handler=False)
    crawler = process.create_crawler(SitePatrolSpider)
    progress = Progress()

    def item_scraped(item, response, spider):
        t = item.target_id
        progress.pages[t] = progress.pages.get(t, 0) + 1
        if item.hit_id:
            progress.hits[t] = progress.hits.get(t, 0) + 1
        if item.new_hit:
            progress.new_hits[t] = progress.new_hits.get(t, 0) + 1
        if on_item:
            on_item(progress, item)

    def spider_closed(spider, reason):
        progress.reason = reason
        progress.stats = dict(crawler.stats.get_stats())
        progress.run_id = progress.stats.get("patrol/run_id")

    crawler.signals.connect(item_scraped, signal=signals.item_scraped)
    crawler.signals.connect(spider_closed, signal=signals.spider_closed)
    process.crawl(crawler, config=config, targets=target_ids)
    process.start()
    return progress
