"""Opinion sources end to end: an RSS feed, a paginated forum board and a complaint board
with a next-page link, read with the real CLI; posts attributed to institutions by name."""

from __future__ import annotations

import pytest
import yaml

from channel_sites import LIST_SELECTORS, opinion_routes
from conftest import cli, json_lines
from crawler.config import load_config
from crawler.demo.server import SiteServer, routes
from crawler.discovery.models import ListedPage
from crawler.store.db import StateDB
from crawler.store.models import Hit, Page


@pytest.fixture(scope="module")
def read(tmp_path_factory):
    root = tmp_path_factory.mktemp("opinion")
    with SiteServer(routes(opinion_routes())) as site:
        config = root / "patrol.yaml"
        config.write_text(yaml.safe_dump({
            "state_dir": "state", "allow_private_networks": True, "download_timeout": 5,
            "targets": [
                {"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"], "business": "p2p",
                 "urls": ["http://xyb.example/"]},
                {"id": "kft", "name": "重庆快付通信息技术有限公司", "aliases": ["快付通"], "business": "payment",
                 "urls": ["http://kft.example/"]},
            ],
            "sources": [
                {"id": "news", "kind": "feed", "url": site.url("/feed.xml")},
                {"id": "bbs", "kind": "forum", "url": site.base_url + "/board-{page}.html", "pages": 5,
                 "selectors": LIST_SELECTORS},
                {"id": "tousu", "kind": "complaint", "url": site.url("/tousu-1.html"), "pages": 3,
                 "selectors": LIST_SELECTORS | {"next_page": "a.next"}},
            ],
        }, allow_unicode=True), encoding="utf-8")
        result = cli("patrol", "--config", str(config), "--sources")
        yield config, result, site


def posts(config) -> dict[str, dict]:
    db = StateDB(load_config(config).db_url)
    try:
        with db.new_session() as session:
            out = {}
            for lp, page in session.query(ListedPage, Page).join(Page, Page.id == ListedPage.page_id):
                hit = session.get(Hit, page.current_hit_id) if page.current_hit_id else None
                out[page.url] = {"target": page.target_id, "labels": page.labels, "context": hit.context if hit else "",
                                 **{c: getattr(lp, c) for c in ("kind", "author", "posted_at", "replies", "rank",
                                                                "attributed_target", "attribution_reason", "slot")}}
            return out
    finally:
        db.close()


def test_every_source_is_read_and_lists_stop_when_empty(read):
    config, result, site = read
    assert result.returncode == 0, result.stdout + result.stderr
    fetched = set(site.requests)
    assert {"/feed.xml", "/board-1.html", "/board-2.html", "/board-3.html", "/tousu-1.html", "/tousu-2.html"} <= fetched
    assert "/board-4.html" not in fetched, "an empty board page ends the list"
    run = json_lines(cli("runs", "--config", str(config), "--json").stdout)[0]
    assert run["spider"] == "opinion" and run["status"] == "ok"
    assert set(run["targets"]) == {"source:news", "source:bbs", "source:tousu"}


def test_posts_carry_author_publish_time_and_replies(read):
    config, _, site = read
    rows = posts(config)
    thread = rows[site.url("/t-3.html")]
    assert (thread["author"], thread["posted_at"], thread["replies"]) == ("维权志愿者", "2016-10-20T21:15:00+08:00", 203)
    assert thread["kind"] == "forum" and thread["target"] == "source:bbs"
    news = rows[site.url("/news-1.html")]
    assert (news["author"], news["posted_at"], news["kind"]) == ("记者甲", "2016-10-22T08:00:00+08:00", "news")
    complaint = rows[site.url("/c-1.html")]
    assert complaint["posted_at"] == "2016-10-11" and complaint["kind"] == "complaint"


def test_collapse_and_mass_incident_signals_are_attributed_by_name(read):
    config, _, site = read
    rows = posts(config)
    assert "collapse_signal" in rows[site.url("/t-1.html")]["labels"]
    assert "mass_incident" in rows[site.url("/t-3.html")]["labels"]
    for path in ("/t-1.html", "/t-3.html", "/news-1.html", "/c-2.html"):
        assert (rows[site.url(path)]["attributed_target"], rows[site.url(path)]["attribution_reason"]) == ("xyb", "name"), path
    assert rows[site.url("/c-1.html")]["attributed_target"] == "kft"
    assert rows[site.url("/t-2.html")]["attributed_target"] is None and rows[site.url("/t-2.html")]["labels"] == []


def test_a_regulator_warning_in_the_feed_is_not_an_advertisement(read):
    config, _, site = read
    warning = posts(config)[site.url("/news-2.html")]
    assert "guaranteed_return" not in warning["labels"], "news quoting 保本保息 is reporting, not promotion"
    assert not json_lines(cli("candidates", "list", "--config", str(config), "--json").stdout), \
        "opinion pages on the source's own host are never candidates"
