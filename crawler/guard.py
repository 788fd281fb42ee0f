"""Keep hostile sites from steering the crawler into private networks (SSRF).

Every request — first hop, redirect, robots.txt or sitemap entry — passes this
downloader middleware. The host is resolved (through Scrapy's caching resolver,
so the connection that follows uses the same answer) and refused when an
address is loopback, private, link-local, multicast or otherwise not global.
Exceptions come from the config: top-level ``allow_private_networks: true``
allows private addresses everywhere; a target's own flag allows them only
inside that target's ``allowed_domains``, so its pages cannot redirect the
crawler to other internal hosts.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import deferred_to_future

from crawler.config import ConfigError, in_scope, is_public
from crawler.crawl_config import crawl_config

logger = logging.getLogger(__name__)


class BlockedRequest(IgnoreRequest):
    """A request refused by policy; ``finpatrol_reason`` names the policy."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.finpatrol_reason = reason


class NetworkGuardMiddleware:
    def __init__(self, allow_everywhere: bool, private_scope: tuple[str, ...], stats):
        self.allow_everywhere = allow_everywhere
        self.private_scope = private_scope
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        try:
            config = crawl_config(crawler.settings)
        except ConfigError:  # the spider reports config errors; the guard stays strict
            return cls(False, (), crawler.stats)
        return cls(config.allow_private_networks, config.private_scope(), crawler.stats)

    async def process_request(self, request):
        if self.allow_everywhere or in_scope(request.url, self.private_scope):
            return None
        host = (urlsplit(request.url).hostname or "").lower()
        bad = [a for a in await self._resolve(host) if not is_public(a)]
        if bad:
            self.stats.inc_value("guard/blocked/private_network")
            raise BlockedRequest(
                f"refused {request.url}: {host} resolves to non-public {bad[0]}", "private_network"
            )
        return None

    async def _resolve(self, host: str) -> list[str]:
        try:
            ipaddress.ip_address(host)
            return [host]
        except ValueError:
            pass
        from twisted.internet import reactor  # the installed one, asyncio-based

        try:
            return [await deferred_to_future(reactor.resolve(host))]
        except Exception:  # the download itself reports the DNS failure
            return []
