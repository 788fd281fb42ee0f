"""Publish dates: htmldate's markup signals first, then the date the page's text states."""

from datetime import UTC, date, datetime, timedelta

import lxml.html
import pytest

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
    ('<span class="date">发布日期：2024年03月05号</span><p>正文</p>', "2024-03-05"),
    ("<p>发表于 2024/03/05 10:12</p><p>正文</p>", "2024-03-05"),
    ("<p>时间：2024.3.5</p><p>正文</p>", "2024-03-05"),
    ("<p>本文发布于2024/3/5，转载请注明出处。</p>", "2024-03-05"),
])
def test_a_date_stated_in_chinese_or_with_slashes_or_dots_is_found(body, expected):
    assert publish_date(page(body), URL) == expected


def test_the_first_date_of_the_article_wins_over_comments_and_related_articles():
    tree = page("<div class='laiyuan'>2024-03-05 来源：新华网</div><p>正文</p>"
                "<div class='comment'>网友甲 发表于 2024-03-07</div>"
                "<ul class='related'><li>发布时间：2023-01-01 相关阅读</li></ul>")
    assert publish_date(tree, URL) == "2024-03-05"


def test_a_date_with_a_time_to_the_second_wins_over_earlier_dates_without_one():
    tree = page("<div class='side'>最新公告 2024-02-01</div>"
                "<div class='laiyuan'>发布时间：2024-03-05 10:12:00</div><p>正文</p>")
    assert publish_date(tree, URL) == "2024-03-05"


def test_a_time_to_the_minute_further_down_does_not_beat_the_dateline():
    tree = page("<div class='laiyuan'>发布日期：2024-03-01 来源：区金融办</div>"
                "<p>考试时间：2024年4月20日 9:00，地点另行通知。</p>"
                "<div class='comment'>网友甲 2024-03-07 10:12</div>")
    assert publish_date(tree, URL) == "2024-03-01"


@pytest.mark.parametrize("body", [
    "<p>产品成立日期：2016年10月10日，到期日期：2017年4月10日。</p><p>更新时间：2024-06-01</p>",
    "<p>公司成立于2016-10-10，注册时间：2016年9月1日，ICP备案时间：2016-05-01。</p>",
    "<p>平台上线时间：2014年6月1日，安全运营于2014-06-02。</p>",
    "<p>截至2024年6月30日，累计出借金额12亿元。</p>",
    "<p>活动时间：2024.03.01-2024.03.31</p>",
    "<p>活动时间：2024年3月1日至2024年3月31日</p>",
    "<p>更新时间为：2024-06-01</p>",
    "<p>实施日期：2024-03-01</p>",
    "<dl class='author'><dd>注册时间 2015-6-1</dd><dd>最后登录 2024-6-1</dd></dl>",
    "<div class='top'>今天是2024年6月1日</div>",
    "<div class='top'>2024年6月1日 星期六</div>",
    "<div class='top'>2024年6月1日（星期六）</div>",
    "<div class='top'>2024年6月1日 农历四月廿五</div>",
    "<p><label>成立时间：</label>\n      <span>2015年6月1日</span></p>",  # label and date in two elements
    "<table><tr><td>更新时间：</td>" + " " * 40 + "\n<td>2024-06-01</td></tr></table>",
    "<p>Last updated on 2024-06-01</p>",
    "<p>最后编辑于 2024-06-01</p>",
])
def test_dates_labelled_as_something_else_are_skipped(body):
    assert publish_date(page(body + "<p>发布时间：2024-03-05</p>"), URL) == "2024-03-05"
    assert publish_date(page(body), URL) is None


@pytest.mark.parametrize("headline", ["区金融办成立大会召开", "网贷机构备案工作启动", "某平台产品集中到期兑付",
                                      "行业协会正式成立", "新规正式实施"])
def test_a_headline_ending_in_such_a_word_is_not_a_label(headline):
    tree = page(f"<div class='title'>{headline}</div><div class='laiyuan'>2024-03-05 来源：新华网</div>"
                "<ul class='related'><li>2023-01-01 相关阅读</li></ul>")
    assert publish_date(tree, URL) == "2024-03-05"


