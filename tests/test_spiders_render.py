"""Rendering through the real Chromium: JavaScript-only claims, hanging pages, a crashing browser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import REPO, cli, json_lines
from crawler.config import load_config
from crawler.demo.server import Reply, SiteServer, routes
from crawler.store.db import StateDB
from crawler.store.models import PatrolRun

JS_SHELL = """<!DOCTYPE html><html lang="zh"><head><meta charset="utf-8"><title>云端普惠</title></head>
<body><div id="app"></div>
<script>
document.addEventListener('DOMContentLoaded', function () {
  var p = document.createElement('p');
  p.textContent = '本平台承诺保本保息，稳赚不赔，年化收益率高达18%。';
  document.getElementById('app').appendChild(p);
});
</script></body></html>"""

NEVER_IDLE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>行情</title></head>
<body><div id="app"></div><script>
document.getElementById('app').textContent = '资金池产品随存随取，保本保息。';
setInterval(function () { fetch('/poll?' + Math.random()); }, 100);
</script></body></html>"""

FAST = {"FINPATROL_RENDER_SETTLE": "1"}


def stats_of(config) -> dict:
    db = StateDB(load_config(config).db_url)
    with db.new_session() as session:
        return session.query(PatrolRun).order_by(PatrolRun.id.desc()).first().stats


def labels_by_url(config) -> dict[str, set]:
    return {h["url"]: set(h["labels"]) for h in json_lines(cli("hits", "--config", str(config), "--json").stdout)}


def test_javascript_only_claim_caught_with_auto_and_missed_with_never(make_config, tmp_path):
    site_routes = {"/": JS_SHELL}
    with SiteServer(routes(site_routes)) as site:
        auto = make_config([{"id": "js", "urls": [site.url("/")], "render": "auto"}])
        result = cli("patrol", "--config", str(auto), env=FAST)
        assert result.returncode == 0, result.stderr
        assert "guaranteed_return" in labels_by_url(auto)[site.url("/")]
        stats = stats_of(auto)
        assert stats["render/auto_escalations"] == 1 and stats["render/pages"] == 1

        (tmp_path / "state").rename(tmp_path / "state-auto")
        never = make_config([{"id": "js", "urls": [site.url("/")], "render": "never"}])
        assert cli("patrol", "--config", str(never), env=FAST).returncode == 0
        assert labels_by_url(never) == {}
        assert "render/pages" not in stats_of(never)


def test_page_that_never_settles_is_cut_off_and_a_hanging_page_times_out(make_config):
    site_routes = {
        "/": NEVER_IDLE.replace("</body>", "<a href='/hang'>x</a><a href='/ok'>ok</a></body>"),
        "/poll": Reply(delay=0.3, body=b"{}"),
        "/hang": Reply(hang=True, body=b"<html><body>"),
        "/ok": "<html><head><title>ok</title></head><body><p>普通页面，介绍公司情况。</p></body></html>",
    }
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "slow", "urls": [site.url("/")], "render": "always"}], download_timeout=3)
        result = cli("patrol", "--config", str(config), env=FAST)
    assert result.returncode == 0, result.stderr
    stats = stats_of(config)
    assert stats["render/settle_timeouts"] >= 1, "the polling page was cut off at the settle cap"
    assert stats["render/timeouts"] >= 1, "the hanging page was cut off at the navigation timeout"
    assert "fund_pool" in labels_by_url(config)[site.url("/")], "content is kept when cut off"
    run = json_lines(cli("runs", "--config", str(config), "--json", "--limit", "1").stdout)[0]
    assert run["targets"]["slow"]["pages"] == 2 and run["targets"]["slow"]["errors"]["render_timeout"] == 1


