"""``finpatrol search`` on the embedded index (real patrols, real FTS5) and on a real search
server: words written in full width, letters and digits inside longer words, and what
became of a page or hit since it was indexed."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

from conftest import cli, json_lines
from crawler.config import Target, load_config
from crawler.demo.server import Reply, SiteServer, routes
from crawler.items import PageItem
from crawler.store import elastic_queue as queue
from crawler.store.db import StateDB
from crawler.store.elastic_client import make_async_client
from crawler.store.elastic_search import search as es_search
from crawler.store.elastic_setup import setup
from crawler.store.elastic_sync import push_pending
from crawler.store.pages import save_pages
from crawler.store.runs import sync_targets
from crawler.store.search import Filters
from tests.es_fixtures import cluster, osmem_base  # noqa: F401

WIDE = "本平台年化收益率高达１８％，月息２分，个人ＰＯＳ机办理，当天到账。"
NARROW = "另一平台年化收益率18%，承诺保本保息，欢迎咨询。"
POS = "快付通个人POS机办理，免费领取，维权qq群已满，会员突破200人。"


def page(title: str, body: str, links: tuple[str, ...] = ()) -> str:
    nav = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><ul class='nav'>{nav}</ul><article><h1>{title}</h1><p>{body}</p></article></body></html>"
    )


def search(config, *words: str) -> list[dict]:
    result = cli("search", *words, "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    return json_lines(result.stdout)


def test_full_width_letters_and_digits_find_and_are_found_by_half_width_ones(make_config, patrol):
    site_routes = {"/": page("首页", "欢迎访问。", ("/wide.html", "/narrow.html")),
                   "/wide.html": page("高收益理财", WIDE), "/narrow.html": page("稳健理财", NARROW)}
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "site", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
        wide, narrow = site.url("/wide.html"), site.url("/narrow.html")
    hits = {h["url"]: h for h in json_lines(cli("hits", "--config", str(config), "--json").stdout)}
    assert "high_yield" in hits[wide]["labels"], "the classifier reads １８％ as 18%: so must search"

    assert {r["url"] for r in search(config, "18%")} == {wide, narrow}
    assert {r["url"] for r in search(config, "１８％")} == {wide, narrow}, "and the other way round"
    assert [r["url"] for r in search(config, "月息2分")] == [wide]
    assert [r["url"] for r in search(config, "POS机")] == [wide]
    assert [r["url"] for r in search(config, "ｐｏｓ机")] == [wide]
    by_url = {r["url"]: r["snippet"] for r in search(config, "18%")}
    assert "【１８％】" in by_url[wide] and "【18%】" in by_url[narrow], "the page's own characters, marked"
    assert "【ＰＯＳ机】" in search(config, "POS机")[0]["snippet"]


def test_traditional_and_simplified_characters_find_each_other(make_config, patrol):
    site_routes = {"/": page("首页", "欢迎访问。", ("/trad.html", "/simp.html")),
                   "/trad.html": page("聚財寶", "聚財寶平台穩賺不賠，個人POS機免費辦理。"),
                   "/simp.html": page("聚财宝", "聚财宝平台稳赚不赔。")}
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "site", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
        trad, simp = site.url("/trad.html"), site.url("/simp.html")
    for query in ("稳赚不赔", "穩賺不賠", "聚财宝", "聚財寶"):
        assert {r["url"] for r in search(config, query)} == {trad, simp}, query
    assert [r["url"] for r in search(config, "个人POS机")] == [trad]
    assert "【穩賺不賠】" in {r["url"]: r["snippet"] for r in search(config, "稳赚不赔")}[trad], "marked as written"


def test_letters_and_digits_inside_a_longer_word_are_words_of_their_own(make_config, patrol):
    with SiteServer(routes({"/": page("快付通", POS)})) as site:
        config = make_config([{"id": "pos", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
        home = site.url("/")
    for query in ("POS", "pos", "ＰＯＳ", "qq", "200", "POS机", "POS机办理", "POS 办理", "个人POS机办理"):
        assert [r["url"] for r in search(config, query)] == [home], query
    assert not search(config, "POS 股权众筹"), "every word of the query must be on the page"
    assert not search(config, "pos机办"), "nor is a word made up of pieces"
    assert "【POS】" in search(config, "POS")[0]["snippet"]

    # an index written before this upgrade, as `finpatrol reindex` finds it
    db = StateDB(load_config(config).db_url)
    db.execute("UPDATE page_fts SET body = '快 付通 个人 办理 pos机办理 pos机 免费 领取 维权 维权qq群 已满 会员 突破 突破200人'")
    db.close()
    assert not search(config, "POS") and not search(config, "qq")
    result = cli("reindex", "--config", str(config), "--json")
    assert result.returncode == 0 and json_lines(result.stdout) == [{"pages": 1, "versions": 0}], result.stderr
    assert [r["url"] for r in search(config, "POS")] == [r["url"] for r in search(config, "qq")] == [home]


def test_a_page_gone_since_and_its_removed_hit_say_so_in_json_and_table(make_config, patrol):
    site_routes = {"/": page("首页", "欢迎访问。", ("/buyback.html", "/still.html")),
                   "/buyback.html": page("股权项目", "本项目保底回购，每年固定分红，欢迎认购。"),
                   "/still.html": page("另一项目", "该项目承诺保底回购，名额有限。")}
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "equity", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
        gone, still = site.url("/buyback.html"), site.url("/still.html")
        before = {r["url"]: r for r in search(config, "保底回购")}
        assert set(before) == {gone, still} and before[gone]["hit_id"]
        assert before[gone]["gone_at"] is None and before[gone]["hit_removed_at"] is None
        site_routes["/buyback.html"] = Reply(status=404, body=b"not found")
        assert patrol(config).returncode == 0

    after = {r["url"]: r for r in search(config, "保底回购")}
    assert set(after) == {gone, still}, "a gone page is still found: it is evidence"
    assert after[gone]["gone_at"] and after[gone]["hit_removed_at"], after[gone]
    assert after[gone]["hit_id"] == before[gone]["hit_id"] and after[gone]["hit_replaced_by"] is None
    assert (after[still]["gone_at"], after[still]["hit_removed_at"], after[still]["hit_replaced_by"]) == (None, None, None)
    assert set(after[still]) == {  # a stable interface: fields are added, none renamed or dropped
        "page_id", "hit_id", "target", "url", "final_url", "title", "labels", "risk", "score", "fetched_at",
        "snippet", "rank", "gone_at", "hit_removed_at", "hit_replaced_by",
        "hit_reclassified", "hit_taken_down", "current", "version_id", "version_first_seen", "version_last_seen"}

    table = cli("search", "保底回购", "--config", str(config))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    title_of = {url: lines[i - 1] for i, line in enumerate(lines) for url in (gone, still) if url in line}
    office = ZoneInfo("Asia/Shanghai")  # alerts.timezone by default: the day the office lives in
    day = datetime.fromisoformat(after[gone]["gone_at"]).astimezone(office).date().isoformat()
    assert "page gone " + day in title_of[gone] and "hit removed (rectified) " + day in title_of[gone]
    assert "gone" not in title_of[still] and "removed" not in title_of[still]


def run(coro):
    return asyncio.run(coro)


def test_the_cluster_finds_folded_and_inner_words_and_its_results_get_the_state_too(cluster, tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    sync_targets(db, [Target(id="alpha", name="阿尔法", business="p2p", urls=["http://alpha.example/"])])
    items = []
    for path, text in (("/wide", WIDE), ("/narrow", NARROW), ("/pos", POS)):
        body = f"<html><title>{path}</title><body>{text}</body></html>".encode()
        items.append(PageItem(
            target_id="alpha", url="http://alpha.example" + path, final_url="http://alpha.example" + path,
            status=200, headers={}, body=body, encoding="utf-8", fetched_at="2026-11-20T08:00:00+00:00",
            title=path, text=text, sha256=hashlib.sha256(body).hexdigest(),
            text_fingerprint=hashlib.sha256(text.encode()).hexdigest(),
            verdict={"labels": [], "risk": "none", "score": 0.0, "context": "", "findings": [], "yields": []}))
    save_pages(db, items, None)
    queue.enqueue_all(db)
    config = cluster.config()

    async def searches():
        es = make_async_client(config)
        try:
            await setup(es, config)
            pushed = await push_pending(db, es, config, refresh=True)
            assert pushed.error is None and pushed.rejected == 0
            return {q: await es_search(es, config, q, Filters()) for q in ("18%", "１８％", "POS机", "POS", "qq", "200")}
        finally:
            await es.close()

    try:
        got = run(searches())
        urls = {q: {r["url"].rsplit("/", 1)[1] for r in results} for q, results in got.items()}
        assert urls == {"18%": {"wide", "narrow"}, "１８％": {"wide", "narrow"}, "POS机": {"wide", "pos"},
                        "POS": {"wide", "pos"}, "qq": {"pos"}, "200": {"pos"}}
        embedded = {q: {r["url"].rsplit("/", 1)[1] for r in db.index.search(q, Filters(), 20)} for q in got}
        assert embedded == urls, "both indexes answer the same"
        from crawler.store.search import with_state

        stated = with_state(db, got["qq"])
        assert stated[0]["gone_at"] is None and stated[0]["hit_removed_at"] is None
    finally:
        db.close()
