"""The per-host circuit breaker (crawler.host_breaker): whole patrols against real local
servers, then the middleware on its own.

A dead host here is a SiteServer answering through ``Silence``: it accepts the connection,
reads the request and never answers, as a collapsed platform's host often does.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from scrapy import Request
from scrapy.exceptions import CannotResolveHostError, DownloadTimeoutError, ResponseDataLossError

from conftest import cli, closed_port_url, json_lines
from crawler.demo.server import Reply, SiteServer, routes
from crawler.host_breaker import HostBreakerMiddleware, HostUnresponsive
from test_spiders_site_patrol import last_run, page, run_stats


class Silence:
    """A resolver (or route) that reads the request and never answers it, until the ``with`` ends."""

    def __init__(self):
        self.ended = threading.Event()

    def __call__(self, request) -> None:
        self.ended.wait()

    def __enter__(self) -> Silence:
        return self

    def __exit__(self, *exc_info):
        self.ended.set()


def breaker_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "WARNING crawler.host_breaker" in line]


def test_a_dead_host_is_cut_after_three_failures_and_the_others_are_crawled(make_config, patrol):
    healthy_routes = {"/": page("首页", links=("/a.html", "/b.html")), "/a.html": page("A"), "/b.html": page("B")}
    refused = closed_port_url()
    with Silence() as silence, SiteServer(silence) as dead, SiteServer(routes(healthy_routes)) as healthy:
        config = make_config([
            {"id": "dead", "urls": [dead.url("/"), dead.url("/news.html")]},
            {"id": "down", "urls": [refused]},
            {"id": "healthy", "urls": [healthy.url("/")]},
        ], download_timeout=1)
        result = patrol(config)
        dead_requests = list(dead.requests)
    assert result.returncode == 0, "one target answered: the run is partial, not failed"
    assert dead_requests == ["/robots.txt"] * 3, "robots.txt and its 2 retries, then nothing more is sent"
    run = last_run(config)
    assert run["status"] == "partial"
    assert run["targets"]["dead"] == {"pages": 0, "failed": 2, "hits": 0, "new_hits": 0,
                                      "errors": {"host_unresponsive": 2}}, "both start URLs dropped unsent"
    assert run["targets"]["down"]["errors"] == {"host_unresponsive": 1}
    assert run["targets"]["healthy"]["pages"] == 3 and run["targets"]["healthy"]["errors"] == {}
    stats = run_stats(config)
    assert stats["host_breaker/tripped"] == 2
    assert stats["host_breaker/dropped"] == 5, "the start URLs and each host's sitemap.xml"
    assert stats["host_breaker/failures"] == 6, "three robots.txt attempts per dead host"
    warnings = breaker_warnings(result.stderr)
    assert len(warnings) == 2, result.stderr
    dead_line = next(w for w in warnings if f"127.0.0.1:{dead.port}" in w)
    assert "did not answer 3 times in a row (timeout×3)" in dead_line, dead_line
    assert "3 request(s) to it dropped unsent (target dead: 3)" in dead_line, "2 start URLs and sitemap.xml"
    coverage = {r["id"]: r for r in json_lines(cli("coverage", "--config", str(config), "--json").stdout)}
    assert coverage["dead"]["status"] == "offline"
    assert coverage["dead"]["failure_summary"] == "offline×2 (host_unresponsive×2)"


def test_requests_already_waiting_in_the_downloader_are_dropped_too(make_config, patrol):
    """Twenty start URLs are all handed to the downloader at once; once the host is cut, those
    still queued there are not sent."""
    with Silence() as silence, SiteServer(silence) as dead:
        urls = [dead.url(f"/p{i}.html") for i in range(20)]
        config = make_config([{"id": "dead", "urls": urls, "obey_robots": False}], download_timeout=1)
        result = patrol(config)
        sent = set(dead.requests)
    assert result.returncode == 1, "the only target failed"
    counts = last_run(config)["targets"]["dead"]
    assert counts["failed"] == 20, counts
    assert counts["errors"]["host_unresponsive"] == 20 - counts["errors"].get("timeout", 0)
    never_sent = {f"/p{i}.html" for i in range(20)} - sent
    assert never_sent, "the requests queued in the downloader's slot were failed there"
    assert run_stats(config)["host_breaker/dropped"] >= len(never_sent)


def test_a_host_that_times_out_once_then_answers_is_not_cut(make_config, patrol):
    """robots.txt, /a.html and /b.html each time out once, with answers in between: three
    failures, never three in a row."""
    robots = Reply(headers={"Content-Type": "text/plain"}, body=b"User-agent: *\nDisallow:\n")
    plain = routes({"/robots.txt": robots, "/": page("首页", links=("/a.html",)),
                    "/a.html": page("A", links=("/b.html",)), "/b.html": page("B")})
    asked: Counter = Counter()
    lock = threading.Lock()
    silence = Silence()

    def flaky(request):
        with lock:
            asked[request.path] += 1
            first = asked[request.path] == 1
        return silence(request) if first and request.path in ("/robots.txt", "/a.html", "/b.html") else plain(request)

    with silence, SiteServer(flaky) as site:
        config = make_config([{"id": "flaky", "urls": [site.url("/")]}], download_timeout=1)
        result = patrol(config)
    assert result.returncode == 0, result.stderr
    counts = last_run(config)["targets"]["flaky"]
    assert counts["pages"] == 3 and counts["errors"] == {}, counts
    assert asked["/robots.txt"] == asked["/a.html"] == asked["/b.html"] == 2
    stats = run_stats(config)
    assert stats["host_breaker/failures"] == 3, "each timeout was counted, and reset by the next answer"
    assert "host_breaker/tripped" not in stats and "host_breaker/dropped" not in stats
    assert not breaker_warnings(result.stderr)


def test_requests_dropped_when_a_host_dies_do_not_rectify_its_hits(make_config, patrol):
    """The host answers the home page, then stops answering: /a.html times out twice (with
    FINPATROL_HOST_FAILURES 2), the host is cut, so /a.html is not tried a third time and the
    page with an open hit the links did not reach (/b.html) is dropped unsent. Only a 404/410
    marks a page gone: every hit stays open."""
    claims = "平台承诺保本保息，年化收益率高达18%，稳赚不赔。"
    plain = routes({"/": page("鑫盈宝", claims, links=("/a.html",)),
                    "/a.html": page("产品", claims, links=("/b.html",)), "/b.html": page("活动", claims)})
    dying = threading.Event()
    silence = Silence()

    def resolver(request):
        if dying.is_set() and request.path not in ("/", "/robots.txt", "/sitemap.xml"):
            return silence(request)
        return plain(request)

    with silence, SiteServer(resolver) as site:
        config = make_config([{"id": "p2p", "urls": [site.url("/")]}], download_timeout=1)
        assert patrol(config).returncode == 0
        hits = json_lines(cli("hits", "--config", str(config), "--json").stdout)
        assert len(hits) == 3
        dying.set()
        before = len(site.requests)
        result = cli("patrol", "--config", str(config), env={"FINPATROL_HOST_FAILURES": "2"})
        second = site.requests[before:]
    assert result.returncode == 0, result.stderr
    assert second.count("/a.html") == 2 and "/b.html" not in second, second
    counts = last_run(config)["targets"]["p2p"]
    assert counts["pages"] == 1
    assert counts["errors"] == {"timeout": 1, "host_unresponsive": 1}, \
        "/a.html timed out, its last retry not sent, nor was /b.html"
    stats = run_stats(config)
    assert stats["patrol/target/p2p/revisited"] == 1
    assert not stats.get("patrol/target/p2p/gone")
    after = json_lines(cli("hits", "--config", str(config), "--json").stdout)
    assert sorted(h["id"] for h in after) == sorted(h["id"] for h in hits)
    assert all(h["removed_at"] is None for h in after), "pages not reached are not rectified"
    run_id = str(last_run(config)["id"])
    changes = json_lines(cli("changes", "--config", str(config), "--run", run_id, "--json").stdout)
    assert not [c for c in changes if c["kind"] == "gone" or c["hits"]["removed"]], changes


class Stats(Counter):
    def inc_value(self, key, count=1):
        self[key] += count


def test_failures_count_per_host_and_port_and_an_answer_resets_them():
    breaker = HostBreakerMiddleware(3, Stats())
    dead = Request("http://dead.example/a", meta={"finpatrol_target": "dead"})
    for _ in range(2):
        assert breaker.process_exception(dead, DownloadTimeoutError()) is None, "retried as usual"
    breaker.answered(request=Request("http://dead.example/robots.txt"))
    assert breaker.process_exception(dead, DownloadTimeoutError()) is None, "an answer started the count again"
    for _ in range(5):
        assert breaker.process_exception(dead, ResponseDataLossError()) is None, "a cut-short answer is an answer"
    assert breaker.process_exception(dead, DownloadTimeoutError()) is None
    with pytest.raises(DownloadTimeoutError):
        breaker.process_exception(dead, DownloadTimeoutError())  # the third in a row: not retried
    with pytest.raises(HostUnresponsive) as dropped:
        breaker.process_request(Request("http://dead.example/b", meta={"finpatrol_target": "dead"}))
    assert dropped.value.finpatrol_reason == "host_unresponsive"
    assert "robots.txt" not in str(dropped.value), "the spider counts IgnoreRequests naming robots.txt as skipped"
    assert breaker.process_request(Request("http://dead.example:8080/")) is None, "another port, another server"
    assert breaker.process_request(Request("https://dead.example/")) is None, "port 443"
    assert breaker.process_request(Request("http://alive.example/")) is None
    breaker.answered(request=Request("http://dead.example/late"))  # a request sent before the cut answered
    assert breaker.process_request(Request("http://dead.example/c")) is None
    assert breaker.stats == {"host_breaker/failures": 5, "host_breaker/tripped": 1, "host_breaker/dropped": 1,
                             "host_breaker/recovered": 1}


def test_a_name_that_does_not_resolve_is_reported_as_such():
    breaker = HostBreakerMiddleware(2, Stats())
    gone = Request("http://gone.invalid/")
    assert breaker.process_exception(gone, CannotResolveHostError()) is None
    with pytest.raises(CannotResolveHostError):
        breaker.process_exception(gone, CannotResolveHostError())
    with pytest.raises(HostUnresponsive) as dropped:
        breaker.process_request(gone)
    assert dropped.value.finpatrol_reason == "host_unresolved", "coverage calls it domain_gone"
