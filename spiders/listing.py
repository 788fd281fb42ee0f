"""Pure extraction from list pages (search results, classifieds, boards) and feeds.

Response in, list of :class:`Listed` out; the selectors come from a channel's or
source's ``selectors:`` block (CSS, or XPath with an ``xpath:`` prefix), and are
evaluated relative to each result item. Feeds (RSS 2.0, Atom) need no selectors.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from parsel import Selector, SelectorList
from scrapy.http import Response

from crawler.config_channels import ListingSelectors, is_xpath, xpath_of

logger = logging.getLogger(__name__)

CHINA = timezone(timedelta(hours=8))
_DATE = re.compile(
    r"(?P<y>(?:19|20)\d\d)\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})(?:\s*日)?"
    r"(?:(?:\s+|T)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
)
_NUMBER = re.compile(r"\d[\d,]*")


@dataclass
class Listed:
    """One result as a list page or feed shows it."""

    rank: int
    link: str
    title: str = ""
    snippet: str = ""
    advertiser: str = ""
    is_ad: bool = False
    posted_at: str | None = None
    author: str = ""
    replies: int | None = None


def select(node: Selector | Response, selector: str) -> SelectorList:
    return node.xpath(xpath_of(selector)) if is_xpath(selector) else node.css(selector)


def text_of(node: Selector, selector: str | None) -> str:
    """Visible text of what the selector matches (attribute and text results as they are)."""
    if not selector:
        return ""
    parts = []
    for match in select(node, selector):
        root = match.root
        parts.append(root if isinstance(root, str) else match.xpath("string()").get(""))
    return " ".join(" ".join(parts).split())


def link_of(node: Selector, selector: str, base: str) -> str:
    for match in select(node, selector):
        root = match.root
        href = root if isinstance(root, str) else (match.attrib.get("href") or match.css("a::attr(href)").get(""))
        href = (href or "").strip()
        if href and not href.startswith(("javascript:", "#", "mailto:")):
            return urljoin(base, href)
    return ""


def normalise_date(text: str) -> str | None:
    """ISO 8601 from board dates (2016-10-20 21:15, 2016年10月20日) in China time, or RFC 822."""
    text = (text or "").strip()
    if not text:
        return None
    try:  # a full ISO 8601 time with its own offset keeps it
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            return parsed.isoformat()
    except ValueError:
        pass
    match = _DATE.search(text)
    if match:
        try:
            day = datetime(int(match["y"]), int(match["m"]), int(match["d"]))
        except ValueError:
            return None
        if match["H"] is None:
            return day.date().isoformat()
        when = day.replace(hour=int(match["H"]), minute=int(match["M"]), second=int(match["S"] or 0), tzinfo=CHINA)
        return when.isoformat()
    try:
        return parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError, IndexError):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
        except ValueError:
            return None


def first_number(text: str) -> int | None:
    match = _NUMBER.search(text or "")
    return int(match.group().replace(",", "")) if match else None


def extract_results(response: Response, selectors: ListingSelectors, limit: int) -> list[Listed]:
    """Results of one list page in page order; items without a usable link are skipped."""
    base = response.css("base::attr(href)").get() or response.url
    out: list[Listed] = []
    for position, node in enumerate(select(response, selectors.item), start=1):
        link = link_of(node, selectors.link, base)
        if not link:
            continue
        out.append(Listed(
            rank=position,
            link=link,
            title=text_of(node, selectors.title) or text_of(node, selectors.link),
            snippet=text_of(node, selectors.snippet),
            advertiser=text_of(node, selectors.advertiser),
            is_ad=bool(selectors.ad_label and select(node, selectors.ad_label)),
            posted_at=normalise_date(text_of(node, selectors.date)),
            author=text_of(node, selectors.author),
            replies=first_number(text_of(node, selectors.replies)) if selectors.replies else None,
        ))
        if len(out) >= limit:
            break
    return out


def next_page(response: Response, selectors: ListingSelectors | None) -> str | None:
    if selectors is None or not selectors.next_page:
        return None
    link = link_of(response, selectors.next_page, response.url)
    return link or None


def _child(node: Selector, *names: str) -> str:
    for name in names:
        value = node.xpath(f"string(./*[local-name()='{name}'][1])").get("").strip()
        if value:
            return value
    return ""


def parse_feed(response: Response, limit: int) -> list[Listed]:
    """Entries of an RSS 2.0 or Atom feed (namespaces ignored)."""
    out: list[Listed] = []
    entries = response.xpath("//*[local-name()='item' or local-name()='entry']")
    for position, entry in enumerate(entries, start=1):
        link = _child(entry, "link")
        if not link:
            link = entry.xpath("./*[local-name()='link'][not(@rel) or @rel='alternate']/@href").get("")
        if not link:
            continue
        summary = Selector(text=f"<div>{_child(entry, 'description', 'summary', 'content')}</div>")
        out.append(Listed(
            rank=position,
            link=urljoin(response.url, link.strip()),
            title=" ".join(_child(entry, "title").split()),
            snippet=" ".join(summary.xpath("string()").get("").split()),
            posted_at=normalise_date(_child(entry, "pubDate", "published", "updated", "date")),
            author=" ".join(_child(entry, "author", "creator").split()),
            replies=first_number(_child(entry, "comments")) if _child(entry, "comments").isdigit() else None,
        ))
        if len(out) >= limit:
            break
    return out