def test_the_start_of_a_date_range_is_a_date_and_a_dash_after_a_number_is_not_a_range():
    assert publish_date(page("<p>2024.03.01-2024.03.31 限时加息</p>"), URL) == "2024-03-01"
    assert publish_date(page("<p>浏览：120 - 2024-03-05 来源：本站</p>"), URL) == "2024-03-05"


def test_an_editor_s_name_is_not_an_update():
    assert publish_date(page("<p>来源：新华网 责任编辑：王五 2024-03-05</p>"), URL) == "2024-03-05"


IN_THREE_DAYS = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()


@pytest.mark.parametrize("body", [
    f"<p>发布时间：{IN_THREE_DAYS}</p><p>相关：2024-03-05</p>",  # after tomorrow
    "<p>发布时间：1990-01-01</p><p>相关：2024-03-05</p>",  # before htmldate's earliest plausible date
    "<p>发布时间：2024-02-30</p><p>相关：2024-03-05</p>",  # no such day
    "<p>发布时间：2024-02-30</p><p>Datum: 05.03.2024</p>",  # htmldate's wording only when we found none
])
def test_an_implausible_first_date_gives_no_date_rather_than_one_from_further_down(body):
    assert publish_date(page(body), URL) is None


@pytest.mark.parametrize("body", [
    "<p>发布时间：2024-03/05</p>",  # two separators
    "<p>合同编号：32024-01-02</p>",  # the tail of a longer number
    "<p>发布时间：2024-03-051</p>",  # the head of a longer number
    "<p>服务器 2001.10.1.5</p>",  # a version number
    "<script>var published = '2024-03-05';</script><p>正文</p>",  # not text a reader sees
    "<select><option>2024-03-05</option></select><p>正文</p>",
])
def test_what_only_looks_like_a_date_is_not_taken(body):
    assert publish_date(page(body), URL) is None


def test_a_page_dated_tomorrow_on_this_clock_is_accepted():
    # From 16:00 UTC on, today in China is tomorrow on a UTC clock.
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert publish_date(page(f"<p>发布时间：{tomorrow}</p>"), URL) == tomorrow


def test_table_cells_do_not_run_together():
    tree = page("<table><tr><td>投资理财</td><td>426</td><td>2016-10-20</td></tr></table>")
    assert publish_date(tree, URL) == "2016-10-20"


def test_markup_signals_come_before_the_text():
    body = "<p>发布时间：2024年3月5日</p>"
    meta = '<meta property="article:published_time" content="2023-11-02T09:00:00+08:00">'
    assert publish_date(page(body, head=meta), URL) == "2023-11-02"
    assert publish_date(page('<time datetime="2023-11-02">11月2日</time>' + body), URL) == "2023-11-02"
    assert publish_date(page(body), "http://site.test/2023/11/02/view.html") == "2023-11-02"
    canonical = '<link rel="canonical" href="http://site.test/2023/11/02/view.html">'
    assert publish_date(page(body, head=canonical), None) == "2023-11-02"
    og_image = '<meta property="og:image" content="http://site.test/uploads/2023/11/02/cover.jpg">'
    assert publish_date(page(body, head=og_image), URL) == "2023-11-02"


def test_the_caller_s_tree_is_left_as_it_was():
    tree = page("<iframe src='/ad.html'>广告</iframe><svg><text>图</text></svg><p>发布时间：2024年3月5日</p>")
    before = lxml.html.tostring(tree)
    assert publish_date(tree, URL) == "2024-03-05"  # the text pass ran, on a cleaned copy
    assert lxml.html.tostring(tree) == before


def test_htmldate_s_own_text_patterns_still_apply():
    assert publish_date(page("<p>Datum: 05.03.2024</p><p>Produkte</p>"), URL) == "2024-03-05"


def test_a_gbk_page_s_chinese_date_reaches_the_extracted_page():
    html = lxml.html.tostring(page('<div class="info">发布时间：2024年3月5日</div><p>本平台承诺保本保息。</p>'),
                              encoding="unicode")
    body = html.replace("<head>", '<head><meta charset="gbk">').encode("gbk", errors="xmlcharrefreplace")
    assert extract(body, "gbk", URL).published == "2024-03-05"
