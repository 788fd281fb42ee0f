"""scrapy-playwright's download handler with a hard time limit on each rendered download.

When Chromium dies under a navigation, scrapy-playwright restarts the browser and
retries the requests that were waiting for a page, but a request already navigating
in the dead browser could wait for ever, and the patrol never finished. After
FINPATROL_RENDER_WATCHDOG seconds (well above the navigation timeout) such a
download fails with a Playwright error, which the spider's errback retries once in
a fresh context like any browser failure.

Chromium also gets the request's Referer (set by Scrapy's RefererMiddleware) as the
navigation's referrer: scrapy-playwright passes a Referer header that Chromium does not send,
so the request recorded as evidence named a referrer the site never saw.
"""

from __future__ import annotations

import asyncio

from playwright.async_api import Error as PlaywrightError
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler


class RenderStalled(PlaywrightError):
    """A rendered download that neither finished nor failed within the watchdog limit."""

    finpatrol_reason = "render_stalled"  # the key under patrol/target/<id>/errors/


class WatchdogPlaywrightHandler(ScrapyPlaywrightDownloadHandler):
    def __init__(self, crawler):
        super().__init__(crawler)
        self.watchdog_seconds = crawler.settings.getfloat("FINPATROL_RENDER_WATCHDOG")

    async def download_request(self, request):
        if not request.meta.get("playwright"):
            return await super().download_request(request)
        referer = request.headers.get("Referer")
        if referer:
            goto = request.meta.get("playwright_page_goto_kwargs") or {}
            request.meta["playwright_page_goto_kwargs"] = {"referer": referer.decode("latin-1")} | goto
        try:
            return await asyncio.wait_for(super().download_request(request), self.watchdog_seconds)
        except asyncio.TimeoutError:
            raise RenderStalled(
                f"rendering {request.url} neither finished nor failed in {self.watchdog_seconds:.0f} s"
            ) from None
