"""Dossier and period report rendering after a real crawl of sites, channels and sources:
HTML well-formed, charts produced, crawled content escaped, grades explained."""

from __future__ import annotations

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo
from html.parser import HTMLParser

import pytest
import yaml

from channel_sites import LIST_SELECTORS, html, opinion_routes, platform_routes, rogue_routes, search_routes
from conftest import cli, closed_port_url, json_lines
from crawler.demo.server import SiteServer, routes
from crawler.reports.data import by_month
from crawler.wording import local_time, published_time

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'
EVIL_TEXT = EVIL.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # text that reads as markup
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
PNG = b"\x89PNG\r\n\x1a\n"


class Balance(HTMLParser):
    """Fails on a closing tag that does not match the open one; collects scripts and images."""

    def __init__(self):
        super().__init__()
        self.stack, self.scripts, self.images, self.errors = [], 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts += 1
        if tag == "img":
            self.images.append(dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def well_formed(text: str) -> Balance:
    parser = Balance()
    parser.feed(text)
    parser.close()
    assert text.startswith("<!DOCTYPE html>")
    assert not parser.errors and not parser.stack, (parser.errors, parser.stack)
    return parser


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    site_routes = platform_routes() | {
        "/": html("鑫盈宝首页", "<p><a href='/evil.html'>活动</a></p>"),
        "/evil.html": html(f"新手活动{EVIL_TEXT}", f"<p>{EVIL_TEXT} 保本保息，年化收益率高达18%，稳赚不赔。</p>"),
    }
    with SiteServer(routes(site_routes)) as platform, SiteServer(routes(rogue_routes())) as rogue, \
            SiteServer(routes(opinion_routes())) as board:
        with SiteServer(routes(search_routes(platform.base_url, rogue.base_url))) as portal:
            config = root / "patrol.yaml"
            config.write_text(yaml.safe_dump({
                "state_dir": "state", "allow_private_networks": True, "download_timeout": 5,
                "targets": [
                    {"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"], "business": "p2p",
                     "urls": [platform.url("/")]},
                    {"id": "quiet", "name": "重庆安稳科技有限公司", "business": "other", "urls": [closed_port_url()]},  # down
                ],
                "channels": [{"id": "search", "url": portal.base_url + "/s/{page}?wd={keyword}", "keywords": ["理财"],
                              "pages": 2, "selectors": {"item": "div.r", "link": "h3 a", "snippet": "p.abs",
                                                        "advertiser": ".adv", "ad_label": ".ad-label"}}],
                "sources": [{"id": "bbs", "kind": "forum", "url": board.base_url + "/board-{page}.html", "pages": 2,
                             "selectors": LIST_SELECTORS}],
                "grading": {"rules": [
                    {"grade": "高风险", "when": {"categories": ["mass_incident"]}, "reason": "维权苗头"},
                    {"grade": "一般关注", "when": {"min_hits": 1}},
                ]},
            }, allow_unicode=True), encoding="utf-8")
            result = cli("patrol", "--config", str(config), "--sites", "--channels", "--sources")
            assert result.returncode == 0, result.stdout + result.stderr
            yield config, root


def test_one_process_runs_sites_channels_and_sources(crawled):
    config, _ = crawled
    spiders = [r["spider"] for r in json_lines(cli("runs", "--config", str(config), "--json").stdout)]
    assert sorted(spiders) == ["ad_channel", "opinion", "site_patrol"]


