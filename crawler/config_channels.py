"""The ``channels:`` and ``sources:`` blocks of ``patrol.yaml``: where the public sees ads
and where it talks (三(六) 网上巡查、舆情信息).

A *channel* is a search or listing source where illegal finance is sold (search-result
ads, portals, classifieds, app listings, social posts): a URL template with
``{keyword}`` and ``{page}``, keywords, selectors for the result items and their parts,
a page limit, whether to follow results to their landing pages, and a render option.
A *source* is an opinion source (RSS/Atom feed, forum board, complaint board, news
list) read through the same mechanism: list pages → posts.

Selectors are CSS (parsel's dialect, ``::text`` and ``::attr(name)`` allowed) unless
they start with ``xpath:`` (or ``/``, ``./``, ``(``), and are checked when the config is
loaded, so a typo is named with its file, line and field instead of silently matching
nothing. Field selectors are evaluated relative to one result item.
"""

from __future__ import annotations

import logging
import re
import string
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

logger = logging.getLogger(__name__)

CHANNEL_ID = re.compile(r"^[a-z0-9_-]+$")
PLACEHOLDERS = frozenset({"keyword", "page"})
KEYWORD_TARGETS = "@targets"
"""In ``keywords``: the names and aliases of every enabled target."""
KEYWORD_LEXICON = "@lexicon"
"""In ``keywords``: :data:`LEXICON_KEYWORDS`, search terms of the classifier's lexicon."""
LEXICON_KEYWORDS = (
    "保本保息", "高收益理财", "年化收益", "P2P理财", "稳赚不赔", "原始股认购",
    "股权众筹", "首付贷", "个人POS机办理", "活期理财 随存随取",
)
POST_KINDS = ("ad", "platform_page", "social_post", "forum", "complaint", "news")


def is_xpath(selector: str) -> bool:
    return selector.startswith(("xpath:", "/", "./", "("))


def xpath_of(selector: str) -> str:
    return selector.removeprefix("xpath:").strip()


