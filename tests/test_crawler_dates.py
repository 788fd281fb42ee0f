"""Publish dates: htmldate's markup signals first, then dates stated in the page's text."""

import lxml.html
import pytest
from htmldate import find_date

from crawler.dates import publish_date
from crawler.extract import extract

URL = "http://site.test/news/view.html"


def page(body: str, head: str = "") -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(
        f"<html><head><title>公告</title>{head}</head><body>"
        f'<div class="nav"><a href="/">首页</a> <a href="/news/">新闻动态</a></div>{body}'
        "<div class='footer'>Copyright © 2015-2026 某某网络科技有限公司 渝ICP备15000000号</div></body></html>"
    )


@pytest.mark.parametrize("body, expected", [
    ('<div class="info">来源：区金融办 发布时间：2024年3月5日 浏览：120</div><p>正文</p>', "2024-03-05"),
    ('<span class="date">发布日期：2024年03月05日</span><p>正文</p>', "2024-03-05"),
    ("<p>发表于 2024/03/05 10:12</p><p>正文</p>", "2024-03-05"),
    ("<p>时间：2024.3.5</p><p>正文</p>", "2024-03-05"),
    ("<p>本文发布于2024/3/5，转载请注明出处。</p>", "2024-03-05"),
])
def test_a_date_stated_in_chinese_or_with_slashes_or_dots_is_found(body, expected):
    tree = page(body)
    assert publish_date(tree, URL) == expected
    # htmldate alone knows only ISO dates in text: this is what crawler.dates adds.
    assert find_date(tree, url=URL, extensive_search=False, original_date=True) is None


def test_the_labelled_publish_date_wins_over_earlier_dates_in_the_text():
    tree = page("<p>产品成立日期：2016年10月10日，到期日期：2017年4月10日。</p>"
                "<p>更新时间：2024-06-01</p><p>发布时间：2024-03-05</p>")
    assert publish_date(tree, URL) == "2024-03-05"
    assert publish_date(page("<p>成立于2016年10月10日</p><p>时间：2024-03-05</p>"), URL) == "2024-03-05"
    # 到期日期 is not a label: the first date stands.
    assert publish_date(page("<p>2016年10月10日成立</p><p>到期日期：2017年4月10日</p>"), URL) == "2016-10-10"


def test_without_a_label_the_first_plausible_date_is_taken_but_never_an_update():
    assert publish_date(page("<p>2016年10月10日成立，2017年4月10日到期。</p>"), URL) == "2016-10-10"
    assert publish_date(page("<p>更新时间：2024-06-01</p><p>正文</p>"), URL) is None
    assert publish_date(page("<p>最后编辑于 2024-06-01</p><p>成立于2016-10-10</p>"), URL) == "2016-10-10"


@pytest.mark.parametrize("body", [
    "<p>发布时间：2099-01-01</p>",  # in the future
    "<p>发布时间：1990-01-01</p>",  # before htmldate's earliest plausible date
    "<p>发布时间：2024-02-30</p>",  # no such day
    "<p>发布时间：2024-03/05</p>",  # two separators
    "<p>合同编号：32024-01-02</p>",  # the tail of a longer number
    "<p>发布时间：2024-03-051</p>",  # the head of a longer number
    "<script>var published = '2024-03-05';</script><p>正文</p>",  # not text a reader sees
])
def test_implausible_or_hidden_dates_are_not_taken(body):
    assert publish_date(page(body), URL) is None


def test_an_invalid_date_does_not_hide_a_valid_one_after_it():
    assert publish_date(page("<p>发布时间：2024-02-30</p><p>发布时间：2024-03-01</p>"), URL) == "2024-03-01"


def test_table_cells_do_not_run_together():
    tree = page("<table><tr><td>投资理财</td><td>426</td><td>2016-10-20</td></tr></table>")
    assert publish_date(tree, URL) == "2016-10-20"


def test_markup_signals_come_before_the_text_and_the_tree_is_left_as_it_was():
    body = "<p>发布时间：2024年3月5日</p><script>var x = 1;</script>"
    meta = '<meta property="article:published_time" content="2023-11-02T09:00:00+08:00">'
    tree = page(body, head=meta)
    before = lxml.html.tostring(tree)
    assert publish_date(tree, URL) == "2023-11-02"
    assert lxml.html.tostring(tree) == before
    assert publish_date(page('<time datetime="2023-11-02">11月2日</time>' + body), URL) == "2023-11-02"
    assert publish_date(page(body), "http://site.test/2023/11/02/view.html") == "2023-11-02"


def test_htmldate_s_own_text_patterns_still_apply():
    assert publish_date(page("<p>Datum: 05.03.2024</p><p>Produkte</p>"), URL) == "2024-03-05"


def test_a_gbk_page_s_chinese_date_reaches_the_extracted_page():
    html = lxml.html.tostring(page('<div class="info">发布时间：2024年3月5日</div><p>本平台承诺保本保息。</p>'),
                              encoding="unicode")
    body = html.replace("<head>", '<head><meta charset="gbk">').encode("gbk", errors="xmlcharrefreplace")
    assert extract(body, "gbk", URL).published == "2024-03-05"