def descendants(pid: int) -> list[tuple[int, str]]:
    table = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    children: dict[int, list[tuple[int, str]]] = {}
    for line in table.splitlines():
        child, parent, args = line.split(None, 2)
        children.setdefault(int(parent), []).append((int(child), args))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def wait_for(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_browser_killed_mid_crawl_is_restarted_and_the_crawl_completes(make_config):
    pages = {f"/p{i}.html": Reply(delay=0.5, body=JS_SHELL.encode()) for i in range(8)}
    site_routes = {"/": JS_SHELL.replace("</body>", "".join(f"<a href='{p}'>{p}</a>" for p in pages) + "</body>")}
    site_routes.update(pages)
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "crash", "urls": [site.url("/")], "render": "always"}])
        env = os.environ | FAST | {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        process = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "patrol", "--config", str(config)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_for(lambda: any(p.startswith("/p") for p in site.requests), what="a rendered page request")
            browsers = [pid for pid, args in descendants(process.pid)
                        if "chrom" in args and "--type=" not in args]
            assert browsers, "Chromium runs under the patrol process"
            for pid in browsers:
                os.kill(pid, signal.SIGKILL)
            out, err = process.communicate(timeout=240)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err
    run = json_lines(cli("runs", "--config", str(config), "--json", "--limit", "1").stdout)[0]
    assert run["targets"]["crash"]["pages"] == 9, run
    assert stats_of(config).get("playwright/browser_count", 0) >= 2, "a new browser was launched"


def test_a_rendered_download_that_never_ends_is_given_up_retried_once_and_counted(make_config):
    """The watchdog behind the browser-killed recovery: no rendered request may wait for ever."""
    site_routes = {
        "/": JS_SHELL.replace("</body>", "<a href='/stuck.html'>x</a></body>"),
        "/stuck.html": Reply(delay=8, body=JS_SHELL.encode()),
    }
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "stuck", "urls": [site.url("/")], "render": "always"}], download_timeout=20)
        result = cli("patrol", "--config", str(config), env=FAST | {"FINPATROL_RENDER_WATCHDOG": "2"})
    assert result.returncode == 0, result.stderr
    assert stats_of(config)["render/retries"] == 1
    run = json_lines(cli("runs", "--config", str(config), "--json", "--limit", "1").stdout)[0]["targets"]["stuck"]
    assert (run["pages"], run["failed"], run["errors"]) == (1, 1, {"render_stalled": 1})


BY_LANGUAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>云端普惠</title></head>
<body><div id="app"></div><script>
document.getElementById('app').textContent = navigator.language.indexOf('zh') === 0
  ? '本平台承诺保本保息，稳赚不赔，年化收益率高达18%。' : 'Welcome to our lending platform.';
</script></body></html>"""


def test_a_rendered_page_that_picks_its_language_in_the_browser_shows_chinese(make_config):
    with SiteServer(routes({"/": BY_LANGUAGE})) as site:
        config = make_config([{"id": "js", "urls": [site.url("/")], "render": "always"}])
        result = cli("patrol", "--config", str(config), env=FAST)
        assert result.returncode == 0, result.stderr
        assert "guaranteed_return" in labels_by_url(config)[site.url("/")]


def test_a_page_rendered_after_its_static_fetch_keeps_the_referer_of_the_link_followed(make_config):
    referers: dict[str, list] = {"/": [], "/app.html": []}

    def page(path: str, body: str):
        def reply(request):
            referers[path].append(request.headers.get("Referer"))
            return Reply(body=body.encode(), headers={"Content-Type": "text/html; charset=utf-8"})
        return reply

    index = JS_SHELL.replace('<div id="app"></div>', '<div id="app"></div><a href="/app.html">产品</a>')
    with SiteServer(routes({"/": page("/", index), "/app.html": page("/app.html", JS_SHELL)})) as site:
        config = make_config([{"id": "js", "urls": [site.url("/")], "render": "auto"}])
        result = cli("patrol", "--config", str(config), env=FAST)
        assert result.returncode == 0, result.stderr
        assert stats_of(config)["render/auto_escalations"] == 2
    assert referers["/app.html"] == [site.url("/"), site.url("/")], "static fetch, then Chromium's"
    assert referers["/"] == [None, None], "a start page has none, rendered or not"
