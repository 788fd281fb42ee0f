"""Whole patrols with the real CLI against real local sites on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import itertools
import re
import socket

from conftest import cli, json_lines
from crawler.config import load_config
from crawler.demo.server import Reply, SiteServer, routes, with_validators
from crawler.store.db import StateDB
from crawler.store.models import PatrolRun
from spiders.links import MAX_DATE_SHAPED


def page(title: str, body: str = "", links: tuple[str, ...] = ()) -> str:
    nav = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><header><ul class='nav'>{nav}</ul></header><article><h1>{title}</h1>"
        f"<p>{body or '本页介绍公司的基本情况、发展历程与联系方式，欢迎来电咨询合作事宜。'}</p></article>"
        "<footer>重庆测试科技有限公司 渝ICP备16000000号</footer></body></html>"
    )


def last_run(config_path) -> dict:
    result = cli("runs", "--config", str(config_path), "--json", "--limit", "1")
    assert result.returncode == 0, result.stderr
    return json_lines(result.stdout)[0]


def run_stats(config_path) -> dict:
    db = StateDB(load_config(config_path).db_url)
    with db.new_session() as session:
        return session.query(PatrolRun).order_by(PatrolRun.id.desc()).first().stats


def test_links_followed_within_scope_depth_and_page_limit(make_config, patrol):
    with SiteServer(routes({"/": page("外站首页")})) as other:
        site_routes = {
            "/": page("首页", links=("/a.html", "/b.html", other.url("/"), "mailto:x@y.cn", "/logo.png")),
            "/a.html": page("A", links=("/deep/1.html",)),
            "/b.html": page("B", links=("/",)),
            "/deep/1.html": page("深一层", links=("/deep/2.html",)),
            "/deep/2.html": page("深两层"),
        }
        with SiteServer(routes(site_routes)) as site:
            config = make_config([{"id": "site", "urls": [site.url("/")], "max_depth": 2}])
            result = patrol(config)
            assert result.returncode == 0, result.stderr
            assert "WARNING" not in result.stderr and "Warning" not in result.stderr, "nothing to warn of"
            fetched = set(site.requests)
            assert {"/", "/a.html", "/b.html", "/deep/1.html"} <= fetched
            assert "/deep/2.html" not in fetched, "depth 3 is beyond max_depth 2"
            assert "/logo.png" not in fetched
            assert other.requests == [], "another host:port is out of scope"
            assert last_run(config)["targets"]["site"]["pages"] == 4

        with SiteServer(routes(site_routes)) as site:
            config = make_config([{"id": "site", "urls": [site.url("/")], "max_pages": 2}])
            assert patrol(config).returncode == 0
            assert last_run(config)["targets"]["site"]["pages"] == 2


def test_robots_txt_honoured_and_sitemap_read(make_config, patrol):
    site_routes = {
        "/robots.txt": Reply(headers={"Content-Type": "text/plain"}, body=b"User-agent: *\nDisallow: /private/\n"),
        "/": page("首页", links=("/private/board.html", "/news.html")),
        "/news.html": page("新闻"),
        "/private/board.html": page("内部"),
        "/hidden.html": page("只在站点地图里"),
        "/sitemap.xml": Reply(
            headers={"Content-Type": "application/xml"},
            body=b'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<url><loc>__BASE__/hidden.html</loc></url></urlset>",
        ),
    }
    with SiteServer(routes(site_routes)) as site:
        site_routes["/sitemap.xml"] = Reply(
            headers={"Content-Type": "application/xml"},
            body=site_routes["/sitemap.xml"].body.replace(b"__BASE__", site.base_url.encode()),
        )
        config = make_config([{"id": "site", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
        assert "/hidden.html" in site.requests
        assert "/news.html" in site.requests
        assert "/private/board.html" not in site.requests

    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "site", "urls": [site.url("/")], "obey_robots": False}])
        assert patrol(config).returncode == 0
        assert "/private/board.html" in site.requests

def test_a_long_sitemap_does_not_crowd_out_the_links_of_the_listed_urls(make_config, patrol):
    """Every URL the config lists is read before the sitemap: their links are patrolled, the
    sitemap fills the rest of max_pages."""
    archive = [f"/archive/{n}.html" for n in range(20)]
    locs = "".join(f"<url><loc>__BASE__{path}</loc></url>" for path in archive)
    site_routes = {
        "/": page("首页", links=("/about.html",)),
        "/about.html": page("关于我们"),
        "/products/": page("理财产品", links=("/products/a.html", "/promo.html")),
        "/products/a.html": page("稳盈宝"),
        "/promo.html": page("新手活动"),
        **{path: page("往期公告") for path in archive},
    }
    with SiteServer(routes(site_routes)) as site:
        site_routes["/sitemap.xml"] = Reply(
            headers={"Content-Type": "application/xml"},
            body=('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                  f"{locs}</urlset>").replace("__BASE__", site.base_url).encode(),
        )
        config = make_config([{"id": "site", "urls": [site.url("/"), site.url("/products/")], "max_pages": 8}])
        assert patrol(config).returncode == 0
        fetched = set(site.requests)
    assert {"/", "/about.html", "/products/", "/products/a.html", "/promo.html", "/sitemap.xml"} <= fetched
    assert len(fetched & set(archive)) == 3, "the sitemap fills what the listed URLs' links left of max_pages"
    assert last_run(config)["targets"]["site"]["pages"] == 8



def test_gbk_page_without_charset_header_is_decoded_classified_and_searchable(make_config, patrol):
    body = page("金鼎财富", "本平台承诺保本保息，稳赚不赔，年化收益率高达18%。").replace(
        "<meta charset='utf-8'>", "<meta charset='gbk'>"
    )
    with SiteServer(routes({"/": Reply(headers={"Content-Type": "text/html"}, body=body.encode("gbk"))})) as site:
        home = site.url("/")
        config = make_config([{"id": "gbk", "urls": [home]}])
        assert patrol(config).returncode == 0
    hits = json_lines(cli("hits", "--config", str(config), "--json").stdout)
    assert len(hits) == 1
    assert {"guaranteed_return", "high_yield"} <= set(hits[0]["labels"])
    assert any(f["text"] == "保本保息" or "保本保息" in f["text"] for f in hits[0]["findings"])
    found = json_lines(cli("search", "保本保息", "--config", str(config), "--json").stdout)
    assert [r["url"] for r in found] == [home]
    assert "【保本保息】" in found[0]["snippet"]
    shorter = json_lines(cli("search", "保本", "--config", str(config), "--json").stdout)
    assert [r["url"] for r in shorter] == [home], "a word inside a longer word is found too"
    assert not json_lines(cli("search", "股权众筹", "--config", str(config), "--json").stdout)


def test_a_big5_page_in_traditional_characters_is_classified(make_config, patrol):
    body = page("金鼎財富", "本平台穩賺不賠，個人POS機免費辦理，資金池產品隨存隨取。").replace(
        "<meta charset='utf-8'>", "<meta charset='big5'>").replace("重庆测试", "重慶測試").replace("备", "備").replace("号", "號")
    with SiteServer(routes({"/": Reply(headers={"Content-Type": "text/html"}, body=body.encode("big5"))})) as site:
        config = make_config([{"id": "big5", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
    (hit,) = json_lines(cli("hits", "--config", str(config), "--json").stdout)
    assert {"guaranteed_return", "payment_violation", "fund_pool"} <= set(hit["labels"]), hit
    assert "穩賺不賠" in {f["text"] for f in hit["findings"]}, "findings quote the page as written"


def test_reindex_gives_pages_indexed_by_an_older_version_the_words_cut_today(make_config, patrol):
    body = page("快付通", "快付通个人POS机办理，免费领取，无需营业执照。")
    with SiteServer(routes({"/": body})) as site:
        config = make_config([{"id": "pos", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
    assert json_lines(cli("search", "POS机", "--config", str(config), "--json").stdout)
    db = StateDB(load_config(config).db_url)
    # what an index written before lexicon words inside longer ones were cut looks like
    db.execute("UPDATE page_fts SET body = '快 付通 个人 办理 pos机办理 免费 领取 无需 营业执照'")
    db.close()
    assert not json_lines(cli("search", "POS机", "--config", str(config), "--json").stdout)

    result = cli("reindex", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout) == [{"pages": 1, "versions": 0}]
    found = json_lines(cli("search", "POS机", "--config", str(config), "--json").stdout)
    assert [r["url"] for r in found] == [site.url("/")]


def test_http_errors_timeouts_and_resets_are_counted_not_fatal(make_config, patrol):
    site_routes = {
        "/": page("首页", links=("/ok.html", "/missing.html", "/error.html", "/slow.html", "/reset.html")),
        "/ok.html": page("正常"),
        "/error.html": Reply(status=500, body=b"internal error"),
        "/slow.html": Reply(hang=True, body=b"<html><body>never ends"),
        "/reset.html": Reply(reset=True),
    }
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "site", "urls": [site.url("/")]}], download_timeout=2)
        result = patrol(config)
    assert result.returncode == 0, result.stderr
    counts = last_run(config)["targets"]["site"]
    assert counts["pages"] == 2
    assert counts["errors"]["http_404"] == 1
    assert counts["errors"]["http_500"] == 1
    assert counts["errors"]["timeout"] == 1
    assert counts["errors"]["connection_lost"] == 1
    assert counts["failed"] == 4


def test_an_unreachable_site_is_one_log_line_per_failure_and_a_count(make_config, patrol):
    with socket.socket() as probe:  # a port nothing listens on once this socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = make_config([{"id": "down", "urls": [f"http://127.0.0.1:{port}/"]}])
    result = patrol(config)
    assert result.returncode == 1, "every target failed"
    # robots.txt was refused three times in a row (crawler.host_breaker): the start URL is not sent
    assert last_run(config)["targets"]["down"]["errors"] == {"host_unresponsive": 1}
    (line,) = result.stderr.splitlines()  # the host breaker's warning; robots.txt's error is INFO
    assert "did not answer 3 times in a row (refused×3)" in line, result.stderr
    assert "Traceback" not in result.stderr, "an outage is not a crash: -v shows tracebacks"
    verbose = cli("-v", "patrol", "--config", str(config))
    assert "Traceback" in verbose.stderr and "Connection refused" in verbose.stderr


def test_private_addresses_refused_unless_allowed_for_that_site(make_config, patrol):
    with SiteServer(routes({"/": page("首页"), "/secret": page("内网")})) as internal:
        site_routes = {
            "/": page("首页", links=("/go",)),
            "/go": Reply(status=302, headers={"Location": f"http://localhost:{internal.port}/secret"}),
        }
        with SiteServer(routes(site_routes)) as site:
            config = make_config(
                [
                    {"id": "allowed", "urls": [site.url("/")], "allow_private_networks": True},
                    {"id": "named", "urls": [f"http://localhost:{internal.port}/"]},
                ],
                allow_private_networks=False,
            )
            result = patrol(config)
            assert "/go" in site.requests
        assert internal.requests == [], "neither the redirect nor a DNS name may reach a private address"
    run = last_run(config)
    assert run["targets"]["allowed"]["errors"]["private_network"] == 1
    assert run["targets"]["named"]["errors"]["private_network"] == 1
    assert run["status"] == "partial" and result.returncode == 0


def calendar(request):
    path = request.path.split("?")[0]
    if path == "/":
        return Reply(body=page("首页", links=("/cal/2026-01", "/list?p=1")).encode())
    if path.startswith("/cal/"):
        year, month = map(int, path.rsplit("/", 1)[1].split("-"))
        nxt = f"/cal/{year + month // 12}-{month % 12 + 1:02d}"
        return Reply(body=page(f"{year}年{month}月", links=(nxt,)).encode())
    if path == "/list":
        n = int(request.path.split("p=")[1])
        return Reply(body=page(f"第{n}页", links=(f"/list?p={n + 1}", f"/list?p={n + 2}")).encode())
    if path == "/bomb":
        return Reply(headers={"Content-Encoding": "gzip"}, body=BOMB)
    return None


BOMB = gzip.compress(b"<html>" + b"0" * (64 * 1024 * 1024))


def test_traps_and_compression_bombs_stop_at_their_limits(make_config, patrol):
    with SiteServer(calendar) as site:
        config = make_config([{"id": "trap", "urls": [site.url("/"), site.url("/bomb")],
                               "max_pages": 5000, "max_depth": 50}])
        result = patrol(config)
        calendar_fetches = [p for p in site.requests if p.startswith("/cal/")]
        list_fetches = [p for p in site.requests if p.startswith("/list")]
    assert result.returncode == 0, result.stderr
    assert len(calendar_fetches) <= MAX_DATE_SHAPED
    assert len(list_fetches) <= 60
    stats = run_stats(config)
    assert stats["patrol/trap/calendar"] >= 1
    assert stats["patrol/trap/query_variants"] >= 1
    assert last_run(config)["targets"]["trap"]["failed"] >= 1, "the bomb is dropped and counted"
    assert stats["gc/collections"] >= 0, "crawler.gc_tuning ran and its count reached the run record"


def test_second_patrol_of_unchanged_site_creates_no_new_hits(make_config, patrol):
    site_routes = {
        "/": page("鑫盈宝", "平台承诺保本保息，年化收益率高达18%，稳赚不赔。", links=("/p.html",)),
        "/p.html": page("产品", "月息2分，到期刚性兑付。"),
    }
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "p2p", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
        first = json_lines(cli("hits", "--config", str(config), "--json").stdout)
        assert patrol(config).returncode == 0
        second = json_lines(cli("hits", "--config", str(config), "--json").stdout)
        assert last_run(config)["targets"]["p2p"]["new_hits"] == 0
        assert [h["id"] for h in first] == [h["id"] for h in second]
        assert all(b["last_seen"] >= a["last_seen"] for a, b in zip(first, second))

        site_routes["/p.html"] = page("产品", "日息0.5%，到期刚性兑付，资金池随存随取。")
        assert patrol(config).returncode == 0
        third = json_lines(cli("hits", "--config", str(config), "--json").stdout)
    assert len(third) == len(first) + 1, "a changed verdict opens a new hit"
    assert last_run(config)["targets"]["p2p"]["new_hits"] == 1


def test_a_page_whose_markup_changes_on_every_fetch_keeps_its_search_terms(make_config, patrol):
    """A new body with the stored title and text (a timestamp in the markup) is not cut into terms again."""
    served = itertools.count()
    site_routes = {
        "/": page("鑫盈宝", links=("/a.html", "/b.html")),
        "/a.html": lambda request: Reply(body=page("关于我们", "公司主营供应链金融服务。").replace(
            "</footer>", f"<!-- 生成于 {next(served)} --></footer>").encode()),
        "/b.html": page("产品", "月息2分，到期刚性兑付。"),
    }
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "p2p", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
        db = StateDB(load_config(config).db_url)
        # a term no cutting of today's text yields: it survives only if the row is left alone
        db.execute("UPDATE page_fts SET body = body || ' oldmarker' "
                   "WHERE rowid = (SELECT id FROM pages WHERE url LIKE '%/a.html')")
        db.close()
        assert search(config, "oldmarker") == ["a.html"]
        site_routes["/b.html"] = page("产品", "活期理财随存随取，资金池运作。")
        assert patrol(config).returncode == 0
    stats = run_stats(config)
    assert stats["extract/unchanged"] == 1, "/ came back byte for byte"
    assert stats["extract/same_text"] == 1, "/a.html came back with another body and the same text"
    assert stats["extract/pages"] == 2
    assert search(config, "oldmarker") == ["a.html"], "its stored terms stand"
    assert search(config, "供应链金融") == ["a.html"]
    assert search(config, "资金池") == ["b.html"], "a changed text is cut again"
    found = json_lines(cli("search", "刚性兑付", "--config", str(config), "--json").stdout)
    assert [(r["url"].rsplit("/", 1)[1], r["current"]) for r in found] == [("b.html", False)], \
        "the words it no longer says: found in its earlier version only"


def search(config, words: str) -> list[str]:
    """File names of the pages the CLI's search finds for ``words``."""
    return [r["url"].rsplit("/", 1)[1] for r in json_lines(cli("search", words, "--config", str(config), "--json").stdout)]


