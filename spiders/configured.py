"""What every finpatrol spider takes from the patrol config, in one place.

Settings: FINPATROL_CONFIG (the config file), FINPATROL_TARGETS (comma-separated ids).
"""

from __future__ import annotations

from crawler.config import PatrolConfig
from crawler.crawl_config import crawl_config


def apply_config(settings, config: PatrolConfig, renders: bool) -> None:
    """Config values that are Scrapy settings; the Playwright handlers only when a page may render."""
    settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", config.concurrency_per_domain, priority="spider")
    settings.set("DOWNLOAD_TIMEOUT", config.download_timeout, priority="spider")
    settings.set("PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT", config.download_timeout * 1000, priority="spider")
    if renders:
        settings.set("DOWNLOAD_HANDLERS", settings.getdict("PLAYWRIGHT_DOWNLOAD_HANDLERS"), priority="spider")


def config_and_ids(crawler, kwargs: dict) -> tuple[PatrolConfig, tuple[str, ...]]:
    """The config (passed in, or loaded) and the chosen ids, taken out of the spider kwargs."""
    config = kwargs.pop("config", None) or crawl_config(crawler.settings)
    wanted = kwargs.pop("targets", None) or crawler.settings.get("FINPATROL_TARGETS", "")
    if isinstance(wanted, str):
        wanted = tuple(t for t in wanted.split(",") if t)
    return config, tuple(wanted)
