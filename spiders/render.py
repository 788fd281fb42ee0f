"""Rendering with Playwright (scrapy-playwright): when to render and how a page is rendered.

A page is rendered when its target says ``render: always`` (or wants a screenshot
of every page), or, with ``render: auto``, when the static fetch looks like a
JavaScript shell: little visible text with an empty app root, heavy scripts or a
"please enable JavaScript" notice. The rendered page is given a few seconds to
settle (network idle), cut off after that, screenshotted full-page and closed in
the spider callback, so no page outlives its callback. Browser contexts are
recycled every FINPATROL_RENDER_PAGES_PER_CONTEXT pages to bound Chromium's
memory. Launch options (the Chromium path) live in crawler/settings.py.
"""

from __future__ import annotations

import asyncio
import logging

from playwright.async_api import Error as PlaywrightError
from scrapy.http import Response

logger = logging.getLogger(__name__)

MIN_VISIBLE_CHARS = 200
APP_ROOTS = ("app", "root", "__next", "__nuxt", "main-app")
NOSCRIPT_HINTS = ("enable javascript", "启用javascript", "开启javascript", "启用 javascript", "支持javascript")
ABORTED_TYPES = frozenset({"image", "media", "font"})
CLOSE_SECONDS = 10


async def close_quietly(closable) -> None:
    """Close a page or context; one of a browser that died may never answer, so give up after a while."""
    try:
        await asyncio.wait_for(closable.close(), CLOSE_SECONDS)
    except (asyncio.TimeoutError, PlaywrightError) as error:
        logger.debug("closing %r failed: %r", closable, error)


def is_js_shell(response: Response) -> bool:
    """True when the static HTML carries almost no text a reader would see."""
    visible = "".join(
        response.xpath(
            "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)"
            " and not(ancestor::template)]"
        ).getall()
    )
    if len("".join(visible.split())) >= MIN_VISIBLE_CHARS:
        return False
    empty_root = any(
        not "".join(response.xpath(f"//*[@id='{root}']//text()").getall()).strip()
        and response.xpath(f"//*[@id='{root}']")
        for root in APP_ROOTS
    )
    scripts = sum(len(s) for s in response.xpath("//script/text()").getall())
    noscript = " ".join(response.xpath("//noscript//text()").getall()).lower().replace(" ", "")
    asks_for_js = any(h.replace(" ", "") in noscript for h in NOSCRIPT_HINTS)
    return bool(empty_root or asks_for_js or scripts > len(visible) or response.xpath("//script[@src]"))


async def abort_request(request) -> bool:
    """PLAYWRIGHT_ABORT_REQUEST: skip images, media and fonts unless the page keeps images."""
    if request.resource_type not in ABORTED_TYPES:
        return False
    try:
        return not getattr(request.frame.page, "finpatrol_keep_images", False)
    except Exception:  # a request of a closed or detached frame
        return True


async def keep_images(page, request) -> None:
    """Page init callback for pages whose screenshots must show images."""
    page.finpatrol_keep_images = True


async def settle(page, seconds: float) -> bool:
    """Wait for network idle up to ``seconds``; False when the page was cut off."""
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    try:
        await page.wait_for_load_state("networkidle", timeout=seconds * 1000)
        return True
    except PlaywrightTimeoutError:
        return False
