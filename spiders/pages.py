"""Pure helpers from a Scrapy response to a PageItem, tested on saved pages."""

from __future__ import annotations

from scrapy.http import HtmlResponse, Response

from crawler.items import PageItem, response_item

HTML_TYPES = (b"text/html", b"application/xhtml+xml")


def is_html(response: Response) -> bool:
    """HTML by header, or by Scrapy's sniffing when the server sent no usable type."""
    content_type = (response.headers.get(b"Content-Type") or b"").split(b";")[0].strip().lower()
    return content_type in HTML_TYPES or (not content_type and isinstance(response, HtmlResponse))


def page_item(response: Response, target_id: str, depth: int) -> PageItem:
    """Everything the pipelines need from one HTML response."""
    redirects = response.meta.get("redirect_urls", ())
    requested = redirects[0] if redirects else response.url
    return response_item(response, target_id, response.meta.get("finpatrol_url", requested), depth)
