"""Items passed from spiders to pipelines; every field states its format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class PageItem:
    """One fetched HTML page of a target, enriched by the pipelines in order."""

    target_id: str
    """Id of the configured target the page was fetched for."""
    url: str
    """URL as requested (before redirects), absolute."""
    final_url: str
    """URL of the response after redirects, absolute."""
    status: int
    """HTTP status code of the final response."""
    headers: dict[str, str] = field(repr=False)
    """Response headers, names lower-cased, repeated values joined with ', '."""
    body: bytes = field(repr=False)
    """Response body exactly as received after content decoding (gzip/br), at most DOWNLOAD_MAXSIZE."""
    encoding: str
    """Character encoding Scrapy detected for the body (HTTP header, BOM, meta or sniffing)."""
    fetched_at: str
    """Fetch time, ISO 8601 in UTC with offset (``2026-11-27T02:46:23+00:00``)."""
    depth: int = 0
    """Link depth from the target's start URLs (0 for a start URL or a sitemap entry)."""
    redirects: list[str] = field(default_factory=list)
    """URLs of the redirect chain before ``final_url``, in order."""
    redirect_reasons: list[int | str] = field(default_factory=list)
    """Why each URL of ``redirects`` led on: its HTTP status (301, 302 ...) or ``"meta refresh"``."""
    rendered: bool = False
    """True when the body is the DOM after a browser rendered the page."""
    screenshot: bytes | None = field(default=None, repr=False)
    """Full-page PNG taken by the browser, when the page was rendered with a screenshot."""
    request_headers: dict[str, str] = field(default_factory=dict, repr=False)
    """Headers of the final request as sent, names lower-cased (for the WARC request record)."""
    protocol: str = "HTTP/1.1"
    """HTTP version of the response (for the WARC response record)."""
    sha256: str = ""
    """Hex SHA-256 of ``body``, set by the analyse pipeline."""
    unchanged: bool = False
    """True when the state DB already holds this URL as fetched: the server answered
    304 Not Modified (``status`` 304, empty body), or the analyse pipeline found the
    same SHA-256. Extraction and classification are skipped."""
    links: str | None = field(default=None, repr=False)
    """The page's links, packed by the spider (``spiders.links.pack_links``) and stored
    so a 304 Not Modified can be followed without the body; None when not recorded."""
    kind: str | None = "platform_page"
    """Classifier document kind: platform_page, ad, social_post, forum, complaint, news (None: inferred)."""

    # Set by the channel and opinion spiders (empty for a target's own site).
    origin: str = ""
    """``channel`` or ``source`` when found through one; ``target_id`` is then ``<origin>:<id>``."""
    origin_id: str = ""
    """Id of the channel or source in the config."""
    list_url: str = ""
    """Absolute URL of the list page (search results, board page, feed) the result was on."""
    keyword: str = ""
    """Search keyword the list page was fetched for ("" when the channel takes none)."""
    rank: int | None = None
    """1-based position of the result on its list page, ads and organic results counted together."""
    is_ad: bool | None = None
    """True when the slot carried the channel's ad label; None for sources."""
    advertiser: str = ""
    """Advertiser display name shown in the slot, whitespace collapsed."""
    landing_chain: list[str] = field(default_factory=list)
    """Result link, every redirect hop and the landing URL, in order (empty when not followed)."""
    slot_only: bool = False
    """True for a listed result itself: ``body`` is the whole list page (the evidence),
    ``slot_title``/``slot_text`` are what is classified."""
    slot_title: str = ""
    """Title of the result as listed."""
    slot_text: str = field(default="", repr=False)
    """Snippet (ad copy, post excerpt) of the result as listed."""
    author: str = ""
    """Author of a post as listed or on the post page."""
    posted_at: str | None = None
    """Publish time as listed (feed pubDate, board date), ISO 8601; date only when no time is given."""
    replies: int | None = None
    """Reply count as listed."""

    # Filled by the analyse pipeline (extraction).
    title: str = ""
    """Page title (trafilatura's, else <title>; a listed result: its listed title), whitespace collapsed."""
    text: str = field(default="", repr=False)
    """Main text (trafilatura, comments excluded; the visible text when it finds none;
    a listed result: its listed snippet)."""
    published: str | None = None
    """Publish date found on the page (a listed result: its listed ``posted_at``), ISO 8601
    date (``2026-11-27``), or None."""
    language: str | None = None
    """Language tag detected for the text (``zh``, ``en`` ...), or None."""
    text_fingerprint: str = ""
    """Hex SHA-256 of the text's words (a listed result: of its listed title and snippet):
    changes only when the readable text changes."""
    title_tokens: str | None = field(default=None, repr=False)
    """jieba tokens of ``title`` joined by single spaces (search indexes), or None if not computed."""
    text_tokens: str | None = field(default=None, repr=False)
    """jieba tokens of ``text`` joined by single spaces (search indexes), or None if not computed."""

    # Filled by the analyse pipeline (classification).
    verdict: dict[str, Any] | None = None
    """``classifiers.Verdict.to_dict()`` of title + text, or None before classification."""
    verdict_by: str | None = None
    """``verdict_stamp`` of the classifier and kind that gave ``verdict`` (None: not classified)."""

    # Filled by the store pipeline.
    page_id: int | None = None
    """Row id of the page in the state DB."""
    hit_id: int | None = None
    """Row id of the hit for this page's verdict, or None when nothing was flagged."""
    new_hit: bool = False
    """True when this fetch opened a new hit (not seen in earlier patrols)."""
    removed_hit_id: int | None = None
    """Row id of the hit the page had before this fetch and has no longer (its verdict is not on the
    page now: removed by this fetch, or earlier when the page went), or None."""


