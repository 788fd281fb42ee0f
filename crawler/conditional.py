"""Conditional GET for pages a patrol has fetched before.

A re-patrol of an unchanged site then costs one 304 Not Modified per page instead
of a download, a SHA-256, link scanning, and a store of the whole page. Site-patrol
requests (meta ``finpatrol_conditional``) for pages the state DB holds with an ETag
or Last-Modified get If-None-Match / If-Modified-Since, unless their stored verdict came
from other rules or another kind (``crawler.items.verdict_stamp``): those are fetched
whole, to be classified again. On a 304 the links recorded
at the last full fetch go into the request's meta (``finpatrol_links``), so the
spider follows them without the body. Which pages qualify, with their validators and
links, is read once when the spider opens (``crawler.store.pages.revalidations``,
never pages the browser rendered), less the pages whose evidence is still missing
(``crawler.evidence.archive``); the crawl then reads nothing from the state DB here.
Memory: the stored links of every such page of the patrolled targets (the ``links``
column, about 2.5 KB for a page of 60 relative links) are held from the start; a
page's entry goes once it is answered 304 or 2xx, so what stays is the links of pages
not asked for again.
Settings: FINPATROL_CONFIG. Stats: ``conditional/asked``, ``conditional/not_modified``,
``conditional/links_missing`` (a 304 for a page whose links were already used in this
crawl: the page is asked for again, whole).
"""

from __future__ import annotations

from collections.abc import Mapping

from scrapy import signals

from classifiers.ruleset import fingerprint
from crawler.config import ConfigError, PatrolConfig
from crawler.crawl_config import crawl_config
from crawler.evidence.archive import uncaptured_pages
from crawler.items import verdict_stamp
from crawler.store.db import StateDB
from crawler.store.pages import Revalidation, revalidations


class ConditionalGetMiddleware:
    def __init__(self, db_url: str | None, archive_all: bool, stamps: Mapping[str, str], stats):
        self.db_url = db_url
        self.archive_all = archive_all
        self.stamps = stamps
        """target id → ``verdict_stamp`` of this patrol's classifier and the target's kind."""
        self.stats = stats
        self.pages: dict[tuple[str, str], Revalidation] = {}

    @classmethod
    def from_crawler(cls, crawler):
        try:
            config = crawl_config(crawler.settings)
            stamps = current_stamps(config)
        except (ConfigError, OSError):  # the spider and the analyse pipeline report these; every page is fetched whole
            config, stamps = None, {}
        middleware = cls(config and config.db_url, bool(config and config.evidence.archive == "all"), stamps,
                         crawler.stats)
        middleware.crawler = crawler
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        return middleware

    def spider_opened(self):
        self.load(list(getattr(self.crawler.spider, "crawls", {})))

    def load(self, target_ids: list[str]) -> None:
        """Read what these targets' pages need to be asked for conditionally."""
        stamps = {target_id: self.stamps[target_id] for target_id in target_ids if target_id in self.stamps}
        if self.db_url is None or not stamps:
            return
        db = StateDB(self.db_url)
        try:
            pages = revalidations(db, stamps)
            for key in uncaptured_pages(db, target_ids, self.archive_all):
                pages.pop(key, None)
        finally:
            db.close()
        self.pages = pages  # set last: a failure above leaves every page fetched whole

    def process_request(self, request):
        if not request.meta.get("finpatrol_conditional"):
            return None
        key = (request.meta.get("finpatrol_target"), request.meta.get("finpatrol_url"))
        known = self.pages.get(key)
        if known is None:
            return None
        if known.etag:
            request.headers.setdefault(b"If-None-Match", known.etag)
        if known.last_modified:
            request.headers.setdefault(b"If-Modified-Since", known.last_modified)
        request.meta["finpatrol_asked"] = key
        self.stats.inc_value("conditional/asked")
        return None

    def process_response(self, request, response):
        key = request.meta.get("finpatrol_asked")
        if key is None:
            return response
        if response.status != 304:
            if 200 <= response.status < 300:  # answered whole; an error may still be retried
                self.pages.pop(key, None)
            return response
        known = self.pages.pop(key, None)  # each page's links are followed once per crawl
        if known is None:  # answered 304 before in this crawl: ask again, whole
            self.stats.inc_value("conditional/links_missing")
            del request.meta["finpatrol_asked"]
            request.meta["finpatrol_conditional"] = False
            for header in (b"If-None-Match", b"If-Modified-Since"):
                request.headers.pop(header, None)
            return request.replace(dont_filter=True)
        request.meta["finpatrol_links"] = known.links
        self.stats.inc_value("conditional/not_modified")
        return response


def current_stamps(config: PatrolConfig) -> dict[str, str]:
    """target id → the ``verdict_stamp`` a page of that target gets in a patrol with ``config``."""
    rules = fingerprint(config.rules_files, config.yield_ceiling)
    return {target.id: verdict_stamp(rules, target.kind) for target in config.targets}
