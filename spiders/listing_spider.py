"""Base of the channel and opinion spiders: list pages → results → result pages.

Each configured list (channel or source) is crawled under a pseudo target id
(``channel:<id>``, ``source:<id>``), so its pages are stored, classified, archived
and indexed by the same pipelines as a target's site, and counted in stats under
``patrol/target/<pseudo id>/...`` (pages, failed, errors/<reason>). Which lists run:
FINPATROL_TARGETS (comma-separated list ids; empty = every enabled one).
A listed result becomes an item of its own (``slot_only``: the list page is its
evidence, the listed title and snippet are classified); with ``follow`` the
result's page is fetched too and becomes a second item with the redirect chain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import scrapy
from scrapy.http import Response
from w3lib.url import canonicalize_url

from crawler.config import PatrolConfig, Target
from crawler.crawl_config import crawl_config
from crawler.config_channels import pseudo_target
from crawler.items import listed_url
from spiders.listing import Listed, extract_results, next_page, parse_feed
from spiders.pages import is_html, page_item
from spiders.configured import apply_config, config_and_ids
from spiders.site_patrol import failure_reason

logger = logging.getLogger(__name__)


@dataclass
class ListingCrawl:
    """One list's state for a single crawl."""

    origin: str
    listing: object
    """The Channel or Source config."""
    target: Target
    """Pseudo target (id ``<origin>:<list id>``) so the store records the list by name."""
    seen: set[str] = field(default_factory=set)

    @property
    def pid(self) -> str:
        return self.target.id


def pseudo(origin: str, listing) -> Target:
    """A Target record for a list, built without validation (its id has a colon on purpose)."""
    label = {"channel": "渠道", "source": "舆情来源"}[origin]
    return Target.model_construct(
        id=pseudo_target(origin, listing.id), name=f"{label} {listing.name or listing.id}", aliases=(),
        credit_code=None, business="other", urls=(listing.list_url("", 0),), allowed_domains=(),
        max_pages=10_000, max_depth=1, render=listing.render, screenshot="hits", obey_robots=listing.obey_robots,
        allow_private_networks=False, enabled=True,
    )


