"""Publish date of a page: htmldate's reading of the markup, then the date its text states.

htmldate's fast mode reads the URL, meta tags, JSON-LD, ``<abbr>``/``<time>``, date-classed
elements and ``og:image`` well, but its text fallbacks know only ISO dates and English,
German and Turkish wording: "发布时间：2024年3月5日" and "2024/03/05" are not found. Those
fallbacks also serialize the page and scan it four times, most of htmldate's cost on a page
without a date (the common case). So this keeps htmldate's markup steps, in its order, and
replaces its fallbacks with one scan of the page's text that, like them, prefers a date with
a time to the second (the rule is ``text_date``'s); htmldate's own wording patterns
(``idiosyncrasies_search``) run only when that scan chose no date. Dropped with the
fallbacks: timestamps that appear only in attributes or scripts (``data-time="…"``).

It calls htmldate's module-level functions, not only ``find_date``, so pyproject.toml holds
htmldate to 1.11.x; an upgrade that renames them fails at import, in the tests.
"""

from __future__ import annotations

import re
from copy import deepcopy
from datetime import datetime, timedelta

import lxml.html
from htmldate.core import (
    date_candidates,
    examine_abbr_elements,
    examine_elements,
    examine_header,
    examine_time_elements,
)
from htmldate.extractors import (
    discard_unwanted,
    extract_url_date,
    idiosyncrasies_search,
    img_search,
    json_search,
)
from htmldate.settings import CLEANING_LIST
from htmldate.utils import Extractor, clean_html
from htmldate.validators import get_max_date, get_min_date, validate_and_convert
from lxml import etree

# htmldate's list minus <label>: its text names the value beside it (<label>成立时间：</label>).
_CLEANED = [tag for tag in CLEANING_LIST if tag != "label"]
# Text nodes, joined by spaces below so that table cells do not run together as they do in
# text_content() ("4262016-10-20"); in less than half the time of itertext().
_TEXT_NODES = etree.XPath("//text()", smart_strings=False)
_UNREAD = ("script", "style", "option", "textarea")  # text a reader does not see as the page's
# A year in htmldate's range, then month and day with one repeated separator, or 年 月 日/号.
# Not followed by a digit or by a fourth part (2001.10.1.5); the start of a range
# (2024.03.01-2024.03.31) is a date. No look-behind for a digit in the pattern: it stops re
# from skipping ahead to "19" or "20" (several times slower); ``text_date`` checks instead.
_DATE = re.compile(
    r"(199\d|20[0-3]\d)"
    r"(?:([-/.])([01]?\d)\2([0-3]?\d)(?![0-9]|\2\d{1,2}(?!\d))|\s?年\s?([01]?\d)\s?月\s?([0-3]?\d)\s?[日号])"
)
_RANGE_SEPARATOR = re.compile(r"\s*[-~～—至到]\s*")  # between the dates of 2024.03.01-2024.03.31
# A time to the second after the date, as htmldate's own fallback wants: a dateline
# (2024-03-05 10:12:00), not an exam's or a comment's 9:00 further down.
_TIME_AFTER = re.compile(r"(?:T|\s+)\d{2}:\d{2}:\d{2}")
# Words just before a date that make it something other than the publish date: an update,
# a company's founding, filing or launch, a product's or an event's terms, a rule taking
# effect, a statistic's cut-off, a user's login, the visitor's clock. Matched on the text
# before the date with whitespace removed. Most words count only with what closes a label
# (时间, 日期, 日, 于, 为, a colon, brackets), so a headline that ends in the word
# (协会正式成立 2024-03-05) does not; a few are labels by themselves (截至2024年…).
# _WINDOW holds the longest label: "modified on:" without its space (11 characters).
_NOT_PUBLISHED = re.compile(
    r"(?:(?:更新|修改|修订|编辑|成立|注册|备案|上线|运营|到期|起息|活动|实施|施行|生效|统计|登录|当前|现在)"
    r"(?:(?:时间|日期|日)[于为是]?|于|为)"
    r"|截至|截止|今天是?|最后登录|update(?:d|don|dat)?|modified(?:on|at)?|edited(?:on|at)?)"
    r"[:：()（）【】\[\]]*$",
    re.IGNORECASE,
)
_WINDOW = 12
_CLOCK_AFTER = re.compile(r"\s*(?:[（(]\s*)?(?:星期|礼拜|周[一二三四五六日天]|农历)")  # 2024年6月1日（星期六）


def publish_date(tree: lxml.html.HtmlElement, url: str | None) -> str | None:
    """The page's publish date as YYYY-MM-DD, or None; ``tree`` is left as it was."""
    # One day of slack, for every step: from 16:00 UTC on, today in China is tomorrow on a
    # UTC clock.
    latest = get_max_date(None) + timedelta(days=1)
    options = Extractor(False, latest, get_min_date(None), True, "%Y-%m-%d")
    if url is None:
        canonical = tree.find('.//link[@rel="canonical"]')
        url = canonical.get("href") if canonical is not None else None
    found = (
        extract_url_date(url, options)
        or examine_header(tree, options)
        or json_search(tree, options)
        or examine_abbr_elements(tree, options)
    )
    if found:
        return found
    search_tree = deepcopy(tree)
    try:
        search_tree = discard_unwanted(clean_html(search_tree, _CLEANED))
    except ValueError:  # lxml refuses some control characters; htmldate goes on uncleaned too
        pass
    found = (
        examine_elements(date_candidates(search_tree, False), options)
        or examine_elements(search_tree.xpath(".//title|.//h1"), options)
        or examine_time_elements(search_tree, options)
        or img_search(search_tree, options)
    )
    if found:
        return found
    etree.strip_elements(search_tree, *_UNREAD, with_tail=False)
    text = " ".join(filter(None, map(str.strip, _TEXT_NODES(search_tree))))
    match = text_date(text)
    if match is not None:
        return _valid(match, options)
    return idiosyncrasies_search(text, options)


def text_date(text: str) -> re.Match[str] | None:
    """The date in the text that is the publish date, if any: the first with a time to the
    second (a dateline: 2024-03-05 10:12:00), else the first.

    Passed over: dates labelled as something else (``_NOT_PUBLISHED``: 更新时间：…, 成立于…,
    今天是…), the end of a range, and dates followed by a weekday or the lunar date (a clock).
    The date chosen decides: when it is impossible or out of range (2024-02-30, a date after
    tomorrow), the page has no date, rather than one from further down the page (a comment,
    a related article), and htmldate's wording patterns are not tried.
    """
    first = None
    previous_end = -1
    for match in _DATE.finditer(text):
        start, end = match.span()
        range_end = previous_end >= 0 and _RANGE_SEPARATOR.fullmatch(text, previous_end, start) is not None
        previous_end = end
        if start and text[start - 1].isdigit():  # the tail of a longer number: 12024-03-05
            continue
        before = "".join(text[max(0, start - 2 * _WINDOW):start].split())[-_WINDOW:]
        if range_end or _NOT_PUBLISHED.search(before) or _CLOCK_AFTER.match(text, end):
            continue
        if _TIME_AFTER.match(text, end):
            return match
        first = first or match
    return first


def _valid(match: re.Match[str], options: Extractor) -> str | None:
    year, _, month, day, cn_month, cn_day = match.groups()
    try:
        candidate = datetime(int(year), int(month or cn_month), int(day or cn_day))
    except ValueError:  # 2024-02-30
        return None
    return validate_and_convert(candidate, options.format, earliest=options.min, latest=options.max)
