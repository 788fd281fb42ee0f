"""Patrol the websites of registered institutions: start URLs, sitemaps and in-scope links.

Each target keeps its own dedup set and limits (``max_pages``, ``max_depth``,
trap budgets), so two targets sharing a domain are patrolled independently.
When the link crawl is done (``spider_idle``), every stored page of the target with an
open hit (``TargetCrawl.revisit``, filled by the store pipeline when it opens) that was
not asked for is asked for directly: not cut by ``max_depth`` or ``max_pages`` (they
bound discovery; these few pages are what a patrol must check), its links not followed,
robots.txt still obeyed. One now outside the target's scope is not asked for, only
counted. URLs answered 404/410 are collected in ``TargetCrawl.gone``: the store marks
those pages gone, and no others.
Counts go to stats under ``patrol/target/<id>/...`` (``revisited``, ``out_of_scope``
among them) and ``patrol/trap/...``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy import signals
from scrapy.exceptions import (
    CannotResolveHostError,
    DontCloseSpider,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from scrapy.http import Response
from scrapy.utils.sitemap import Sitemap

from crawler.config import PatrolConfig, Target
from crawler.crawl_config import crawl_config
from spiders.configured import apply_config, config_and_ids
from spiders.links import LinkBudget, extract_hrefs, in_scope, is_followable, pack_links, resolve, unpack_links
from spiders.pages import is_html, page_item
from spiders.render import close_quietly, is_js_shell, settle

logger = logging.getLogger(__name__)

_FAILURES = (
    (CannotResolveHostError, "dns"),
    (DownloadTimeoutError, "timeout"),
    (DownloadConnectionRefusedError, "refused"),
    ((DownloadFailedError, ResponseDataLossError), "connection_lost"),
    (PlaywrightTimeoutError, "render_timeout"),
    (PlaywrightError, "render_error"),
    (DownloadCancelledError, "too_large"),
    (IgnoreRequest, "ignored"),
)


RENDER_SLOT = "finpatrol-render"
GONE_STATUSES = frozenset({404, 410})


@dataclass
class TargetCrawl:
    target: Target
    budget: LinkBudget = field(default_factory=LinkBudget)
    scheduled: int = 0
    revisit: list[str] = field(default_factory=list)
    """Stored URLs of the target's pages with an open hit, to ask for when the links did not
    lead there (set before the crawl, by the store pipeline: spiders do not read the state DB)."""
    gone: set[str] = field(default_factory=set)
    """URLs (as requested) the server answered 404 or 410 in this crawl: evidence the page is gone."""
    answered: bool = False
    """The site answered at least one request of this crawl (any status)."""

    @property
    def renders_all(self) -> bool:
        return self.target.render == "always" or self.target.screenshot == "always"


def needs_browser(config: PatrolConfig) -> bool:
    return any(t.enabled and (t.render != "never" or t.screenshot == "always") for t in config.targets)


def failure_reason(error: BaseException) -> str:
    """A short, stable name for why a request failed (the key under errors/ in stats)."""
    for kinds, name in _FAILURES:
        if isinstance(error, kinds):
            return getattr(error, "finpatrol_reason", name)
    return type(error).__name__


class SitePatrolSpider(scrapy.Spider):
    name = "site_patrol"
    # Scrapy starts CONCURRENT_ITEMS asyncio tasks for every response, whatever it yields; its
    # 100 were a quarter of the crawler process's CPU on a re-patrol. A page yields one item and
    # its new links. (A listing yields an item per result, each waiting for the store's batch:
    # the listing spiders keep Scrapy's 100, so a list's items share one batch.)
    custom_settings = {"CONCURRENT_ITEMS": 4}

    def __init__(self, config: PatrolConfig, target_ids: tuple[str, ...] = (), **kwargs):
        super().__init__(**kwargs)
        self.config = config
        chosen = [t for t in config.targets if t.enabled and (not target_ids or t.id in target_ids)]
        self.crawls = {t.id: TargetCrawl(t) for t in chosen}

    @classmethod
    def update_settings(cls, settings):
        """Config values that are Scrapy settings; Playwright handlers only when a target renders."""
        super().update_settings(settings)
        config = crawl_config(settings)
        apply_config(settings, config, needs_browser(config))

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        config, wanted = config_and_ids(crawler, kwargs)
        spider = cls(config, wanted, *args, **kwargs)
        spider._set_crawler(crawler)
        spider.settle_seconds = crawler.settings.getfloat("FINPATROL_RENDER_SETTLE")
        spider.pages_per_context = crawler.settings.getint("FINPATROL_RENDER_PAGES_PER_CONTEXT")
        spider.browser_locale = crawler.settings.get("FINPATROL_BROWSER_LOCALE")
        spider.rendered_count = 0
        spider.context_inflight = Counter()  # context name → rendered requests not yet finished
        spider.context_objects = {}  # context name → its BrowserContext, once a page showed it
        spider.revisits_asked = False
        crawler.signals.connect(spider.idle, signal=signals.spider_idle)
        return spider

    async def start(self):
        for crawl in self.crawls.values():
            target = crawl.target
            for url in target.urls:
                request = self._request(crawl, url, depth=0)
                if request is not None:
                    yield request
            for origin in {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in target.urls}:
                yield scrapy.Request(
                    origin + "/sitemap.xml",
                    callback=self.parse_sitemap,
                    errback=self.sitemap_failed,
                    meta=self._meta(crawl, 0) | {"handle_httpstatus_all": True},
                    dont_filter=True,
                    priority=10,
                )

    def _meta(self, crawl: TargetCrawl, depth: int, revisit: bool = False) -> dict:
        target = crawl.target
        meta = {
            "finpatrol_target": target.id,
            "finpatrol_depth": depth,
            "dont_obey_robotstxt": not self.config.obeys_robots(target),
        }
        if revisit:
            meta["finpatrol_revisit"] = True  # asked for directly: its links are not followed
        return meta

    def _request(self, crawl: TargetCrawl, url: str, depth: int) -> scrapy.Request | None:
        target, budget = crawl.target, crawl.budget
        if crawl.scheduled >= target.max_pages or url in budget.decided:
            return None
        if not is_followable(url) or not in_scope(url, target.allowed_domains):
            budget.decided.add(url)
            return None
        canonical, trap = budget.admit(url)
        if trap:
            self.crawler.stats.inc_value(f"patrol/trap/{trap}")
            self.crawler.stats.inc_value(f"patrol/target/{target.id}/trapped")
            return None
        if canonical is None:
            return None
        crawl.scheduled += 1
        return self._fetch(crawl, url, depth)

    def _fetch(self, crawl: TargetCrawl, url: str, depth: int, revisit: bool = False) -> scrapy.Request:
        if crawl.renders_all:
            return self._render_request(crawl, url, depth, revisit=revisit)
        meta = self._meta(crawl, depth, revisit) | {"finpatrol_url": url, "finpatrol_conditional": True}
        return scrapy.Request(
            url,
            callback=self.parse,
            errback=self.failed,
            meta=meta,
            dont_filter=True,  # dedup is per target, above
            priority=-depth,
        )

    def idle(self):
        """The link crawl is done: ask for the pages with open hits it did not reach, once."""
        if self.revisits_asked:
            return
        self.revisits_asked = True
        asked = 0
        for crawl in self.crawls.values():
            for request in self._revisits(crawl):
                self.crawler.engine.crawl(request)
                asked += 1
        if asked:
            raise DontCloseSpider

    def _revisits(self, crawl: TargetCrawl):
        """Requests for the target's stored pages with open hits that this crawl has not asked for.

        Outside the target's scope now (host changed, domain no longer allowed): not asked
        for, counted and logged; their hits stay as they are. None when the site answered
        nothing in this crawl (down, or every request timed out): each would only wait out
        its timeout and retries, and a failure is no evidence either way.
        """
        target, budget = crawl.target, crawl.budget
        stats, prefix = self.crawler.stats, f"patrol/target/{target.id}"
        if not crawl.answered and crawl.revisit:
            stats.set_value(f"{prefix}/revisit_skipped", len(crawl.revisit))
            logger.warning("target %s answered no request in this patrol: its %d page(s) with open hits are not "
                           "checked again; their hits stay as they are", target.id, len(crawl.revisit))
            return
        outside = 0
        for url in crawl.revisit:
            if not is_followable(url) or not in_scope(url, target.allowed_domains):
                outside += 1
                continue
            if url in budget.decided:  # asked for (or met under another spelling) by the crawl
                continue
            budget.decided.add(url)
            stats.inc_value(f"{prefix}/revisited")
            yield self._fetch(crawl, url, depth=0, revisit=True)
        if outside:
            stats.set_value(f"{prefix}/out_of_scope", outside)
            logger.warning(
                "target %s: %d stored page(s) with open hits are outside its scope now (allowed_domains %s): "
                "not checked, their hits stay as they are", target.id, outside, ", ".join(target.allowed_domains))

    def _context_name(self) -> str:
        return f"finpatrol-{self.rendered_count // self.pages_per_context}"

    def _render_request(self, crawl: TargetCrawl, url: str, depth: int, retry: bool = False,
                        revisit: bool = False, instead_of: scrapy.Request | None = None):
        """A request through Chromium; the page comes back open to the callback, which closes it.

        All rendered requests share one download slot (FINPATROL_RENDER_CONCURRENCY pages
        in the browser at once), whatever their domain. ``instead_of``: the request it repeats
        (a static fetch of a JavaScript shell, a render that failed), whose Referer it keeps:
        Scrapy would give it the page itself as its referrer, and the evidence would say so.
        """
        self.rendered_count += 1
        context_name = self._context_name()
        self.context_inflight[context_name] += 1
        meta = self._meta(crawl, depth, revisit) | {
            "finpatrol_url": url,
            "finpatrol_render_retry": retry,
            "download_slot": RENDER_SLOT,
            "playwright": True,
            "playwright_include_page": True,
            "playwright_context": context_name,
            "playwright_context_kwargs": {"locale": self.browser_locale},  # used when the context is made
            "playwright_page_goto_kwargs": {"wait_until": "domcontentloaded"},
        }
        if crawl.target.screenshot == "always":
            meta["playwright_page_init_callback"] = "spiders.render.keep_images"
        headers = {}
        if instead_of is not None:
            referer = instead_of.headers.get("Referer")
            if referer:
                headers["Referer"] = referer
            else:
                meta["referrer_policy"] = "no-referrer"
        return scrapy.Request(
            url, callback=self.parse_rendered, errback=self.render_failed, meta=meta, headers=headers,
            dont_filter=True, priority=-depth,
        )

    def parse(self, response: Response):
        crawl = self.crawls[response.meta["finpatrol_target"]]
        crawl.answered = True
        depth = response.meta["finpatrol_depth"]
        stats, prefix = self.crawler.stats, f"patrol/target/{crawl.target.id}"
        if response.status == 304 and "finpatrol_links" in response.meta:
            yield from self._not_modified(crawl, response, depth)
            return
        if response.status >= 400:
            self._http_error(crawl, response)
            return
        if not is_html(response):
            stats.inc_value(f"{prefix}/skipped_non_html")
            return
        if crawl.target.render == "auto" and is_js_shell(response):
            stats.inc_value("render/auto_escalations")
            yield self._render_request(crawl, response.meta["finpatrol_url"], depth,
                                       revisit=response.meta.get("finpatrol_revisit", False),
                                       instead_of=response.request)
            return
        stats.inc_value(f"{prefix}/pages")
        yield from self._page(crawl, response, depth)

    def _page(self, crawl: TargetCrawl, response: Response, depth: int):
        """The page's item, carrying its links for the next patrol, then the links to follow."""
        base, hrefs = extract_hrefs(response.text)
        base = urljoin(response.url, base) if base else response.url
        item = page_item(response, crawl.target.id, depth)
        item.kind = crawl.target.kind
        item.links = pack_links(base, hrefs)
        yield item
        if not response.meta.get("finpatrol_revisit"):
            yield from self._follow(crawl, base, hrefs, depth)

    def _http_error(self, crawl: TargetCrawl, response: Response) -> None:
        """Count an HTTP error; a 404/410 is evidence the page is gone (``TargetCrawl.gone``)."""
        prefix = f"patrol/target/{crawl.target.id}"
        self.crawler.stats.inc_value(f"{prefix}/failed")
        self.crawler.stats.inc_value(f"{prefix}/errors/http_{response.status}")
        if response.status in GONE_STATUSES:
            crawl.gone.add(response.meta["finpatrol_url"])

    def _not_modified(self, crawl: TargetCrawl, response: Response, depth: int):
        """A 304 answer to a conditional request: the stored page stands; follow its stored links."""
        self.crawler.stats.inc_value(f"patrol/target/{crawl.target.id}/pages")
        self.crawler.stats.inc_value(f"patrol/target/{crawl.target.id}/not_modified")
        item = page_item(response, crawl.target.id, depth)
        item.unchanged = True
        yield item
        if not response.meta.get("finpatrol_revisit"):
            base, hrefs = unpack_links(response.meta["finpatrol_links"])
            yield from self._follow(crawl, base, hrefs, depth)

    def _follow(self, crawl: TargetCrawl, base: str, hrefs: list[str], depth: int):
        if depth >= crawl.target.max_depth or crawl.scheduled >= crawl.target.max_pages:
            return
        for url in resolve(base, hrefs):
            request = self._request(crawl, url, depth + 1)
            if request is not None:
                yield request

    async def parse_rendered(self, response: Response):
        """Settle, snapshot and close the browser page, then treat the DOM like any page."""
        crawl = self.crawls[response.meta["finpatrol_target"]]
        crawl.answered = True
        depth = response.meta["finpatrol_depth"]
        page = response.meta.pop("playwright_page")
        stats = self.crawler.stats
        try:
            if not await settle(page, self.settle_seconds):
                stats.inc_value("render/settle_timeouts")
            html = await page.content()
            screenshot = await page.screenshot(full_page=True, type="png", timeout=15_000)
        except PlaywrightError as error:  # the browser died under the page: like a failed download
            await self._release(page, response.meta["playwright_context"])
            for request in self._render_error(response.request, error):
                yield request
            return
        await self._release(page, response.meta["playwright_context"])
        stats.inc_value("render/pages")
        if response.status >= 400:
            self._http_error(crawl, response)
            return
        rendered = response.replace(body=html.encode("utf-8"), encoding="utf-8")
        rendered.meta["finpatrol_screenshot"] = screenshot
        stats.inc_value(f"patrol/target/{crawl.target.id}/pages")
        for output in self._page(crawl, rendered, depth):
            yield output

    async def _release(self, page, context_name: str) -> None:
        """Close the page; close a retired context once none of its requests is left.

        Counting requests (not open pages) matters: a request already assigned to a
        context may not have its page yet, and closing the context under it would
        leave it waiting on the context's page semaphore for ever.
        """
        if page is not None:
            self.context_objects.setdefault(context_name, page.context)
            if not page.is_closed():
                await close_quietly(page)
        self.context_inflight[context_name] -= 1
        retired = context_name != self._context_name() and self.context_inflight[context_name] <= 0
        if retired and context_name in self.context_objects:
            del self.context_inflight[context_name]
            await close_quietly(self.context_objects.pop(context_name))
            self.crawler.stats.inc_value("render/contexts_recycled")

    async def render_failed(self, failure):
        """Close the page, retry once after a browser crash, count timeouts."""
        request = failure.request
        await self._release(request.meta.pop("playwright_page", None), request.meta.get("playwright_context", ""))
        for follow_up in self._render_error(request, failure.value):
            yield follow_up

    def _render_error(self, request, error: BaseException):
        if isinstance(error, PlaywrightTimeoutError):
            self.crawler.stats.inc_value("render/timeouts")
        elif isinstance(error, PlaywrightError) and not request.meta.get("finpatrol_render_retry"):
            logger.info("rendering %s again after a browser error: %s", request.url, error)
            self.crawler.stats.inc_value("render/retries")
            crawl = self.crawls[request.meta["finpatrol_target"]]
            yield self._render_request(
                crawl, request.meta["finpatrol_url"], request.meta["finpatrol_depth"], retry=True,
                revisit=request.meta.get("finpatrol_revisit", False), instead_of=request,
            )
            return
        self._count_failure(request, error)

    def parse_sitemap(self, response: Response):
        if response.status >= 400 or not response.body.lstrip().startswith(b"<"):
            return
        crawl = self.crawls[response.meta["finpatrol_target"]]
        try:
            sitemap = Sitemap(response.body)
        except Exception:  # a broken sitemap is only a missed shortcut
            self.crawler.stats.inc_value("patrol/sitemap/invalid")
            return
        for entry in sitemap:
            loc = entry.get("loc", "").strip()
            if sitemap.type == "sitemapindex" and in_scope(loc, crawl.target.allowed_domains):
                yield response.request.replace(url=loc)
            elif loc:
                self.crawler.stats.inc_value("patrol/sitemap/urls")
                request = self._request(crawl, loc, depth=0)
                if request is not None:
                    yield request

    def failed(self, failure):
        self._count_failure(failure.request, failure.value)

    def _count_failure(self, request, error: BaseException) -> None:
        target_id = request.meta.get("finpatrol_target", "?")
        if isinstance(error, IgnoreRequest) and "robots.txt" in str(error):
            self.crawler.stats.inc_value(f"patrol/target/{target_id}/skipped/robots")
            return
        reason = failure_reason(error)
        self.crawler.stats.inc_value(f"patrol/target/{target_id}/failed")
        self.crawler.stats.inc_value(f"patrol/target/{target_id}/errors/{reason}")
        logger.info("failed %s (%s): %s", request.url, reason, error)

    def sitemap_failed(self, failure):
        logger.debug("no sitemap at %s: %s", failure.request.url, failure.getErrorMessage())
