"""Which links a patrol follows: scope, dedup and crawler-trap limits, as pure code.

Fraudulent platforms are hostile sites: calendars, endless query variations and
self-repeating paths must stop at a limit and be counted, never eat the crawl.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from scrapy.linkextractors import IGNORED_EXTENSIONS
from w3lib.url import canonicalize_url

from crawler.config import in_scope  # noqa: F401  (re-exported for the spiders)

MAX_PATH_SEGMENTS = 15
MAX_SEGMENT_REPEATS = 2
MAX_QUERY_VARIANTS = 50
MAX_DATE_SHAPED = 30
_IGNORED = tuple("." + ext for ext in IGNORED_EXTENSIONS)
_DATE = re.compile(r"(?<!\d)(?:19|20)\d\d[-/_.]?(?:1[0-2]|0?[1-9])(?:[-/_.]?(?:3[01]|[12]\d|0?[1-9]))?(?!\d)")
_DATE_KEYS = re.compile(r"(?:^|&)(?:year|month|day|date|cal|calendar|ym|time)=", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")


_HREF = re.compile(r"""<(?:a|area)\b[^>]*?\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_BASE = re.compile(r"""<base\b[^>]*?\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAB_NEWLINE = re.compile("[\t\n\r]")  # removed from URLs by browsers (URL standard)


def extract_hrefs(markup: str) -> tuple[str | None, list[str]]:
    """(``<base href>``, the hrefs of ``<a>`` and ``<area>``), entity-decoded, in page order.

    A scan of the markup instead of a DOM: link discovery runs on the reactor thread
    for every page, and building a parse tree there cost more than everything else
    the spider does per page.
    """
    if "<!--" in markup:
        markup = _COMMENT.sub("", markup)
    base = _BASE.search(markup)
    # Each pattern has one group per quoting style, and only one of them takes part: lastindex.
    hrefs = [_clean(m[m.lastindex]) for m in _HREF.finditer(markup)]
    return (_clean(base[base.lastindex]) if base else None), hrefs


def _clean(value: str) -> str:
    return _TAB_NEWLINE.sub("", html.unescape(value).strip())


def resolve(base: str, hrefs: list[str]) -> list[str]:
    """The absolute URLs of ``hrefs`` met on a page whose base URL is ``base``.

    A plain root-relative path (most links of most sites: no dot segment, query,
    fragment or parameters, which ``urljoin`` may rewrite) is joined by prefixing the
    base's origin, exactly what ``urljoin`` returns for it at a fraction of the cost;
    every other href goes through ``urljoin``.
    """
    parts = urlsplit(base)
    origin = f"{parts.scheme}://{parts.netloc}"
    return [origin + href if _plain_path(href) else urljoin(base, href) for href in hrefs]


def _plain_path(href: str) -> bool:
    return (href[:1] == "/" and href[1:2] != "/" and "/." not in href
            and "?" not in href and "#" not in href and ";" not in href)


def pack_links(base: str, hrefs: list[str]) -> str:
    """A page's absolute base URL and its hrefs as one text for the state DB, a line each."""
    return "\n".join([base, *hrefs])


def unpack_links(packed: str) -> tuple[str, list[str]]:
    """(base URL, hrefs) from ``pack_links``."""
    base, *hrefs = packed.split("\n")
    return base, hrefs


def is_followable(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and not parts.path.lower().endswith(_IGNORED)


@dataclass
class LinkBudget:
    """One target's dedup set and trap counters for a single patrol."""

    seen: set[str] = field(default_factory=set)
    decided: set[str] = field(default_factory=set)
    """URLs exactly as met that need no second look: admitted, found already seen, or
    (marked by the spider) not followable or out of scope. Met again (most links are),
    they are dropped without parsing or canonicalising them again."""
    query_variants: Counter = field(default_factory=Counter)
    date_shapes: Counter = field(default_factory=Counter)

    def admit(self, url: str) -> tuple[str | None, str | None]:
        """(canonical URL, None) when the link is new and sane; (None, trap kind) or (None, None).

        For a URL not in ``decided`` (the spider looks there first)."""
        canonical = canonicalize_url(url, keep_fragments=False)
        if canonical in self.seen:
            self.decided.add(url)
            return None, None
        trap = self._trap(canonical)
        if trap:
            return None, trap
        self.seen.add(canonical)
        self.decided.add(url)
        return canonical, None

    def _trap(self, url: str) -> str | None:
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) > MAX_PATH_SEGMENTS:
            return "deep_path"
        if segments and Counter(segments).most_common(1)[0][1] > MAX_SEGMENT_REPEATS:
            return "repeating_path"
        if parts.query:
            self.query_variants[parts.path] += 1
            if self.query_variants[parts.path] > MAX_QUERY_VARIANTS:
                return "query_variants"
        if _DATE.search(parts.path) or _DATE_KEYS.search(parts.query):
            # Only the date is generalised: /news/2026/11/123.html and /news/2026/11/124.html
            # are two articles, /cal/2026-01 and /cal/2026-02 are one calendar.
            query = _DIGITS.sub("#", parts.query) if _DATE_KEYS.search(parts.query) else parts.query
            shape = _DATE.sub("DATE", parts.path) + "?" + _DATE.sub("DATE", query)
            self.date_shapes[shape] += 1
            if self.date_shapes[shape] > MAX_DATE_SHAPED:
                return "calendar"
        return None