def test_unchanged_pages_are_revalidated_and_their_stored_links_followed(make_config, patrol):
    """A server that sends ETags answers the re-patrol with 304s; nothing is lost by that."""
    site_routes = {
        "/": page("鑫盈宝", "平台承诺保本保息，稳赚不赔。", links=("/a.html",)),
        "/a.html": page("关于我们", links=("/b.html",)),
        "/b.html": page("产品", "月息2分，到期刚性兑付。"),
    }
    plain = routes(site_routes)
    answered: list[tuple[str, bool, int]] = []  # (path, asked conditionally, status)

    def resolver(request):
        reply = with_validators(request, plain(request)) if request.path.endswith(("/", ".html")) else None
        if reply is not None:
            answered.append((request.path, "If-None-Match" in request.headers, reply.status))
        return reply

    def patrol_answers(config) -> dict[str, tuple[bool, int]]:
        answered.clear()
        assert patrol(config).returncode == 0
        return {path: (asked, status) for path, asked, status in answered}

    with SiteServer(resolver) as site:
        config = make_config([{"id": "p2p", "urls": [site.url("/")]}])
        first = patrol_answers(config)
        assert first == {"/": (False, 200), "/a.html": (False, 200), "/b.html": (False, 200)}
        hits = json_lines(cli("hits", "--config", str(config), "--json").stdout)
        assert len(hits) == 2

        again = patrol_answers(config)
        assert again == {"/": (True, 304), "/a.html": (True, 304), "/b.html": (True, 304)}, \
            "/b.html is linked only from /a.html: its stored links were followed"
        run = last_run(config)["targets"]["p2p"]
        assert (run["pages"], run["new_hits"]) == (3, 0)
        assert run_stats(config)["patrol/target/p2p/not_modified"] == 3
        rehits = json_lines(cli("hits", "--config", str(config), "--json").stdout)
        assert [h["id"] for h in rehits] == [h["id"] for h in hits]
        assert all(b["last_seen"] > a["last_seen"] or b["last_seen"] == a["last_seen"] for a, b in zip(hits, rehits))

        site_routes["/a.html"] = page("关于我们", "活期理财随存随取，资金池运作。")  # a claim, and no link to /b.html
        changed = patrol_answers(config)
        assert changed["/a.html"] == (True, 200), "a changed page gets a new ETag and is fetched whole"
        assert changed["/b.html"] == (True, 304), "no longer linked, but its hit is open: asked for directly"
        assert run_stats(config)["patrol/target/p2p/revisited"] == 1, "the new version's links replace the stored ones"
        assert last_run(config)["targets"]["p2p"]["new_hits"] == 1
        final = {h["url"].rsplit("/", 1)[1]: h for h in json_lines(cli("hits", "--config", str(config), "--json").stdout)}
    assert final["a.html"]["removed_at"] is None
    assert final["b.html"]["removed_at"] is None, "/b.html is no longer linked but still online: its hit stays open"


