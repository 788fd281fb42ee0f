"""``finpatrol search`` finds earlier versions of pages: words a platform edited away or
reworded are still found (real patrols of local sites, the real CLI and FTS5), marked as
an earlier version with when it was seen and what became of its hit."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import yaml

from conftest import cli, closed_port_url, json_lines
from crawler.config import Target, load_config
from crawler.demo.server import Reply, SiteServer, routes
from crawler.items import PageItem
from crawler.store.db import StateDB
from crawler.store.pages import save_pages
from crawler.store.runs import sync_targets
from crawler.store.search import Filters

CLAIM = "本平台承诺保本保息，到期刚性兑付，欢迎投资。"
RECTIFIED = "本平台严格遵守监管规定，投资有风险，请谨慎选择。"
REWORDED = "本平台本金无忧，收益稳赚不赔，欢迎投资。"
OFFICE = ZoneInfo("Asia/Shanghai")  # alerts.timezone by default


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><article><h1>{title}</h1><p>{body}</p></article></body></html>")


def home(*links: str) -> str:
    nav = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>首页</title></head><body><ul>{nav}</ul></body></html>"


def search(config, *args: str) -> list[dict]:
    result = cli("search", *args, "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    return json_lines(result.stdout)


def hits_by_url(config) -> dict[str, dict]:
    """URL → the page's open hit."""
    rows = json_lines(cli("hits", "--config", str(config), "--json").stdout)
    return {h["url"]: h for h in rows if h["removed_at"] is None}


def day(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(OFFICE).date().isoformat()


def edited_site(make_config, patrol, new_text: str):
    """Patrol a site whose /p.html says CLAIM, make it say ``new_text``, patrol again;
    returns (config, the page's URL, its hit after the first patrol)."""
    site_routes = {"/": home("/p.html"), "/p.html": page("理财产品", CLAIM)}
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "licai", "urls": [site.url("/")]}])
        url = site.url("/p.html")
        assert patrol(config).returncode == 0
        old_hit = hits_by_url(config)[url]
        site_routes["/p.html"] = page("理财产品", new_text)
        assert patrol(config).returncode == 0
    return config, url, old_hit


def test_a_claim_edited_away_is_still_found_as_an_earlier_version_with_its_rectified_hit(make_config, patrol):
    config, url, old_hit = edited_site(make_config, patrol, RECTIFIED)
    assert "guaranteed_return" in old_hit["labels"]

    found = search(config, "刚性兑付")
    assert len(found) == 1, found
    r = found[0]
    assert r["url"] == url and r["current"] is False and r["version_id"]
    assert r["hit_id"] == old_hit["id"] and r["labels"] == old_hit["labels"] and r["risk"] == old_hit["risk"]
    assert r["hit_removed_at"] and r["hit_replaced_by"] is None and r["hit_reclassified"] is False, "rectified"
    assert r["gone_at"] is None
    assert r["version_first_seen"] == old_hit["first_seen"] and r["version_last_seen"] == old_hit["last_seen"]
    assert r["fetched_at"] == r["version_last_seen"], "fetched_at: the last fetch that had these words"
    assert "【刚性兑付】" in r["snippet"], "cut from the earlier version's own text"
    assert set(r) == {  # a stable interface: the fields of every result, and the version's
        "page_id", "hit_id", "target", "url", "final_url", "title", "labels", "risk", "score", "fetched_at",
        "snippet", "rank", "gone_at", "hit_removed_at", "hit_replaced_by", "hit_reclassified", "hit_taken_down",
        "current", "version_id", "version_first_seen", "version_last_seen"}

    now = search(config, "谨慎选择")
    assert [(x["url"], x["current"], x["version_id"], x["hit_id"]) for x in now] == [(url, True, None, None)]

    table = cli("search", "刚性兑付", "--config", str(config))
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0]
    seen = f"{day(r['version_first_seen'])} – {day(r['version_last_seen'])}"
    assert f"earlier version, seen {seen}, hit {old_hit['id']}" in header, header
    assert f"hit removed (rectified) {day(r['hit_removed_at'])}" in header, header
    assert "earlier version" not in cli("search", "谨慎选择", "--config", str(config)).stdout


def test_a_reworded_claim_finds_the_old_words_in_the_old_version_and_the_new_in_the_page(make_config, patrol):
    config, url, old_hit = edited_site(make_config, patrol, REWORDED)
    new_hit = hits_by_url(config)[url]
    assert new_hit["id"] != old_hit["id"]

    old = search(config, "刚性兑付")
    assert [(r["current"], r["hit_id"], r["hit_replaced_by"]) for r in old] == [(False, old_hit["id"], new_hit["id"])]
    assert [(r["current"], r["hit_id"]) for r in search(config, "稳赚不赔")] == [(True, new_hit["id"])]

    both = search(config, "欢迎投资")  # words of both versions: the page now, then what it said before
    assert [(r["url"], r["current"], r["hit_id"]) for r in both] == [
        (url, True, new_hit["id"]), (url, False, old_hit["id"])]
    header = cli("search", "刚性兑付", "--config", str(config)).stdout.splitlines()[0]
    assert f"hit replaced by hit {new_hit['id']}" in header and "earlier version, seen" in header, header