def _selector(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("empty selector")
    try:
        if is_xpath(value):
            from lxml import etree

            etree.XPath(xpath_of(value))
        else:
            from parsel.csstranslator import HTMLTranslator

            HTMLTranslator().css_to_xpath(value)
    except Exception as e:  # cssselect and lxml raise several error types
        kind = "XPath" if is_xpath(value) else "CSS selector"
        raise ValueError(f"invalid {kind} {value!r}: {e}") from None
    return value


Selector = Annotated[str, AfterValidator(_selector)]


def _template(value: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as e:
        raise ValueError(f"bad URL template {value!r}: {e}") from None
    unknown = names - PLACEHOLDERS
    if unknown:
        raise ValueError(f"unknown placeholder(s) {', '.join('{' + n + '}' for n in sorted(unknown))}; "
                         "allowed: {keyword}, {page}")
    sample = value.format(keyword="test", page=1)
    parts = urlsplit(sample)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL template with a host name, got {value!r}")
    return value


UrlTemplate = Annotated[str, AfterValidator(_template)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ListingSelectors(_Frozen):
    """Where the parts of one listed result are, relative to its ``item`` element."""

    item: Selector
    """One element per result (ad slot, listing row, post row)."""
    link: Selector
    """The result's link: an element with ``href`` or an ``::attr(href)`` selector."""
    title: Selector | None = None
    snippet: Selector | None = None
    advertiser: Selector | None = None
    """The advertiser's display name (推广商家, 来源)."""
    ad_label: Selector | None = None
    """Matches something inside the item only when the slot is an ad (广告, 推广)."""
    date: Selector | None = None
    author: Selector | None = None
    replies: Selector | None = None
    """Reply count; the first number in the matched text."""
    next_page: Selector | None = None
    """Link to the next list page, for lists whose URL has no ``{page}``."""


class _Listing(_Frozen):
    id: str
    name: str = ""
    url: UrlTemplate
    pages: int = Field(1, ge=1, le=100)
    """How many list pages to read per keyword."""
    first_page: int = Field(1, ge=0)
    """Value of ``{page}`` on the first list page."""
    page_step: int = Field(1, ge=1)
    """Increment of ``{page}`` between list pages (10 for ``pn=0,10,20``)."""
    max_results: int = Field(50, ge=1, le=1000)
    """Results taken per list page at most."""
    follow: bool = True
    """Follow each result to its page (landing page, post) and classify that page too."""
    render: Literal["never", "always"] = "never"
    obey_robots: bool | None = None
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not CHANNEL_ID.match(value):
            raise ValueError(f"expected lower-case letters, digits, '_' or '-', got {value!r}")
        return value

    def list_url(self, keyword: str, page_index: int) -> str:
        """The URL of list page ``page_index`` (0-based) for ``keyword``."""
        return self.url.format(keyword=quote(keyword, safe=""), page=self.first_page + page_index * self.page_step)

    @property
    def host(self) -> str:
        """``host`` or ``host:port`` of the list pages (pages there belong to the list itself)."""
        parts = urlsplit(self.list_url("x", 0))
        host = (parts.hostname or "").lower()
        return f"{host}:{parts.port}" if parts.port else host


def _check_paging(listing: _Listing, selectors: ListingSelectors | None) -> None:
    if listing.pages > 1 and "{page}" not in listing.url and not (selectors and selectors.next_page):
        raise ValueError("pages > 1 needs {page} in url or a selectors.next_page")


class Channel(_Listing):
    """A search or listing source where finance is advertised."""

    kind: Literal["search", "portal", "classifieds", "app", "social"] = "search"
    keywords: tuple[str, ...] = (KEYWORD_TARGETS, KEYWORD_LEXICON)
    """Search words; ``@targets`` and ``@lexicon`` expand (see module docs)."""
    selectors: ListingSelectors
    item_kind: Literal["ad", "platform_page", "social_post", "forum", "complaint", "news"] | None = None
    """Classifier kind of a listed result (default: social_post for social, else ad)."""

    @model_validator(mode="after")
    def _consistent(self) -> "Channel":
        _check_paging(self, self.selectors)
        if "{keyword}" not in self.url and "keywords" in self.model_fields_set and self.keywords:
            raise ValueError("keywords given but the url has no {keyword}")
        return self

    @property
    def result_kind(self) -> str:
        return self.item_kind or ("social_post" if self.kind == "social" else "ad")


class Source(_Listing):
    """An opinion source: feed, forum board, complaint board or news list."""

    kind: Literal["feed", "forum", "complaint", "news", "social"]
    selectors: ListingSelectors | None = None
    """Required except for ``kind: feed`` (RSS 2.0 or Atom, read as is)."""
    post_kind: Literal["social_post", "forum", "complaint", "news"] | None = None
    """Classifier kind of a post (default from ``kind``; a feed's posts are news)."""

    @model_validator(mode="after")
    def _consistent(self) -> "Source":
        if self.kind != "feed" and self.selectors is None:
            raise ValueError(f"selectors are required for a {self.kind} source")
        if "{keyword}" in self.url:
            raise ValueError("a source url takes {page} only, not {keyword}")
        _check_paging(self, self.selectors)
        return self

    @property
    def result_kind(self) -> str:
        default = {"feed": "news", "social": "social_post"}.get(self.kind, self.kind)
        return self.post_kind or default


Channels = tuple[Channel, ...]
Sources = tuple[Source, ...]


def channel_keywords(channel: Channel, targets) -> list[str]:
    """The channel's keywords with ``@targets``/``@lexicon`` expanded, de-duplicated;
    ``[""]`` when its URL takes no keyword."""
    if "{keyword}" not in channel.url:
        return [""]
    out: list[str] = []
    for word in channel.keywords:
        if word == KEYWORD_TARGETS:
            expanded = [n for t in targets if t.enabled for n in (t.name, *t.aliases)]
        elif word == KEYWORD_LEXICON:
            expanded = list(LEXICON_KEYWORDS)
        else:
            expanded = [word]
        out.extend(w for w in expanded if w and w not in out)
    return out


def pseudo_target(kind: str, listing_id: str) -> str:
    """Target id under which pages of a channel or source are stored: ``channel:<id>``."""
    return f"{kind}:{listing_id}"
