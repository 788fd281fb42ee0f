"""Every Scrapy setting of finpatrol; environment variables are read here, once.

Defaults are safe for patrolling hostile sites: robots.txt obeyed, polite
per-domain concurrency with AutoThrottle, bounded sizes, redirects and URL
lengths, and no telnet or remote-control servers.
"""

import os
import shutil
from pathlib import Path

BOT_NAME = "finpatrol"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

USER_AGENT = (
    "Mozilla/5.0 (compatible; finpatrol/0.1; internet-finance risk patrol of a "
    "district rectification office; +https://github.com/finpatrol)"
)

# Chinese first: a bilingual platform answers Scrapy's default (Accept-Language: en) with its
# English pages, where the claims the classifier reads are not. Rendered pages also get a
# zh-CN browser locale (navigator.language: spiders.site_patrol).
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5",
}
FINPATROL_BROWSER_LOCALE = "zh-CN"

# The patrol config the spiders and pipelines read (the CLI passes it too).
FINPATROL_CONFIG = os.environ.get("FINPATROL_CONFIG", "patrol.yaml")
# A file holding the config text `finpatrol serve` accepted, read instead of the file (crawler.crawl_config).
FINPATROL_CONFIG_TEXT = ""
# Comma-separated target ids to patrol; empty means every enabled target.
FINPATROL_TARGETS = os.environ.get("FINPATROL_TARGETS", "")
# Worker processes for extraction and classification (CPU-bound).
FINPATROL_WORKERS = int(os.environ.get("FINPATROL_WORKERS", "0")) or max(1, os.cpu_count() or 1)
# Allocations between young-generation GC passes during a crawl (crawler.gc_tuning); 0 = Python's default.
FINPATROL_GC_THRESHOLD = int(os.environ.get("FINPATROL_GC_THRESHOLD", "50000"))
# Pages written to the state DB per transaction.
FINPATROL_STORE_BATCH = int(os.environ.get("FINPATROL_STORE_BATCH", "32"))

ROBOTSTXT_OBEY = True  # per target: Target.obey_robots sets meta dont_obey_robotstxt
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

CONCURRENT_REQUESTS = 32
# Scrapy's check that a callback does not return a value from a generator reads and parses
# the callback's source (~1 ms) whenever its cache misses, and the cache forgets a bound
# method once the request that held it is gone: on a re-patrol, 2 % of the reactor's time.
# tests/test_architecture.py runs the same check on every spider method, once.
WARN_ON_GENERATOR_RETURN_VALUE = False
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
EXTENSIONS = {  # AutoThrottle that lets a 304 lower the delay like a 200; fewer GC passes
    "scrapy.extensions.throttle.AutoThrottle": None,
    "crawler.throttle.AutoThrottle": 0,
    "crawler.gc_tuning.GcTuning": 0,
}

DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024  # also caps the decompressed size (bombs)
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 2
# Failures in a row (timeouts, refused or lost connections, DNS; retries and robots.txt
# included) after which a host's other requests are dropped unsent (crawler.host_breaker);
# 0 = never.
FINPATROL_HOST_FAILURES = int(os.environ.get("FINPATROL_HOST_FAILURES", "3"))
REDIRECT_MAX_TIMES = 5
URLLENGTH_LIMIT = 2000
METAREFRESH_MAXDELAY = 10
DNSCACHE_ENABLED = True
DNS_TIMEOUT = 20
COOKIES_ENABLED = True
HTTPERROR_ALLOW_ALL = True  # 404/500 reach the spider so they are counted per target

SPIDER_MIDDLEWARES = {  # link depth is counted per target by the spiders (max_depth)
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
}

DOWNLOADER_MIDDLEWARES = {
    # Before the robots.txt middleware (100) so robots.txt fetches are guarded too.
    "crawler.guard.NetworkGuardMiddleware": 50,
    # After robots.txt (100), so a request that waited for it is checked; before retries (550),
    # so it sees every attempt: drops the requests of a host that stopped answering.
    "crawler.host_breaker.HostBreakerMiddleware": 560,
    # Asks for known pages with If-None-Match / If-Modified-Since; a 304 gets the stored links.
    "crawler.conditional.ConditionalGetMiddleware": 580,
    # Scrapy's (580), minus the scan of pages that cannot hold a refresh (and of every 304);
    # it sees responses after the conditional middleware, which passes all but 304s on as they are.
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.meta_refresh.MetaRefreshMiddleware": 575,
}

ITEM_PIPELINES = {
    "crawler.pipelines.analyse.AnalysePipeline": 100,
    "crawler.pipelines.store.StorePipeline": 800,
    "crawler.pipelines.attribute.AttributePipeline": 820,
    "crawler.pipelines.evidence.EvidencePipeline": 840,
    "crawler.pipelines.index.IndexPipeline": 850,
}


TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = os.environ.get("FINPATROL_LOG_LEVEL", "INFO")

# Rendering (scrapy-playwright). The download handlers are switched on by the
# spider only when a target renders, so static patrols start no browser.
PLAYWRIGHT_DOWNLOAD_HANDLERS = {  # scrapy-playwright's, with a hard limit per rendered download
    "http": "crawler.render_handler.WatchdogPlaywrightHandler",
    "https": "crawler.render_handler.WatchdogPlaywrightHandler",
}
PLAYWRIGHT_BROWSER_TYPE = "chromium"
PLAYWRIGHT_ABORT_REQUEST = "spiders.render.abort_request"
# Rendered requests share one download slot, so at most this many pages are open in
# Chromium at once; the per-context page limit is above CONCURRENT_REQUESTS so its
# semaphore never blocks (a blocked one never wakes when the browser crashes).
FINPATROL_RENDER_CONCURRENCY = int(os.environ.get("FINPATROL_RENDER_CONCURRENCY", "3"))
DOWNLOAD_SLOTS = {"finpatrol-render": {"concurrency": FINPATROL_RENDER_CONCURRENCY}}
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = CONCURRENT_REQUESTS
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 30_000
# A rendered download still pending after this many seconds fails (and is retried once).
FINPATROL_RENDER_WATCHDOG = float(os.environ.get("FINPATROL_RENDER_WATCHDOG", "60"))
PLAYWRIGHT_RESTART_DISCONNECTED_BROWSER = True
FINPATROL_RENDER_SETTLE = float(os.environ.get("FINPATROL_RENDER_SETTLE", "5"))
FINPATROL_RENDER_PAGES_PER_CONTEXT = int(os.environ.get("FINPATROL_RENDER_PAGES_PER_CONTEXT", "50"))


def _chromium_path() -> str | None:
    """$FINPATROL_CHROMIUM, else Debian's chromium, else None (Playwright's own browser)."""
    explicit = os.environ.get("FINPATROL_CHROMIUM")
    if explicit:
        return explicit
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


# Flags for a headless root process on a machine with no outside network.
PLAYWRIGHT_LAUNCH_OPTIONS = {
    "headless": True,
    "args": [
        "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions",
    ],
} | ({"executable_path": _chromium_path()} if _chromium_path() else {})
