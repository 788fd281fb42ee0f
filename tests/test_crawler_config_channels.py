"""The channels:, sources: and grading: config blocks: errors name file, line and field."""

from __future__ import annotations

import itertools

import pytest
import yaml

from crawler.config import ConfigError, parse_config
from crawler.config_channels import LEXICON_KEYWORDS, channel_keywords
from crawler.reports.grading import GradingConfig, HitFacts, grade

GOOD_SELECTORS = {"item": "div.r", "link": "h3 a"}


def load(**blocks):
    text = yaml.safe_dump({"targets": [{"id": "a", "name": "甲公司", "aliases": ["甲"], "business": "p2p",
                                        "urls": ["http://a.example/"]}]} | blocks, allow_unicode=True)
    return parse_config(text, "patrol.yaml")


def problems(**blocks) -> str:
    with pytest.raises(ConfigError) as e:
        load(**blocks)
    return str(e.value)


def test_a_valid_channel_and_source():
    config = load(channels=[{"id": "s", "url": "http://s.example/s?q={keyword}&pn={page}", "pages": 3,
                             "page_step": 10, "first_page": 0, "selectors": GOOD_SELECTORS | {"ad_label": "xpath:.//em"}}],
                  sources=[{"id": "f", "kind": "feed", "url": "http://f.example/rss"}])
    channel = config.channels[0]
    assert channel.list_url("保本 理财", 2) == "http://s.example/s?q=%E4%BF%9D%E6%9C%AC%20%E7%90%86%E8%B4%A2&pn=20"
    assert channel_keywords(channel, config.targets)[:2] == ["甲公司", "甲"]
    assert set(LEXICON_KEYWORDS) <= set(channel_keywords(channel, config.targets))
    assert config.sources[0].result_kind == "news" and channel.result_kind == "ad"


@pytest.mark.parametrize("channel, expected", [
    ({"url": "http://s.example/?q={kw}"}, "channels[0].url: unknown placeholder(s) {kw}"),
    ({"url": "ftp://s.example/{keyword}"}, "channels[0].url: expected an http(s) URL template"),
    ({"selectors": {"item": "div[", "link": "a"}}, "channels[0].selectors.item: invalid CSS selector 'div['"),
    ({"selectors": {"item": "div", "link": "xpath:.//a[@"}}, "channels[0].selectors.link: invalid XPath"),
    ({"selectors": {"item": "div"}}, "channels[0].selectors.link: required setting is missing"),
    ({"pages": 2, "url": "http://s.example/?q={keyword}"}, "pages > 1 needs {page} in url or a selectors.next_page"),
    ({"url": "http://s.example/list", "keywords": ["理财"]}, "keywords given but the url has no {keyword}"),
    ({"render": "auto"}, "channels[0].render: expected 'never' or 'always', got 'auto'"),
    ({"id": "Bad Id"}, "channels[0].id: expected lower-case letters"),
    ({"selector": {}}, "channels[0].selector: unknown setting"),
])
def test_channel_errors_name_the_field_and_line(channel, expected):
    entry = {"id": "s", "url": "http://s.example/?q={keyword}&p={page}", "selectors": GOOD_SELECTORS} | channel
    message = problems(channels=[entry])
    assert message.startswith("patrol.yaml: line ") and expected in message, message


def test_source_and_duplicate_errors():
    assert problems(sources=[{"id": "b", "kind": "forum", "url": "http://b.example/"}]) == \
        "patrol.yaml: line 2: sources[0]: selectors are required for a forum source"
    assert "a source url takes {page} only" in problems(
        sources=[{"id": "b", "kind": "feed", "url": "http://b.example/?q={keyword}"}])
    assert "channels[1].id: duplicate channel id 's'" in problems(channels=[
        {"id": "s", "url": "http://s.example/", "selectors": GOOD_SELECTORS},
        {"id": "s", "url": "http://t.example/", "selectors": GOOD_SELECTORS}])
    assert "sources[2].id: duplicate source id 'f'" in problems(sources=[
        {"id": "f", "kind": "feed", "url": "http://f.example/rss"}, {"id": "g", "kind": "feed", "url": "http://g.example/rss"},
        {"id": "f", "kind": "feed", "url": "http://h.example/rss"}])
    assert "schedules.jobs[1].id: duplicate job id 'j'" in problems(
        schedules={"jobs": [{"id": "j", "interval": 60}, {"id": "j", "interval": 120}]})
    assert "grading.rules[0].when.categories: unknown category id 'scam'; known: guaranteed_return" in problems(
        grading={"rules": [{"grade": "高风险", "when": {"categories": ["scam"]}}]})
    assert "grading.rules[0].grade" in problems(grading={"rules": [{"grade": "极高", "when": {}}]})


def test_grading_takes_the_most_severe_matching_rule_and_lists_every_reason():
    config = GradingConfig()
    urls = (f"http://forum.test/thread-{n}.html" for n in itertools.count())
    hit = lambda labels, risk="medium", removed=False, y=None, url=None: HitFacts(
        url or next(urls), tuple(labels), risk, removed, y)
    assert grade(config, []).grade == "正常"
    assert grade(config, [hit(["false_advertising"])]).grade == "一般关注"
    assert grade(config, [hit(["high_yield"], y=18.0)]).grade == "重点关注"
    result = grade(config, [hit(["collapse_signal"], "high")])
    assert result.grade == "高风险" and result.reasons[0].startswith("高风险：") and len(result.reasons) == 3
    assert grade(config, [hit(["illegal_fundraising"], "high", removed=True)]).grade == "正常", "rectified hits"
    taken_down = hit(["collapse_signal", "guaranteed_return"], "high", removed=True)
    assert grade(config, [taken_down]).grade == "高风险", "a collapse notice taken down was seen: no rectification"
    promises = GradingConfig(rules=[{"grade": "重点关注", "when": {"categories": ["guaranteed_return"]}}])
    assert grade(promises, [taken_down]).grade == "正常", "its promise removed with it is rectified"
    strict = GradingConfig(rules=[{"grade": "重点关注", "when": {"min_opinion": 2, "categories": ["collapse_signal"]}}])
    assert grade(strict, [hit(["collapse_signal"])]).grade == "正常"
    assert grade(strict, [hit(["collapse_signal"]), hit(["collapse_signal"])]).grade == "重点关注"
    post = "http://forum.test/thread-7.html"
    one_post = [hit(["collapse_signal"], url=post), hit(["collapse_signal"], url=post)]  # target page, source page
    assert grade(strict, one_post).grade == "正常", "one post found twice is one opinion signal"
    three_high = [hit(["fund_pool"], "high", url=post) for _ in range(3)]
    assert grade(config, three_high).grade == "重点关注", "三条以上高风险命中 counts pages, not records of one page"