def test_dossier_html_is_well_formed_escaped_with_chart_and_grade(crawled):
    config, root = crawled
    out = root / "out" / "dossier xyb.html"
    result = cli("dossier", "xyb", "--config", str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    parsed = well_formed(text)
    assert parsed.scripts == 0 and "&lt;script&gt;alert(" in text, "crawled markup is text"
    assert all("onerror" not in img for img in parsed.images)
    chart = root / "out" / "dossier xyb-charts" / "categories.png"
    assert chart.read_bytes().startswith(PNG)
    assert [img["src"] for img in parsed.images] == ["dossier%20xyb-charts/categories.png"]
    assert "高风险" in text and "维权苗头" in text, "the configured grading rule and its reason"
    assert "source:bbs" in text and "channel:search" in text, "attributed channel and opinion hits"
    assert ".warc.gz" in text and "sha256" in text, "evidence references"


def test_dossier_json_and_markdown(crawled):
    config, _ = crawled
    data = json.loads(cli("dossier", "xyb", "--config", str(config), "--format", "json").stdout)
    assert data["identity"]["name"] == "重庆鑫盈宝网络科技有限公司"
    assert data["grade"]["grade"] == "高风险" and data["grade"]["reasons"][0].startswith("高风险：维权苗头")
    assert data["coverage"]["status"] == "ok" and data["coverage"]["last_success"]
    reasons = {h["attribution"]["reason"] for h in data["hits"]}
    assert {"own_site", "domain", "name"} <= reasons
    assert any(y["high_annual_pct"] == 18 for y in data["yields"])
    assert any(h["listed"] and h["listed"]["author"] == "维权志愿者" for h in data["opinion"])
    md = cli("dossier", "xyb", "--config", str(config), "--format", "md").stdout
    assert md.startswith("# 一户一档：重庆鑫盈宝网络科技有限公司")
    assert "<script>" not in md and "\\<script\\>" in md
    assert "- 业态：P2P网络借贷" in md and "- 状态：正常；" in md, "codes are named in Chinese for people"
    assert "本机构网站" in md and "名称提及" in md and "own\\_site" not in md
    first = data["hits"][0]
    row = next(line for line in md.splitlines() if re.match(rf"\| {first['id']}[ （]", line))
    risk = {"high": "高风险", "medium": "中风险", "low": "低风险"}[first["risk"]]
    assert f"| {risk} | " in row, ("the hit's risk, in Chinese", row)
    assert "guaranteed\\_return" not in md and "承诺保本保息" in md
    assert "（Asia/Shanghai）" in md.splitlines()[2], "generated at, in the office's time zone"
    first = data["hits"][0]["first_seen"]
    assert f"| {local_time(first, 'Asia/Shanghai')} |" in md and first not in md, "times in the office's zone"
    quiet = json.loads(cli("dossier", "quiet", "--config", str(config), "--format", "json").stdout)
    assert quiet["grade"] == {"grade": "未巡查", "reasons": ["本期未巡查，无巡查数据"]}, "never fetched: no data, not 正常"
    quiet_md = cli("dossier", "quiet", "--config", str(config), "--format", "md").stdout
    assert "## 风险分级：未巡查" in quiet_md and "- 本期未巡查，无巡查数据" in quiet_md
    assert cli("dossier", "nobody", "--config", str(config)).returncode != 0


def test_report_html_and_markdown_with_charts(crawled):
    config, root = crawled
    out = root / "report.html"
    result = cli("report", "--config", str(config), "--since", "2000-01-01", "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    parsed = well_formed(text)
    assert parsed.scripts == 0
    assert sorted(img["src"] for img in parsed.images) == ["report-charts/categories.png", "report-charts/trend.png"]
    for name in ("trend.png", "categories.png"):
        assert (root / "report-charts" / name).read_bytes().startswith(PNG)
    assert "江津银监分局" in text and "区委宣传部/区网信办" in text, "hits by lead unit"
    assert "2016-10-20" in text, "opinion trend by publish date"
    assert text.index("重庆鑫盈宝网络科技有限公司（xyb）") < text.index("重庆安稳科技有限公司（quiet）"), "top risks first"
    assert "未巡查：quiet" in text, "a target whose patrol fetched nothing is not covered"
    inline = cli("report", "--config", str(config), "--since", "2000-01-01").stdout
    assert inline.count("data:image/png;base64,") == 2, "without --out the charts are embedded"
    md = cli("report", "--config", str(config), "--since", "2000-01-01", "--format", "md").stdout
    assert md.startswith("# 巡查总结报告") and "| 机构 | 分级 |" in md
    empty = cli("report", "--config", str(config), "--since", "2000-01-01", "--until", "2000-02-01")
    assert empty.returncode == 0 and "未巡查" in empty.stdout
    assert cli("report", "--config", str(config), "--since", "2030-01-01", "--until", "2020-01-01").returncode != 0


def test_dossier_lists_each_opinion_post_once(crawled):
    config, _ = crawled
    data = json.loads(cli("dossier", "xyb", "--config", str(config), "--format", "json").stdout)
    posts = [h["url"] for h in data["opinion"]]
    assert len(posts) == len(set(posts)) and not any("#" in url for url in posts), posts
    rally = next(h for h in data["opinion"] if h["url"].endswith("/t-3.html"))
    records = [h for h in data["hits"] if h["post"] == rally["url"]]
    assert {h["url"] for h in records} == {rally["url"], rally["url"] + "#listed"}, "the page and its listed snippet"
    assert rally["hit_ids"] == sorted(h["id"] for h in records)
    assert rally["id"] == next(h["id"] for h in records if h["url"] == rally["url"]), "the page's own hit leads"
    assert rally["listed"]["author"] == "维权志愿者", "the listing's author is kept with the post"


def test_report_period_ends_with_the_day_named_and_counts_only_that_period(crawled):
    config, _ = crawled
    runs = json_lines(cli("runs", "--config", str(config), "--json").stdout)
    started = datetime.fromisoformat(max(runs, key=lambda r: r["id"])["started_at"])  # the sources' run
    today = started.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()  # the office's day, not UTC's
    md = cli("report", "--config", str(config), "--since", today, "--until", today, "--format", "md")
    assert md.returncode == 0, md.stderr
    assert "本期命中 0 条" not in md.stdout, "--until DATE includes that day's patrol"
    trend = [line.split("|")[1].strip() for line in md.stdout.split("## 舆情趋势")[1].splitlines()
             if line.startswith("| 2")]
    assert trend == [today], "posts published in 2016 but first seen today are counted today"
    old = cli("report", "--config", str(config), "--since", "2000-01-01", "--until", "2000-01-31", "--format", "md")
    assert "统计期间 2000-01-01 至 2000-01-31（含，Asia/Shanghai）" in old.stdout
    assert "本期命中 0 条" in old.stdout
    assert "| 重庆鑫盈宝网络科技有限公司（xyb） | 未巡查 | 0 | 本期未巡查，无巡查数据 |" in old.stdout, "no patrol then"
    assert "| 正常 |" not in old.stdout, "a period without patrols grades no institution 正常"


def test_report_top_risks_count_live_pages_as_the_reasons_do(crawled):
    config, _ = crawled
    hits = json.loads(cli("dossier", "xyb", "--config", str(config), "--format", "json").stdout)["hits"]
    live = [h for h in hits if not h["removed_at"]]
    pages = len({h["post"] for h in live})
    assert pages < len(live), "a post found several ways: more records than pages"
    md = cli("report", "--config", str(config), "--since", "2000-01-01", "--format", "md").stdout
    assert "| 机构 | 分级 | 在线网页 | 依据 |" in md and "在线命中" not in md
    row = next(line for line in md.splitlines() if line.startswith("| 重庆鑫盈宝网络科技有限公司（xyb） |"))
    assert row.split(" | ")[2] == str(pages), row
    assert f"一般关注：命中≥1（{pages} 个网页命中）" in row, "the column and the reasons count the same pages"
    html_text = cli("report", "--config", str(config), "--since", "2000-01-01").stdout
    assert "<th>在线网页</th>" in html_text and "在线命中" not in html_text
    assert f'<td class="g-高风险">高风险</td><td>{pages}</td>' in html_text


def test_report_days_are_the_offices_days(crawled):
    config, _ = crawled
    runs = json_lines(cli("runs", "--config", str(config), "--json").stdout)
    started = datetime.fromisoformat(min(runs, key=lambda r: r["id"])["started_at"])
    day = started.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    md = cli("report", "--config", str(config), "--since", day, "--until", day, "--format", "md").stdout
    assert f"统计期间 {day} 至 {day}（含，Asia/Shanghai）" in md
    assert "本期命中 0 条" not in md, "a Beijing day holds the patrols of that Beijing day"
    timed = cli("report", "--config", str(config), "--since", f"{day}T00:00+00:00", "--until", f"{day}T20:30",
                "--format", "md").stdout
    assert f"统计期间 {day} 08:00 至 {day} 20:30（Asia/Shanghai）" in timed, "an offset is kept, a bare time is local"


def test_document_times_are_the_offices_and_months_are_its_months():
    assert local_time("2026-02-28T17:30:00+00:00", "Asia/Shanghai") == "2026-03-01 01:30"
    assert local_time("2016-10-20T21:15:00+08:00", "Asia/Shanghai") == "2016-10-20 21:15"
    assert local_time("2016-10-20", "Asia/Shanghai") == "2016-10-20", "a date alone is not moved"
    assert local_time(None, "Asia/Shanghai") == ""
    # a site's publish time: with an offset in the office's zone, without one as the site wrote it
    assert published_time("2016-10-20T13:15:00+00:00", "Asia/Shanghai") == "2016-10-20 21:15"
    assert published_time("2016-10-20T21:15:00", "Asia/Shanghai") == "2016-10-20 21:15"
    assert published_time("2016-10-20", "Asia/Shanghai") == "2016-10-20"
    hits = [{"post": "http://a/1", "first_seen": "2026-02-28T17:30:00+00:00", "labels": ["high_yield"]},
            {"post": "http://a/2", "first_seen": "2026-02-28T15:30:00+00:00", "labels": ["high_yield"]}]
    assert by_month(hits, ZoneInfo("Asia/Shanghai")) == [
        {"month": "2026-02", "counts": {"high_yield": 1}}, {"month": "2026-03", "counts": {"high_yield": 1}}]


def test_dossier_months_count_pages_as_the_period_report_does():
    """A page reworded in a later month is one page, counted in the month its label was first seen."""
    hits = [{"post": "http://a/1", "first_seen": "2026-04-02T02:00:00+00:00", "labels": ["high_yield", "fund_pool"]},
            {"post": "http://a/1", "first_seen": "2026-03-10T02:00:00+00:00", "labels": ["high_yield"]},
            {"post": "http://a/1", "first_seen": "2026-03-20T02:00:00+00:00", "labels": ["high_yield"]},
            {"post": "http://a/2", "first_seen": "2026-03-05T02:00:00+00:00", "labels": ["high_yield"]}]
    assert by_month(hits, ZoneInfo("Asia/Shanghai")) == [
        {"month": "2026-03", "counts": {"high_yield": 2}}, {"month": "2026-04", "counts": {"fund_pool": 1}}]


def test_a_dossier_names_a_hit_without_evidence_capture_instead_of_failing(tmp_path):
    """A hit whose page was never archived (or whose capture failed) still has its row and digest."""
    from smtp_fixtures import finding, store_hits, verdict

    from crawler.config import load_config
    from crawler.store.db import StateDB

    config = tmp_path / "patrol.yaml"
    config.write_text(yaml.safe_dump({"state_dir": "state", "targets": [
        {"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "business": "p2p", "urls": ["http://127.0.0.1:9/"]}]},
        allow_unicode=True), encoding="utf-8")
    db = StateDB(load_config(config).db_url)
    store_hits(db, [("xyb", "http://127.0.0.1:9/a.html", "本平台保本保息", verdict([finding("guaranteed_return", "保本保息")]))])
    db.close()
    for fmt in ("md", "html"):
        result = cli("dossier", "xyb", "--config", str(config), "--format", fmt)
        assert result.returncode == 0, result.stderr
        assert "未存证" in result.stdout and "http://127.0.0.1:9/a.html" in result.stdout


def test_report_and_dossier_count_pages_in_one_unit(crawled):
    """网页 is a post URL everywhere: the live pages are among the pages hit, and contents no more than pages."""
    config, _ = crawled
    hits = json.loads(cli("dossier", "xyb", "--config", str(config), "--format", "json").stdout)
    live = [h for h in hits["hits"] if not h["removed_at"]]
    pages = len({h["post"] for h in live})
    assert pages < len(live), "a post found several ways: more records than pages"
    assert hits["contents"] == {"live": hits["contents"]["live"], "live_pages": pages, "live_urls": len(live)}
    assert hits["contents"]["live"] <= pages
    md = cli("dossier", "xyb", "--config", str(config), "--format", "md").stdout
    assert f"涉及 {pages} 个网页（{len(live)} 条命中记录" in md and "个页面" not in md
    every = [h for h in json_lines(cli("hits", "--config", str(config), "--json", "--limit", "1000").stdout)]
    live_all = [h for h in every if not h["removed_at"]]
    live_pages = len({h["url"].split("#")[0] for h in live_all})
    for fmt in ("md", "html"):
        text = cli("report", "--config", str(config), "--since", "2000-01-01", "--format", fmt).stdout
        hit_pages = int(re.search(r"涉及 (\d+) 个网页（网页按网址计", text).group(1))
        contents, on_pages, records = map(int, re.search(
            r"仍在线 (\d+) 条内容，涉及 (\d+) 个网页（(\d+) 条命中记录）", text).groups())
        assert (on_pages, records) == (live_pages, len(live_all)), text
        assert contents <= on_pages <= hit_pages < records, (contents, on_pages, hit_pages, records)
        assert "个页面" not in text


def test_a_forum_target_is_not_graded_and_its_posts_count_for_whom_they_name(tmp_path):
    """A forum registered as a target (kind: forum): victims' posts about 鑫盈宝 grade 鑫盈宝, not the
    forum; its dossier files each post under the institution the store attributed it to, or none."""
    board = html("投资理财版", "<p><a href='/t-1.html'>帖子一</a> <a href='/t-2.html'>帖子二</a></p>")
    forum_pages = {
        "/": board,
        "/t-1.html": html("鑫盈宝提现困难，三天没到账", "<p>在鑫盈宝申请提现2万，三天没到账，客服一直占线，提现困难。</p>"),
        "/t-2.html": html("某理财平台老板跑路了", "<p>我投的那个理财平台提现困难，老板已经跑路失联，大家小心。</p>"),
    }
    with SiteServer(routes(forum_pages)) as forum, \
            SiteServer(routes({"/": html("鑫盈宝", "<p>本平台介绍。</p>")})) as platform:
        config = tmp_path / "patrol.yaml"
        config.write_text(yaml.safe_dump({
            "state_dir": "state", "allow_private_networks": True, "download_timeout": 5,
            "targets": [
                {"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"], "business": "p2p",
                 "urls": [platform.url("/")]},
                {"id": "forum", "name": "江津生活论坛", "business": "other", "kind": "forum", "urls": [forum.url("/")]},
            ]}, allow_unicode=True), encoding="utf-8")
        result = cli("patrol", "--config", str(config))
        assert result.returncode == 0, result.stdout + result.stderr
        t1, t2 = forum.url("/t-1.html"), forum.url("/t-2.html")

    data = json.loads(cli("dossier", "forum", "--config", str(config), "--format", "json").stdout)
    assert data["grade"]["grade"] == "不分级", data["grade"]
    owner = {h["url"]: h["attribution"] for h in data["hits"]}
    assert (owner[t1]["id"], owner[t1]["reason"]) == ("xyb", "name"), owner
    assert owner[t2] == {"id": None, "reason": "none", "detail": ""}, "a post naming no one concerns no one"
    md = cli("dossier", "forum", "--config", str(config), "--format", "md").stdout
    table = md.split("## 命中明细与证据")[1].split("##")[0]
    rows = {line.split(" | ")[2]: line for line in table.splitlines() if line.startswith("| ") and line[2:3].isdigit()}
    assert "| forum 归属 xyb（名称提及） |" in rows[t1], rows[t1]
    assert "| forum 未归属机构 |" in rows[t2], rows[t2]
    assert "本机构网站" not in md and "## 风险分级：不分级" in md
    html_text = cli("dossier", "forum", "--config", str(config)).stdout
    assert "归属 xyb（名称提及）" in html_text and "未归属机构" in html_text and "本机构网站" not in html_text

    xyb = json.loads(cli("dossier", "xyb", "--config", str(config), "--format", "json").stdout)
    assert {h["url"] for h in xyb["hits"]} == {t1}, "the post naming 鑫盈宝 is in its file, the other is not"
    assert xyb["grade"]["grade"] == "高风险", xyb["grade"]
    xyb_md = cli("dossier", "xyb", "--config", str(config), "--format", "md").stdout
    assert "| forum 名称提及 |" in xyb_md, "found on the forum, attributed to this institution by name"
    for fmt in ("md", "html"):
        report = cli("report", "--config", str(config), "--since", "2000-01-01", "--format", fmt).stdout
        assert "江津生活论坛（forum）" not in report, "the forum is no institution among the risks"
        assert "重庆鑫盈宝网络科技有限公司（xyb）" in report and "登记机构 1 户" in report
        assert "另巡查论坛、投诉、新闻等站点 1 个" in report