def test_patrol_at_a_terminal_shows_live_progress_then_the_summary(make_config):
    """At a terminal the progress table is redrawn while the crawl runs (rich Live)."""
    import os
    import pty
    import subprocess
    import sys

    from conftest import REPO

    site_routes = {"/": page("首页", links=tuple(f"/p{i}.html" for i in range(30)))}
    site_routes |= {f"/p{i}.html": page(f"第{i}页") for i in range(30)}
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "site", "urls": [site.url("/")]}])
        leader, follower = pty.openpty()
        env = os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "120", "TERM": "xterm"}
        process = subprocess.Popen([sys.executable, "-m", "crawler.cli", "patrol", "--config", str(config)],
                                   cwd=REPO, env=env, stdin=follower, stdout=follower, stderr=follower)
        os.close(follower)
        screen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            screen += chunk
        os.close(leader)
        assert process.wait(timeout=240) == 0, screen.decode(errors="replace")[-3000:]
    text = screen.decode("utf-8", errors="replace")
    assert "巡查进度 patrol progress" in text, "the live table is drawn"
    assert "patrol run 1: ok (finished)" in text, "the summary follows"
    assert re.search(r"│ site\s+│ 31\s+│ 0\s+│", text), "31 pages fetched, none failed"


def test_a_meta_refresh_is_followed_like_a_redirect(make_config, patrol):
    def refresh(equiv: str, to: str) -> str:
        return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
                f"<meta http-equiv='{equiv}' content='0; url={to}'></head><body>跳转中</body></html>")

    site_routes = {
        "/": page("首页", links=("/go.html", "/up.html")),
        "/go.html": refresh("Refresh", "/real.html"),
        "/up.html": refresh("REFRESH", "/real2.html"),
        "/real.html": page("真实页面", "本平台承诺保本保息，稳赚不赔。"),
        "/real2.html": page("另一页面"),
    }
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "site", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
        assert {"/real.html", "/real2.html"} <= set(site.requests)
        hits = json_lines(cli("hits", "--config", str(config), "--json").stdout)
        assert [h["url"] for h in hits] == [site.url("/go.html")], "the claim behind the refresh is found"


