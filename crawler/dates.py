"""Publish date of a page: htmldate's reading of the markup, then a date stated in the text.

htmldate's fast mode reads the URL, meta tags, JSON-LD, ``<abbr>``/``<time>`` and
date-classed elements well, but its text fallbacks know only ISO dates and English,
German and Turkish wording: "发布时间：2024年3月5日" and "2024/03/05" are not found. Those
fallbacks also serialize the page and scan it four times, most of htmldate's cost on a
page without a date (the common case). So this keeps htmldate's markup steps, in its
order, and replaces its fallbacks with one pass over the page's text that knows the
Chinese forms. It calls htmldate's module-level functions, not only ``find_date``, so
pyproject.toml holds htmldate to 1.11.x; an upgrade that renames them fails at import,
in the tests.
"""

from __future__ import annotations

import re
from copy import deepcopy
from datetime import datetime

import lxml.html
from htmldate.core import (
    date_candidates,
    examine_abbr_elements,
    examine_elements,
    examine_header,
    examine_time_elements,
)
from htmldate.extractors import discard_unwanted, extract_url_date, idiosyncrasies_search, json_search
from htmldate.settings import CLEANING_LIST
from htmldate.utils import Extractor, clean_html
from htmldate.validators import get_max_date, get_min_date, validate_and_convert
from lxml import etree

# A year (htmldate's range), then month and day with one repeated separator or 年 月 日.
# No look-behind for a digit: it would stop re from skipping ahead to "19"/"20" (6x slower).
_DATE = re.compile(
    r"(199\d|20[0-3]\d)(?:([-/.])([01]?\d)\2([0-3]?\d)(?![0-9])|\s?年\s?([01]?\d)\s?月\s?([0-3]?\d)\s?日)"
)
# What stands just before a date that says it is the publish date; bare 时间/日期 only
# after a space, a line break or a separator, so 到期日期 and 成立日期 do not count.
_PUBLISHED = re.compile(
    r"(?:发布|发表|发文|成文|公布|刊发|刊登|印发|[\s|｜/】\]](?:时间|日期)|published|posted|date)"
    r"[^0-9\n]{0,6}$",
    re.IGNORECASE,
)
_UPDATED = re.compile(r"(?:更新|修改|修订|编辑|update|modified|edited)[^0-9\n]{0,8}$", re.IGNORECASE)
_LABEL_WINDOW = 14
# The text a reader sees (htmldate's cleaning keeps scripts and styles), one node at a
# time, so that table cells joined by spaces do not run together ("426 2016-10-20");
# twice as fast as itertext().
_TEXT_NODES = etree.XPath("//text()[not(parent::script or parent::style)]", smart_strings=False)


def publish_date(tree: lxml.html.HtmlElement, url: str | None) -> str | None:
    """The page's publish date as YYYY-MM-DD, or None; ``tree`` is left as it was."""
    options = Extractor(False, get_max_date(None), get_min_date(None), True, "%Y-%m-%d")
    found = (
        extract_url_date(url, options)
        or examine_header(tree, options)
        or json_search(tree, options)
        or examine_abbr_elements(tree, options)
    )
    if found:
        return found
    search_tree = discard_unwanted(clean_html(deepcopy(tree), CLEANING_LIST))
    found = (
        examine_elements(date_candidates(search_tree, False), options)
        or examine_elements(search_tree.xpath(".//title|.//h1"), options)
        or examine_time_elements(search_tree, options)
    )
    if found:
        return found
    text = " ".join(_TEXT_NODES(search_tree))
    stated, first = text_dates(text, options)
    return stated or idiosyncrasies_search(text, options) or first


def text_dates(text: str, options: Extractor) -> tuple[str | None, str | None]:
    """(the first date the text labels as published, the first plausible date): one pass.

    Labels are 发布时间：…, 发表于 …, Posted on … (``_PUBLISHED``); a date labelled as an
    update (更新时间：…) is neither.
    """
    first = None
    for match in _DATE.finditer(text):
        start = match.start()
        if start and text[start - 1].isdigit():  # the tail of a longer number: 12024-03-05
            continue
        before = text[max(0, start - _LABEL_WINDOW):start]
        if _UPDATED.search(before):
            continue
        found = _valid(match, options)
        if found and _PUBLISHED.search(before):
            return found, first
        first = first or found
    return None, first


def _valid(match: re.Match[str], options: Extractor) -> str | None:
    year, _, month, day, cn_month, cn_day = match.groups()
    try:
        candidate = datetime(int(year), int(month or cn_month), int(day or cn_day))
    except ValueError:  # 2024-02-30
        return None
    return validate_and_convert(candidate, options.format, earliest=options.min, latest=options.max)
