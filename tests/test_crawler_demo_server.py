"""The demo HTTP server (crawler.demo.server) and the bundled demo sites, over real HTTP."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import crawler.demo.server as server_module
from crawler.demo.server import SITES_DIR, Reply, Request, SiteServer, routes, serve_demo_sites, static_site

DEMO_SITES = {"xinyingbao", "zhongchou", "compliantbank", "posagent", "gbkfinance", "forum", "jsplatform",
              "sousuo", "jinniubao", "tousu"}


def fetch(url: str, *, method: str = "GET", timeout: float = 5.0):
    """(status, headers, body, final_url) without raising on HTTP errors."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read(), resp.url
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read(), e.url


def raw_get(server: SiteServer, path: str, *, timeout: float = 5.0) -> http.client.HTTPResponse:
    """GET without following redirects or normalising the path."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    conn.request("GET", path)
    return conn.getresponse()


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.01)
    return True


@pytest.fixture
def site_server(request):
    """A SiteServer over one bundled demo site, named by the test's parameter."""
    with SiteServer(static_site(SITES_DIR / request.param), name=request.param) as server:
        yield server


# --- static_site ------------------------------------------------------------------------------

@pytest.mark.parametrize("site_server", ["xinyingbao"], indirect=True)
def test_static_pages_are_served_with_their_bytes_and_content_types(site_server):
    root = SITES_DIR / "xinyingbao"
    for path, file, ctype in [("/", "index.html", "text/html; charset=utf-8"),
                              ("/index.html", "index.html", "text/html; charset=utf-8"),
                              ("/news/", "news/index.html", "text/html; charset=utf-8"),
                              ("/products.html?term=3", "products.html", "text/html; charset=utf-8"),
                              ("/css/style.css", "css/style.css", "text/css; charset=utf-8")]:
        status, headers, body, _ = fetch(site_server.url(path))
        assert status == 200, path
        assert headers["Content-Type"] == ctype, path
        assert headers["Content-Length"] == str(len(body))
        assert headers["X-Powered-By"] == "PHP/5.6.27"  # from _site.json
        assert body == (root / file).read_bytes(), path
    assert site_server.requests == ["/", "/index.html", "/news/", "/products.html?term=3", "/css/style.css"]


@pytest.mark.parametrize("site_server", ["gbkfinance"], indirect=True)
def test_gbk_site_keeps_its_bytes_and_declares_charset_only_where_configured(site_server):
    root = SITES_DIR / "gbkfinance"
    status, headers, body, _ = fetch(site_server.url("/"))
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=gbk")
    assert body == (root / "index.html").read_bytes()
    assert "保本保息" in body.decode("gbk")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")

    status, headers, body, _ = fetch(site_server.url("/products.html"))
    assert headers["Content-Type"] == "text/html"  # only <meta charset="gbk"> tells
    assert b'<meta charset="gbk">' in body and "保本保息" in body.decode("gbk")

    status, headers, body, _ = fetch(site_server.url("/equity.html"))
    assert headers["Content-Type"] == "text/html"
    assert b'content="text/html; charset=gb2312"' in body
    assert "原始股认购" in body.decode("gb2312")
    assert body == (root / "equity.html").read_bytes()


@pytest.mark.parametrize("site_server", ["xinyingbao"], indirect=True)
def test_redirects_from_site_config_and_for_directories(site_server):
    resp = raw_get(site_server, "/invest.php")
    assert (resp.status, resp.headers["Location"]) == (301, "/products.html")
    status, _, body, final_url = fetch(site_server.url("/invest.php"))
    assert status == 200 and final_url == site_server.url("/products.html")
    assert body == (SITES_DIR / "xinyingbao/products.html").read_bytes()

    resp = raw_get(site_server, "/news")
    assert (resp.status, resp.headers["Location"]) == (301, "/news/")


