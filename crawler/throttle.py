"""Scrapy's AutoThrottle, with a 304 Not Modified counted as a success like a 200.

Scrapy never lowers the download delay on a non-200 answer (error pages are small
and fast, and would otherwise speed the crawl up against a failing server). A
re-patrol answered with 304s (``crawler.conditional``) would then crawl at
AUTOTHROTTLE_START_DELAY for ever: 2 pages/s instead of what the server allows.
A 304 is the server confirming the page, so it counts like the 200 it stands for.
"""

from __future__ import annotations

from types import SimpleNamespace

from scrapy.extensions.throttle import AutoThrottle as ScrapyAutoThrottle


_CONFIRMED = SimpleNamespace(status=200)  # what Scrapy's delay policy reads of a response


class AutoThrottle(ScrapyAutoThrottle):
    def _adjust_delay(self, slot, latency: float, response) -> None:
        super()._adjust_delay(slot, latency, _CONFIRMED if response.status == 304 else response)