class ListingSpider(scrapy.Spider):
    origin = ""

    @classmethod
    def listings(cls, config: PatrolConfig) -> tuple:
        raise NotImplementedError

    def keywords(self, listing) -> list[str]:
        return [""]

    def __init__(self, config: PatrolConfig, chosen: tuple[str, ...] = (), **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.crawls = {
            pseudo_target(self.origin, listing.id): ListingCrawl(self.origin, listing, pseudo(self.origin, listing))
            for listing in self.listings(config)
            if listing.enabled and (not chosen or listing.id in chosen)
        }

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        config = crawl_config(settings)
        apply_config(settings, config, any(listing.render == "always" for listing in cls.listings(config)))

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        config, wanted = config_and_ids(crawler, kwargs)
        spider = cls(config, wanted, *args, **kwargs)
        spider._set_crawler(crawler)
        return spider

    async def start(self):
        for crawl in self.crawls.values():
            for keyword in self.keywords(crawl.listing):
                yield self._list_request(crawl, crawl.listing.list_url(keyword, 0), keyword, 0)

    def _meta(self, crawl: ListingCrawl, **extra) -> dict:
        robots = crawl.listing.obey_robots
        obey = self.config.obey_robots if robots is None else robots
        meta = {"finpatrol_target": crawl.pid, "dont_obey_robotstxt": not obey} | extra
        if crawl.listing.render == "always":
            meta |= {"playwright": True, "playwright_include_page": True,
                     "playwright_page_goto_kwargs": {"wait_until": "domcontentloaded"}}
        return meta

    def _list_request(self, crawl: ListingCrawl, url: str, keyword: str, index: int) -> scrapy.Request:
        meta = self._meta(crawl, finpatrol_keyword=keyword, finpatrol_page=index, finpatrol_url=url)
        return scrapy.Request(url, callback=self.parse_list, errback=self.failed, meta=meta, dont_filter=True,
                              priority=10)

    async def _rendered(self, response: Response) -> Response:
        page = response.meta.pop("playwright_page", None)
        if page is None:
            return response
        try:
            html = await page.content()
            shot = await page.screenshot(full_page=True, type="png", timeout=15_000)
        finally:
            await page.close()
        rendered = response.replace(body=html.encode("utf-8"), encoding="utf-8")
        rendered.meta["finpatrol_screenshot"] = shot
        return rendered

    def _ok(self, crawl: ListingCrawl, response: Response) -> bool:
        stats, prefix = self.crawler.stats, f"patrol/target/{crawl.pid}"
        if response.status >= 400:
            stats.inc_value(f"{prefix}/failed")
            stats.inc_value(f"{prefix}/errors/http_{response.status}")
            return False
        stats.inc_value(f"{prefix}/pages")
        return True

    async def parse_list(self, response: Response):
        response = await self._rendered(response)
        crawl = self.crawls[response.meta["finpatrol_target"]]
        if not self._ok(crawl, response):
            return
        listing, keyword = crawl.listing, response.meta["finpatrol_keyword"]
        if getattr(listing, "kind", "") == "feed":
            results = parse_feed(response, listing.max_results)
        elif is_html(response):
            results = extract_results(response, listing.selectors, listing.max_results)
        else:
            results = []
        self.crawler.stats.inc_value(f"listing/{self.origin}/results", len(results))
        for listed in results:
            yield self.slot_item(crawl, response, listed, keyword)
            if listing.follow:
                request = self._result_request(crawl, response, listed, keyword)
                if request is not None:
                    yield request
        index = response.meta["finpatrol_page"] + 1
        if results and index < listing.pages:
            url = listing.list_url(keyword, index) if "{page}" in listing.url else next_page(response, listing.selectors)
            if url:
                yield self._list_request(crawl, url, keyword, index)

    def _annotate(self, item, crawl: ListingCrawl, list_url: str, listed: Listed, keyword: str) -> None:
        item.origin, item.origin_id = crawl.origin, crawl.listing.id
        item.list_url, item.keyword, item.rank = list_url, keyword, listed.rank
        item.is_ad = listed.is_ad if crawl.origin == "channel" else None
        item.advertiser, item.author = listed.advertiser, listed.author
        item.posted_at, item.replies = listed.posted_at, listed.replies
        item.slot_title, item.slot_text = listed.title, listed.snippet

    def slot_item(self, crawl: ListingCrawl, response: Response, listed: Listed, keyword: str):
        """The result as listed: evidence = the list page, classified on its title and snippet."""
        item = page_item(response, crawl.pid, 0)
        item.url = listed_url(listed.link)
        item.slot_only = True
        item.kind = self.slot_kind(crawl.listing, listed)
        self._annotate(item, crawl, response.url, listed, keyword)
        return item

    def slot_kind(self, listing, listed: Listed) -> str | None:
        return listing.result_kind

    def page_kind(self, listing) -> str | None:
        return listing.result_kind

    def _result_request(self, crawl: ListingCrawl, response: Response, listed: Listed, keyword: str):
        canonical = canonicalize_url(listed.link, keep_fragments=False)
        if canonical in crawl.seen:
            return None
        crawl.seen.add(canonical)
        meta = self._meta(crawl, finpatrol_url=listed.link, finpatrol_listed=listed,
                          finpatrol_keyword=keyword, finpatrol_list_url=response.url)
        return scrapy.Request(listed.link, callback=self.parse_result, errback=self.failed, meta=meta,
                              dont_filter=True)

    async def parse_result(self, response: Response):
        response = await self._rendered(response)
        crawl = self.crawls[response.meta["finpatrol_target"]]
        if not self._ok(crawl, response) or not is_html(response):
            return
        listed: Listed = response.meta["finpatrol_listed"]
        item = page_item(response, crawl.pid, 1)
        item.kind = self.page_kind(crawl.listing)
        self._annotate(item, crawl, response.meta["finpatrol_list_url"], listed, response.meta["finpatrol_keyword"])
        item.landing_chain = [*item.redirects, response.url] if item.redirects else [listed.link, response.url]
        if item.landing_chain[0] == item.landing_chain[-1] and len(item.landing_chain) == 2:
            item.landing_chain = [response.url]
        yield item

    async def failed(self, failure):
        request = failure.request
        page = request.meta.pop("playwright_page", None)
        if page is not None:
            await page.close()
        target_id = request.meta.get("finpatrol_target", "?")
        stats = self.crawler.stats
        if "robots.txt" in str(failure.value):
            stats.inc_value(f"patrol/target/{target_id}/skipped/robots")
            return
        reason = failure_reason(failure.value)
        stats.inc_value(f"patrol/target/{target_id}/failed")
        stats.inc_value(f"patrol/target/{target_id}/errors/{reason}")
        logger.info("failed %s (%s): %s", request.url, reason, failure.getErrorMessage())