@pytest.mark.parametrize("site_server", ["zhongchou"], indirect=True)
def test_redirect_keys_with_a_query_match_the_full_path(site_server):
    resp = raw_get(site_server, "/project.php?id=1001")
    assert (resp.status, resp.headers["Location"]) == (301, "/project-1001.html")
    assert raw_get(site_server, "/project.php?id=9").status == 404


@pytest.mark.parametrize("site_server", ["xinyingbao"], indirect=True)
def test_unknown_paths_hidden_files_and_traversal_are_404(site_server):
    for path in ["/nope.html", "/_site.json", "/../forum/index.html", "/%2e%2e/forum/index.html", "/css/../../server.py", "/a%00b.html"]:
        resp = raw_get(site_server, path)
        body = resp.read()
        assert resp.status == 404, path
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "页面不存在".encode() in body


@pytest.mark.parametrize("site_server", ["xinyingbao"], indirect=True)
def test_head_sends_length_but_no_body(site_server):
    conn = http.client.HTTPConnection("127.0.0.1", site_server.port, timeout=5)
    conn.request("HEAD", "/")
    resp = conn.getresponse()
    assert resp.status == 200
    assert int(resp.headers["Content-Length"]) == (SITES_DIR / "xinyingbao/index.html").stat().st_size
    assert resp.read() == b""
    conn.request("GET", "/robots.txt")  # same connection still usable after HEAD
    assert conn.getresponse().read().startswith(b"User-agent")


def test_placeholders_are_replaced_with_base_urls(tmp_path):
    (tmp_path / "index.html").write_bytes("<a href=\"__SITE_other__/x\">甲</a> __BASE_URL__".encode("gbk"))
    (tmp_path / "_site.json").write_text('{"charset": "gbk"}')
    (tmp_path / "logo.png").write_bytes(b"\x89PNG __BASE_URL__")
    subs = {"__SITE_other__": "http://127.0.0.1:1"}
    with SiteServer(static_site(tmp_path, substitutions=subs)) as server:
        _, headers, body, _ = fetch(server.url("/"))
        assert body == f'<a href="http://127.0.0.1:1/x">甲</a> {server.base_url}'.encode("gbk")
        assert fetch(server.url("/logo.png"))[2] == b"\x89PNG __BASE_URL__"  # binary files untouched
        subs["__SITE_other__"] = "http://127.0.0.1:2"  # read at request time
        assert b"127.0.0.1:2/x" in fetch(server.url("/"))[2]


def test_days_ago_placeholders_are_beijing_dates_at_request_time(tmp_path, monkeypatch):
    clock = [datetime(2024, 3, 1, 17, 30, tzinfo=timezone.utc)]  # 2024-03-02 01:30 in Beijing

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock[0].astimezone(tz)

    monkeypatch.setattr(server_module, "datetime", Clock, raising=False)
    (tmp_path / "t.html").write_bytes(
        '<time datetime="__DAYS_AGO_1__T21:15:00+08:00">__DAYS_AGO_1__ 21:15</time> 今天__DAYS_AGO_0__'.encode("gbk"))
    (tmp_path / "feed.xml").write_text("<pubDate>__RFC822_DAYS_AGO_1__ 08:00:00 +0800</pubDate>"
                                       "<pubDate>__RFC822_DAYS_AGO_10__ 08:00:00 +0800</pubDate>")
    (tmp_path / "_site.json").write_text('{"charset": "gbk"}')
    with SiteServer(static_site(tmp_path)) as server:
        body = fetch(server.url("/t.html"))[2].decode("gbk")
        assert body == '<time datetime="2024-03-01T21:15:00+08:00">2024-03-01 21:15</time> 今天2024-03-02', \
            "the day in Beijing, not in UTC"
        assert fetch(server.url("/feed.xml"))[2] == (b"<pubDate>Fri, 01 Mar 2024 08:00:00 +0800</pubDate>"
                                                     b"<pubDate>Wed, 21 Feb 2024 08:00:00 +0800</pubDate>")
        clock[0] += timedelta(days=3)  # computed per request, not when the server started
        assert "2024-03-04 21:15" in fetch(server.url("/t.html"))[2].decode("gbk")
    monkeypatch.undo()
    with SiteServer(static_site(SITES_DIR / "forum")) as server:  # the bundled posts, by the real clock
        yesterday = (datetime.now(timezone(timedelta(hours=8))) - timedelta(days=1)).date().isoformat()
        thread = fetch(server.url("/thread-104.html"))[2].decode()
        assert f'datetime="{yesterday}T21:15:00+08:00"' in thread and "DAYS_AGO" not in thread