def test_a_target_of_kind_forum_is_read_as_posts_about_others(make_config, patrol):
    """A forum registered as a target: a victim quoting the platform's promise is no advert of the forum's."""
    post = page("鑫盈宝还能提现吗", "说好的风险准备金先行赔付呢？现在提现不了，投资人都去维权了。")
    with SiteServer(routes({"/": post})) as forum, SiteServer(routes({"/": post})) as platform:
        config = make_config([{"id": "forum", "name": "江津论坛", "urls": [forum.url("/")], "kind": "forum"},
                              {"id": "platform", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"],
                               "urls": [platform.url("/")]}])
        assert patrol(config).returncode == 0
    hits = {h["target"]: h for h in json_lines(cli("hits", "--config", str(config), "--json").stdout)}
    assert hits["platform"]["context"] == "promotional" and "guaranteed_return" in hits["platform"]["labels"]
    assert hits["forum"]["context"] == "reporting", hits["forum"]
    assert "guaranteed_return" not in hits["forum"]["labels"]
    assert {"collapse_signal", "mass_incident"} & set(hits["forum"]["labels"]), "the post still counts as opinion"
    shown = json.loads(cli("show", str(hits["forum"]["id"]), "--config", str(config), "--json").stdout)
    assert (shown["attributed_to"]["id"], shown["attributed_to"]["reason"]) == ("platform", "name"), shown
    dossier = json.loads(cli("dossier", "platform", "--config", str(config), "--format", "json").stdout)
    assert hits["forum"]["id"] in {h["id"] for h in dossier["hits"]}, "the post is in the file of the one it names"