def test_an_unchanged_page_and_one_whose_counter_moves_are_one_result_each(make_config, patrol):
    counter = {"n": 0}

    def counted(_request):
        counter["n"] += 1
        body = page("计数页", f"{CLAIM}本页访问量 {counter['n']} 次。")
        return Reply(headers={"Content-Type": "text/html; charset=utf-8"}, body=body.encode())

    site_routes = {"/": home("/p.html", "/c.html"), "/p.html": page("理财产品", CLAIM), "/c.html": counted}
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "licai", "urls": [site.url("/")]}])
        for _ in range(3):
            assert patrol(config).returncode == 0
        urls = {site.url("/p.html"), site.url("/c.html")}
    db = sqlite3.connect(load_config(config).db_url.removeprefix("sqlite:///"))
    assert db.execute("SELECT count(*) FROM version_fts").fetchone()[0] == 2, "the counter page's two earlier versions"
    db.close()

    found = search(config, "刚性兑付")
    assert sorted(r["url"] for r in found) == sorted(urls) and all(r["current"] for r in found), \
        "an earlier version with the same hit as its page now repeats it: left out"


def test_filters_apply_to_earlier_versions_by_the_hit_they_had_and_when_they_were_seen(tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    sync_targets(db, [Target(id=t, name=t, business="p2p", urls=[f"http://{t}.example/"]) for t in ("alpha", "beta")])
    claim = {"labels": ["guaranteed_return"], "risk": "high", "score": 3.0, "context": "", "yields": [],
             "findings": [{"category": "guaranteed_return", "rule_id": "gr.x", "text": "刚性兑付"}]}
    clean = {"labels": [], "risk": "none", "score": 0.0, "context": "", "findings": [], "yields": []}

    def item(target: str, text: str, when: str, verdict: dict) -> PageItem:
        body = f"<html><body>{text}</body></html>".encode()
        url = f"http://{target}.example/p"
        return PageItem(target_id=target, url=url, final_url=url, status=200, headers={}, body=body,
                        encoding="utf-8", fetched_at=when, title="产品", text=text,
                        sha256=hashlib.sha256(body).hexdigest(),
                        text_fingerprint=hashlib.sha256(text.encode()).hexdigest(), verdict=verdict)

    try:
        for when in ("2026-11-20T02:00:00+00:00", "2026-11-25T02:00:00+00:00"):
            save_pages(db, [item("alpha", CLAIM, when, claim)], None)
        save_pages(db, [item("alpha", RECTIFIED, "2026-11-28T02:00:00+00:00", clean),
                        item("beta", RECTIFIED, "2026-11-28T02:00:00+00:00", clean)], None)

        def found(**filters) -> list[tuple[str, bool]]:
            return [(r["target"], r["current"]) for r in db.index.search("刚性兑付", Filters(**filters))]

        assert found() == [("alpha", False)]
        assert found(targets=("alpha",)) == [("alpha", False)] and found(targets=("beta",)) == []
        assert found(category="guaranteed_return") == [("alpha", False)], "the category of the hit it had"
        assert found(category="fund_pool") == []
        assert found(risk="high") == [("alpha", False)] and found(risk="none") == []
        day_ = lambda d: datetime.fromisoformat(d)  # noqa: E731
        assert found(since=day_("2026-11-24T00:00+00:00")) == [("alpha", False)], "seen after the span began"
        assert found(since=day_("2026-11-26T00:00+00:00")) == [], "last seen before it"
        assert found(until=day_("2026-11-21T00:00+00:00")) == [("alpha", False)], "first seen before it ended"
        assert found(until=day_("2026-11-20T00:00+00:00")) == []
        assert [r["target"] for r in db.index.search("谨慎选择", Filters(category="guaranteed_return"))] == []
    finally:
        db.close()


def test_reindex_rebuilds_the_earlier_versions_and_an_upgraded_state_db_is_told_to(make_config, patrol):
    config, url, _ = edited_site(make_config, patrol, RECTIFIED)
    assert [r["current"] for r in search(config, "刚性兑付")] == [False]
    state = load_config(config).db_url.removeprefix("sqlite:///")
    db = sqlite3.connect(state)
    db.execute("DROP TABLE version_fts")  # a state DB of a finpatrol before earlier versions were indexed
    db.commit()
    db.close()

    result = cli("search", "刚性兑付", "--config", str(config), "--json")
    assert result.returncode == 0 and json_lines(result.stdout) == [], result.stdout
    assert "1 earlier page versions are not searchable yet" in result.stderr and "finpatrol reindex" in result.stderr

    result = cli("reindex", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout) == [{"pages": 2, "versions": 1}]
    found = cli("search", "刚性兑付", "--config", str(config), "--json")
    assert [(r["url"], r["current"]) for r in json_lines(found.stdout)] == [(url, False)]
    assert "not searchable" not in found.stderr


def test_with_a_cluster_configured_embedded_searches_the_earlier_versions_without_it(make_config, patrol):
    config, url, _ = edited_site(make_config, patrol, RECTIFIED)
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    document["elasticsearch"] = {"hosts": [closed_port_url().rstrip("/")], "flavor": "opensearch"}
    config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")

    assert cli("search", "刚性兑付", "--config", str(config), "--json").returncode == 1, "the cluster is down"
    found = search(config, "刚性兑付", "--embedded")
    assert [(r["url"], r["current"]) for r in found] == [(url, False)]