# --- routes() and hostile replies --------------------------------------------------------------

def test_routes_value_kinds_and_query_matching():
    seen: list[Request] = []

    def echo(request: Request) -> Reply:
        seen.append(request)
        return Reply(201, {"Content-Type": "text/plain"}, request.path.encode())

    resolver = routes({"/": "<p>你好</p>", "/raw": b"\x00\x01", "/echo": echo, "/q?a=1": "exact", "/q": "plain",
                       "/boom": Reply(status=500, body=b"err"), "/bad": lambda r: 1 / 0})
    with SiteServer(resolver, name="routes") as server:
        status, headers, body, _ = fetch(server.url("/"))
        assert (status, headers["Content-Type"], body.decode()) == (200, "text/html; charset=utf-8", "<p>你好</p>")
        assert fetch(server.url("/raw"))[1]["Content-Type"] == "text/html"
        assert fetch(server.url("/raw"))[2] == b"\x00\x01"
        status, _, body, _ = fetch(server.url("/echo?x=1"))
        assert (status, body) == (201, b"/echo?x=1")
        assert seen[0].method == "GET" and seen[0].base_url == server.base_url
        assert seen[0].host == f"127.0.0.1:{server.port}" and seen[0].headers["host"] == seen[0].host
        assert fetch(server.url("/q?a=1"))[2] == b"exact"
        assert fetch(server.url("/q?a=2"))[2] == b"plain"
        assert fetch(server.url("/boom"))[:3:2] == (500, b"err")
        assert fetch(server.url("/bad"))[0] == 500  # resolver error is a 500, server lives on
        assert fetch(server.url("/missing"))[0] == 404
        assert fetch(server.url("/"))[0] == 200


def test_routes_mapping_is_read_at_request_time():
    pages = {"/": "v1"}
    with SiteServer(routes(pages)) as server:
        assert fetch(server.url("/"))[2] == b"v1"
        pages["/"] = "v2"
        pages["/new"] = "added"
        assert fetch(server.url("/"))[2] == b"v2"
        assert fetch(server.url("/new"))[2] == b"added"


