"""Stop asking a host that does not answer (a circuit breaker per host, a downloader middleware).

A collapsed platform's server often accepts connections and never answers: each request
then waits DOWNLOAD_TIMEOUT, RETRY_TIMES times over, robots.txt first. After
FINPATROL_HOST_FAILURES failures in a row to one host (timeouts, refused or lost
connections, names that do not resolve; every attempt counts, retries and robots.txt
fetches included) with no answer in between, the host is *unresponsive*: its requests
still waiting in the downloader, and every later one, are dropped without being sent
(``HostUnresponsive``, an IgnoreRequest, so never retried) and reach the spider's errback,
which counts them under ``patrol/target/<id>/errors/host_unresponsive``
(``host_unresolved`` when every failure was a name that does not resolve: the domain
is gone). A request already on the wire when the host trips fails with its own reason,
not retried. Any answer from the host (headers of any status, or a whole response,
also through the browser) resets its count and lets its requests through again.

A host is the server a URL names, ``host:port``: the same server whichever target
asks (two targets may share one), robots.txt included (it is fetched per host:port
and names no target, and it is the first request any host gets, so the first sign).
Placed after the robots.txt middleware (100), so a request that waited for a failing
robots.txt is checked when it goes on, and before the retry middleware (550), so it
sees every attempt and a tripped host's failures are not retried.

Nothing dropped is evidence about a page: only 404/410 answers mark pages gone.
One WARNING per unresponsive host when the spider closes: the host, why, the targets
and how many of their requests were dropped.

Setting: FINPATROL_HOST_FAILURES (0 switches it off). Stats: ``host_breaker/failures``
(counted attempts), ``host_breaker/tripped`` (times a host turned unresponsive),
``host_breaker/dropped``, ``host_breaker/recovered`` (an unresponsive host answered again).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from scrapy import signals
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
)
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost
from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

# What the host not answering looks like; a response cut short (ResponseDataLossError), a
# body too large or a request refused by policy are answers, or are not the host's doing.
_NO_ANSWER = (
    (DownloadTimeoutError, "timeout"),
    (DownloadConnectionRefusedError, "refused"),
    (CannotResolveHostError, "dns"),
    ((DownloadFailedError, ConnectionLost, ConnectionDone), "connection_lost"),
    (ConnectError, "connect_error"),  # no route to host, TCP connect timeout, …
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HostUnresponsive(IgnoreRequest):
    """A request dropped unsent: its host failed too many times in a row.

    ``finpatrol_reason`` is the key under ``patrol/target/<id>/errors/``.
    """

    def __init__(self, host: str, failures: int, cause: str):
        unresolved = cause == "dns"
        super().__init__(f"not sent: {host} {'did not resolve' if unresolved else 'did not answer'} "
                         f"{failures} time(s) in a row ({cause})")
        self.finpatrol_reason = "host_unresolved" if unresolved else "host_unresponsive"


def host_key(request) -> str:
    url = urlparse_cached(request)
    return f"{(url.hostname or '').lower()}:{url.port or _DEFAULT_PORTS.get(url.scheme, 0)}"


def no_answer(error: BaseException) -> str | None:
    """The kind of failure, when ``error`` means the host did not answer; else None."""
    for kinds, name in _NO_ANSWER:
        if isinstance(error, kinds):
            return name
    return None


@dataclass
class HostState:
    failures: int = 0
    """Failures in a row, since the host last answered."""
    causes: Counter = field(default_factory=Counter)
    """Kinds of those failures."""
    tripped: tuple[int, str] | None = None
    """Set while the host is unresponsive: (failures, cause) its dropped requests are told."""
    dropped: Counter = field(default_factory=Counter)
    """Target id (``-`` for none, like robots.txt) → requests dropped, over the whole crawl."""
    reason: str = ""
    """How the host last tripped, for the closing warning."""


class HostBreakerMiddleware:
    def __init__(self, threshold: int, stats, crawler=None):
        self.threshold = threshold
        self.stats = stats
        self.crawler = crawler
        self.hosts: dict[str, HostState] = {}

    @classmethod
    def from_crawler(cls, crawler):
        threshold = crawler.settings.getint("FINPATROL_HOST_FAILURES")
        if threshold <= 0:
            raise NotConfigured("FINPATROL_HOST_FAILURES is 0")
        middleware = cls(threshold, crawler.stats, crawler)
        # Signals, not process_response: they see every answer, also the ones a middleware
        # after this one turns into a new request (a redirect), and a status whose body stalls.
        crawler.signals.connect(middleware.answered, signal=signals.headers_received)
        crawler.signals.connect(middleware.answered, signal=signals.response_downloaded)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def process_request(self, request):
        host = host_key(request)
        state = self.hosts.get(host)
        if state is not None and state.tripped is not None:
            raise self._dropped(host, state, request)
        return None

    def process_exception(self, request, exception):
        cause = no_answer(exception)
        if cause is None:
            return None
        host = host_key(request)
        state = self.hosts.setdefault(host, HostState())
        state.failures += 1
        state.causes[cause] += 1
        self.stats.inc_value("host_breaker/failures")
        if state.tripped is None and state.failures >= self.threshold:
            self._trip(host, state)
        if state.tripped is not None:
            raise exception  # past the retry middleware: not retried
        return None

    def answered(self, request, **kwargs) -> None:
        state = self.hosts.get(host_key(request))
        if state is None or not state.failures:
            return
        if state.tripped is not None:
            self.stats.inc_value("host_breaker/recovered")
            logger.info("host %s answered again: its requests are sent again", host_key(request))
        state.failures, state.tripped = 0, None
        state.causes.clear()

    def _trip(self, host: str, state: HostState) -> None:
        cause = ", ".join(f"{name}×{n}" for name, n in state.causes.most_common())
        unresolved = set(state.causes) == {"dns"}
        state.tripped = (state.failures, "dns" if unresolved else cause)
        verb = "did not resolve" if unresolved else "did not answer"
        state.reason = f"{verb} {state.failures} times in a row ({cause})"
        self.stats.inc_value("host_breaker/tripped")
        logger.info("host %s %s: its other requests are dropped unsent", host, state.reason)
        self._purge(host, state)

    def _purge(self, host: str, state: HostState) -> None:
        """Fail the requests already handed to the downloader, waiting in its slot queues."""
        downloader = getattr(getattr(self.crawler, "engine", None), "downloader", None)
        for slot in getattr(downloader, "slots", {}).values():
            waiting = [(r, d) for r, d in slot.queue if host_key(r) == host]
            for entry in waiting:
                slot.queue.remove(entry)
            for request, deferred in waiting:
                deferred.errback(Failure(self._dropped(host, state, request)))

    def _dropped(self, host: str, state: HostState, request) -> HostUnresponsive:
        """Count one dropped request; the error it fails with."""
        state.dropped[request.meta.get("finpatrol_target") or "-"] += 1
        self.stats.inc_value("host_breaker/dropped")
        return HostUnresponsive(host, *state.tripped)

    def spider_closed(self, spider, reason) -> None:
        for host, state in self.hosts.items():
            if not state.dropped:
                continue
            targets = [f"{t}: {n}" for t, n in sorted(state.dropped.items()) if t != "-"]
            logger.warning("host %s %s: %d request(s) to it dropped unsent (%s)", host, state.reason,
                           sum(state.dropped.values()),
                           f"target{'s' if len(targets) > 1 else ''} {', '.join(targets)}" if targets else "robots.txt")