def test_a_bilingual_site_is_asked_for_its_chinese_pages(make_config, patrol):
    """Such a platform picks the language from Accept-Language; its English page hides the claim."""

    def home(request):
        if (request.headers.get("Accept-Language") or "").lower().startswith("zh"):
            return Reply(headers={"Content-Type": "text/html; charset=utf-8"},
                         body=page("鑫盈宝", "本平台承诺保本保息，稳赚不赔。").encode())
        return Reply(headers={"Content-Type": "text/html; charset=utf-8"},
                     body=page("Xinyingbao", "Welcome to our lending platform.").encode())

    with SiteServer(routes({"/": home})) as site:
        config = make_config([{"id": "p2p", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
    (hit,) = json_lines(cli("hits", "--config", str(config), "--json").stdout)
    assert "guaranteed_return" in hit["labels"], hit


def test_show_says_where_a_redirected_url_led(make_config, patrol):
    site_routes = {"/": page("首页", "欢迎访问。", ("/invest.php",)),
                   "/invest.php": Reply(status=302, headers={"Location": "/products.html"}),
                   "/products.html": page("产品", "本平台承诺保本保息，稳赚不赔。")}
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "p2p", "urls": [site.url("/")]}])
        assert patrol(config).returncode == 0
        (hit,) = json_lines(cli("hits", "--config", str(config), "--json").stdout)
        shown = cli("show", str(hit["id"]), "--config", str(config))
        (as_json,) = json_lines(cli("show", str(hit["id"]), "--config", str(config), "--json").stdout)
        assert hit["url"] == site.url("/invest.php")
        assert f"{site.url('/invest.php')}  → {site.url('/products.html')}" in shown.stdout, shown.stdout
        assert as_json["final_url"] == site.url("/products.html")