def test_post_body_reaches_the_resolver():
    with SiteServer(routes({"/form": lambda r: Reply(body=r.method.encode() + b" " + r.body)})) as server:
        req = urllib.request.Request(server.url("/form"), data="name=张三".encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.read() == "POST name=张三".encode()


def test_delay_waits_before_headers():
    with SiteServer(routes({"/slow": Reply(body=b"late", delay=0.3)})) as server:
        assert fetch(server.url("/slow"))[2] == b"late"
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            urllib.request.urlopen(server.url("/slow"), timeout=0.05)


def test_stop_cuts_a_long_delay_short():
    server = SiteServer(routes({"/slow": Reply(body=b"x", delay=60)})).start()
    errors = []

    def client():
        try:
            urllib.request.urlopen(server.url("/slow"), timeout=30).read()
        except Exception as e:  # noqa: BLE001 - any failure is the expected outcome
            errors.append(e)

    thread = threading.Thread(target=client)
    thread.start()
    assert wait_until(lambda: server.requests == ["/slow"])
    server.stop()
    thread.join(timeout=30)  # a deadline well inside the 60 s delay
    assert not thread.is_alive() and errors


def test_reset_gives_the_client_a_connection_error_and_the_server_lives_on():
    with SiteServer(routes({"/rst": Reply(reset=True), "/": "ok"})) as server:
        with pytest.raises(ConnectionError):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/rst")
            conn.getresponse().read()
        assert fetch(server.url("/"))[2] == b"ok"


def test_hang_times_the_client_out_and_stop_is_prompt():
    server = SiteServer(routes({"/hang": Reply(body=b"x" * 10_000, hang=True)})).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=0.3)
    conn.request("GET", "/hang")
    resp = conn.getresponse()  # headers arrive
    assert resp.status == 200 and resp.headers["Content-Length"] == "10000"
    with pytest.raises(TimeoutError):
        resp.read()
    port = server.port
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(timeout=30)  # a hanging reply must not keep stop() waiting
    assert not stopper.is_alive()
    conn.close()
    with pytest.raises(ConnectionError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_chunked_and_content_encoding_bodies_are_sent_as_is():
    bomb = gzip.compress(b"\0" * 1_000_000)
    resolver = routes({"/chunked": Reply(body="分块传输".encode() * 100, chunked=True),
                       "/gz": Reply(headers={"Content-Encoding": "gzip", "Content-Type": "text/html"}, body=bomb)})
    with SiteServer(resolver) as server:
        resp = raw_get(server, "/chunked")
        assert resp.headers["Transfer-Encoding"] == "chunked" and resp.headers["Content-Length"] is None
        assert resp.read() == "分块传输".encode() * 100
        resp = raw_get(server, "/gz")
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.read() == bomb  # http.client does not decode


def test_keep_alive_and_a_client_that_disconnects_mid_response():
    big = b"x" * 5_000_000
    with SiteServer(routes({"/": "ok", "/big": Reply(body=big)})) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        for _ in range(50):
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"ok"
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        sock.close()  # RST while the server is still writing
        conn.request("GET", "/")  # the kept-alive connection still works
        assert conn.getresponse().read() == b"ok"
        assert server.requests.count("/") == 51 and "/big" in server.requests


def test_requests_are_recorded_from_many_threads():
    with SiteServer(routes({"/": "ok"})) as server:
        threads = [threading.Thread(target=lambda i=i: fetch(server.url(f"/?n={i}"))) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert sorted(server.requests) == sorted(f"/?n={i}" for i in range(40))


def test_server_lifecycle():
    server = SiteServer(routes({}), name="life")
    with pytest.raises(RuntimeError):
        server.base_url  # noqa: B018 - not started yet
    with server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.base_url)
        assert server.url("a.html") == server.base_url + "/a.html"
        port = server.port
    server.stop()  # idempotent
    with pytest.raises(ConnectionError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_preferred_port_is_used_when_free_and_replaced_when_taken():
    with SiteServer(routes({})) as first:
        with SiteServer(routes({}), port=first.port) as second:  # taken: falls back to a free port
            assert second.port != first.port
    port = first.port
    with SiteServer(routes({}), port=port) as again:
        assert again.port == port


# --- serve_demo_sites and the site contract ----------------------------------------------------

def test_serve_demo_sites_starts_every_site():
    with serve_demo_sites() as servers:
        assert set(servers) == DEMO_SITES
        assert len({s.port for s in servers.values()}) == len(servers)
        for site_id, server in servers.items():
            status, headers, _, _ = fetch(server.url("/"))
            assert status == 200, site_id
            assert headers["Content-Type"].startswith("text/html"), site_id
        # sites link to each other through __SITE_<id>__ placeholders
        thread = fetch(servers["forum"].url("/thread-101.html"))[2].decode()
        assert f'href="{servers["xinyingbao"].base_url}/"' in thread and "__SITE_" not in thread
        sitemap = fetch(servers["xinyingbao"].url("/sitemap.xml"))[2].decode()
        assert f"<loc>{servers['xinyingbao'].base_url}/promo/newbie.html</loc>" in sitemap
        robots = fetch(servers["xinyingbao"].url("/robots.txt"))[2].decode()
        assert f"Sitemap: {servers['xinyingbao'].base_url}/sitemap.xml" in robots
        ports = {k: s.port for k, s in servers.items()}
    with serve_demo_sites(ports=ports) as again:  # stable URLs across demo runs when ports are free
        assert {k: s.port for k, s in again.items()} == ports


def html_pages(site: str) -> dict[str, str]:
    root = SITES_DIR / site
    charset = json.loads((root / "_site.json").read_text()).get("charset", "utf-8") if (root / "_site.json").exists() else "utf-8"
    return {"/" + str(p.relative_to(root)): p.read_bytes().decode(charset) for p in root.rglob("*.html")}


def linked_paths(site: str) -> set[str]:
    """Every site-relative path some page links to, resolved against that page."""
    from urllib.parse import urljoin, urlsplit
    found = set()
    for path, html in html_pages(site).items():
        for href in re.findall(r'href="([^"#]+)"', html):
            if not href.startswith(("http", "__SITE_")):
                found.add(urlsplit(urljoin("http://h" + path, href)).path)
    return found


@pytest.mark.parametrize("site", sorted(DEMO_SITES))
def test_demo_site_contract(site):
    pages = html_pages(site)
    assert 5 <= len(pages) <= 12, (site, len(pages))
    for path, html in pages.items():
        assert "<title>" in html, (site, path)
        assert "ICP备" in html or site == "jsplatform" and path in ("/index.html", "/products.html"), (site, path)
    existing = set(pages) | {"/"} | {"/" + str(p.relative_to(SITES_DIR / site)) for p in (SITES_DIR / site).rglob("*")}
    redirects = json.loads((SITES_DIR / site / "_site.json").read_text()).get("redirects", {}) \
        if (SITES_DIR / site / "_site.json").exists() else {}
    dangling = {p for p in linked_paths(site) if p not in existing and p not in redirects and not p.endswith("/")}
    assert not dangling, (site, dangling)


def test_robots_disallows_a_linked_path_and_sitemaps_list_unlinked_pages():
    assert "Disallow: /admin/" in (SITES_DIR / "xinyingbao/robots.txt").read_text()
    assert "/admin/login.html" in linked_paths("xinyingbao")
    for site, hidden in [("xinyingbao", "/promo/newbie.html"), ("zhongchou", "/project-1004.html")]:
        assert f"__BASE_URL__{hidden}" in (SITES_DIR / site / "sitemap.xml").read_text()
        assert hidden not in linked_paths(site), site


def test_claims_sit_where_the_crawler_tests_expect_them():
    assert "保本保息" in html_pages("xinyingbao")["/index.html"]
    assert "随存随取" in html_pages("xinyingbao")["/huoqi.html"]
    assert "明股实债" in html_pages("zhongchou")["/project-1001.html"]
    assert "个人POS机办理" in html_pages("posagent")["/index.html"]
    assert "原始股认购" in html_pages("gbkfinance")["/equity.html"]
    assert "提现困难" in html_pages("forum")["/thread-101.html"]
    assert "集体报案" in html_pages("forum")["/thread-104.html"]
    for path, html in html_pages("compliantbank").items():
        text = html.replace("不承诺保本保息", "").replace("非保本", "")
        for phrase in ("保本", "稳赚", "零风险", "逾期", "维权", "资金池", "年化收益率高达"):
            assert phrase not in text, (path, phrase)
    shell = html_pages("jsplatform")["/index.html"]
    assert '<div id="app"></div>' in shell and "保本保息" not in shell
    assert "保本保息 年化15% 稳赚不赔" in (SITES_DIR / "jsplatform/static/app.js").read_text()
    assert not re.search(r"https?://", (SITES_DIR / "jsplatform/static/app.js").read_text())
