"""`finpatrol coverage` after a patrol in which one target was offline, with a schedule."""

from __future__ import annotations

from channel_sites import html
from conftest import cli, closed_port_url, json_lines
from crawler.demo.server import Reply, SiteServer, routes
from crawler.store.failures import classify_errors, describe_failures, failure_class


def test_coverage_shows_each_target_last_success_next_run_and_failures(make_config):
    offline = closed_port_url()
    with SiteServer(routes({"/": html("首页", "<p>公司介绍。</p>")})) as site:
        config = make_config(
            [{"id": "online", "urls": [site.url("/")]}, {"id": "offline", "urls": [offline]},
             {"id": "later", "urls": ["http://later.invalid/"], "enabled": False}],
            schedules={"jobs": [{"id": "hourly", "targets": ["online", "offline"], "interval": 3600}]},
        )
        before = {r["id"]: r for r in json_lines(cli("coverage", "--config", str(config), "--json").stdout)}
        assert before["online"]["status"] == "never" and before["online"]["last_success"] is None
        result = cli("patrol", "--config", str(config))
        assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in json_lines(cli("coverage", "--config", str(config), "--json").stdout)}
    assert rows["online"]["status"] == "ok" and rows["online"]["last_success"]
    assert rows["online"]["last_success_pages"] == 1 and rows["online"]["failures"] == {}
    assert rows["offline"]["status"] == "offline" and rows["offline"]["last_success"] is None
    # its robots.txt was refused three times in a row, so its start URL was not sent (crawler.host_breaker)
    assert rows["offline"]["failures"]["offline"] >= 1 and "host_unresponsive" in rows["offline"]["errors"]
    assert rows["offline"]["failure_summary"].startswith("offline×"), rows["offline"]
    assert "host_unresponsive×" in rows["offline"]["failure_summary"], "the reasons behind the class"
    assert rows["offline"]["last_attempt"] is not None
    assert rows["online"]["next_scheduled"] and rows["offline"]["next_scheduled"], "from the schedule"
    assert rows["later"]["status"] == "never" and rows["later"]["next_scheduled"] is None
    table = cli("coverage", "--config", str(config))
    assert table.returncode == 0 and "never patrolled successfully: offline" in table.stdout


def test_a_dead_link_is_named_but_leaves_the_site_covered(make_config):
    """A 404 (a dead link, a page the institution removed) is not a gap in the patrol; a 500 is."""
    pages = {"/": html("首页", '<a href="/gone.html">旧公告</a> <a href="/about.html">关于</a>'),
             "/about.html": html("关于", "<p>公司介绍。</p>")}
    with SiteServer(routes(pages)) as site:
        config = make_config([{"id": "site", "urls": [site.url("/")]}])
        assert cli("patrol", "--config", str(config)).returncode == 0
        (row,) = json_lines(cli("coverage", "--config", str(config), "--json").stdout)
        assert row["status"] == "ok" and row["failure_summary"] == "not_found×1 (http_404×1)"
        pages["/about.html"] = Reply(status=500, body=b"error")
        assert cli("patrol", "--config", str(config)).returncode == 0
    (row,) = json_lines(cli("coverage", "--config", str(config), "--json").stdout)
    assert row["status"] == "partial" and row["failures"] == {"not_found": 1, "offline": 1}, row


def test_failure_reasons_are_grouped():
    assert failure_class("dns") == "domain_gone"
    assert failure_class("http_410") == failure_class("http_404") == "not_found", "410: the server answers"
    assert failure_class("http_403") == failure_class("robots") == "blocked"
    assert failure_class("http_503") == failure_class("timeout") == "offline"
    assert failure_class("host_unresponsive") == "offline", "requests not sent to a host that stopped answering"
    assert failure_class("host_unresolved") == "domain_gone", "not sent: the host's name did not resolve"
    assert classify_errors({"refused": 2, "http_404": 1, "http_418": 1}) == {"offline": 2, "not_found": 1, "other": 1}
    assert describe_failures({"timeout": 2, "http_503": 1, "http_404": 1}) == \
        "not_found×1 (http_404×1), offline×3 (timeout×2, http_503×1)"
    assert describe_failures({"http_410": 2, "http_404": 1}) == "not_found×3 (http_410×2, http_404×1)"
