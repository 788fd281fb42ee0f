"""Pure helpers from a Scrapy response to a PageItem, tested on saved pages."""

from __future__ import annotations

from datetime import UTC, datetime

from scrapy.http import HtmlResponse, Response

from crawler.items import PageItem

HTML_TYPES = (b"text/html", b"application/xhtml+xml")


def is_html(response: Response) -> bool:
    """HTML by header, or by Scrapy's sniffing when the server sent no usable type."""
    content_type = (response.headers.get(b"Content-Type") or b"").split(b";")[0].strip().lower()
    return content_type in HTML_TYPES or (not content_type and isinstance(response, HtmlResponse))


def flat_headers(response: Response) -> dict[str, str]:
    """Header names lower-cased; repeated values joined with ', '; bytes decoded as Latin-1."""
    return {
        key.decode("latin-1").lower(): ", ".join(v.decode("latin-1") for v in values)
        for key, values in response.headers.items()
    }


def page_item(response: Response, target_id: str, depth: int) -> PageItem:
    """Everything the pipelines need from one HTML response."""
    redirects = list(response.meta.get("redirect_urls", ()))
    requested = redirects[0] if redirects else response.url
    return PageItem(
        target_id=target_id,
        url=response.meta.get("finpatrol_url", requested),
        final_url=response.url,
        status=response.status,
        headers=flat_headers(response),
        body=response.body,
        encoding=getattr(response, "encoding", None) or "utf-8",
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
        depth=depth,
        redirects=redirects,
        rendered="playwright" in response.flags or bool(response.meta.get("playwright")),
        screenshot=response.meta.get("finpatrol_screenshot"),
        request_headers={
            k.decode("latin-1").lower(): b", ".join(v).decode("latin-1")
            for k, v in response.request.headers.items()
        } if response.request is not None else {},
        protocol=response.protocol or "HTTP/1.1",
    )