def response_item(response, target_id: str, url: str, depth: int = 0) -> PageItem:
    """A fetched response (any Scrapy ``Response``) as a PageItem: ``url`` as requested,
    headers flattened (:func:`flat_headers`), the request's too. Used by the spiders for
    pages and by the evidence pipeline for a 404/410 answer."""
    request = response.request
    return PageItem(
        target_id=target_id,
        url=url,
        final_url=response.url,
        status=response.status,
        headers=flat_headers(response.headers),
        body=response.body,
        encoding=getattr(response, "encoding", None) or "utf-8",
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
        depth=depth,
        redirects=list(response.meta.get("redirect_urls", ())),
        redirect_reasons=list(response.meta.get("redirect_reasons", ())),
        rendered="playwright" in response.flags or bool(response.meta.get("playwright")),
        screenshot=response.meta.get("finpatrol_screenshot"),
        request_headers=flat_headers(request.headers) if request is not None else {},
        protocol=response.protocol or "HTTP/1.1",
    )


def flat_headers(headers) -> dict[str, str]:
    """Header names lower-cased; repeated values joined with ', '; bytes decoded as Latin-1."""
    return {key.decode("latin-1").lower(): ", ".join(v.decode("latin-1") for v in values)
            for key, values in headers.items()}


LISTED_FRAGMENT = "listed"


def listed_url(link: str) -> str:
    """The URL a listed result is stored under: its link with the fragment ``#listed``.

    The listed snippet and the page it links to are then two records of one post
    (:func:`post_url`), each with its own evidence.
    """
    return f"{post_url(link)}#{LISTED_FRAGMENT}"


def post_url(url: str) -> str:
    """The page a stored URL stands for: the URL without its fragment.

    The same post can be stored up to three times (a target's page, an opinion
    source's page, a listed snippet); counts of posts count this once.
    """
    return url.split("#", 1)[0]


def text_key(title: str | None, text_fingerprint: str | None) -> bytes:
    """16 bytes standing for a page's title and text fingerprint: what its search terms are cut from.

    Kept per stored page for the whole patrol, so it is a short digest rather than the
    title and the 64-character fingerprint themselves.
    """
    return hashlib.blake2b(repr((title, text_fingerprint)).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def verdict_stamp(classifier_fingerprint: str, kind: str | None) -> str:
    """16 hex characters standing for what a verdict came from besides the page's own words:
    the classifier (``classifiers.ruleset.fingerprint``: its code, rules, yield ceiling)
    and the document kind it was told. Stored with each page; a page whose stamp differs
    from the patrol's is classified again even when its body is the same."""
    return hashlib.blake2b(f"{classifier_fingerprint}\0{kind}".encode(), digest_size=8).hexdigest()
