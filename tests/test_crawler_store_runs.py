"""A run whose process is gone (``kill -9`` of a ``finpatrol patrol``) is settled, and leaves no worker."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import REPO, cli, json_lines, wait_until

from crawler.alerts.evaluate import evaluate
from crawler.alerts.models import AlertRun
from crawler.config import load_config
from crawler.demo.server import Reply, SiteServer, routes
from crawler.store.db import StateDB
from crawler.store.models import PatrolRun
from crawler.store.runs import settle_abandoned, start_run

HOME = ("<html><head><title>首页</title></head><body><p>平台介绍，欢迎访问本站。</p>"
        '<a href="/slow.html">慢</a></body></html>')


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name; None when gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields


def descendants(pid: int) -> set[int]:
    """Live processes under ``pid`` (its forkserver, analysis workers, resource tracker), from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(int(stat.parent.name))
        if fields is not None:
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def pages_stored(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    with sqlite3.connect(db_path) as conn:
        try:
            return conn.execute("SELECT count(*) FROM pages").fetchone()[0]
        except sqlite3.OperationalError:  # tables not made yet
            return 0


def test_a_patrol_killed_with_sigkill_is_settled_and_its_workers_do_not_outlive_it(make_config):
    site_routes = {"/": Reply(body=HOME.encode(), headers={"Content-Type": "text/html; charset=utf-8"}),
                   "/slow.html": Reply(hang=True, body=b"<html><body>never ends")}
    with SiteServer(routes(site_routes)) as site:
        path = make_config([{"id": "slow", "urls": [site.url("/")]}], download_timeout=300)
        config = load_config(path)
        env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", "patrol", "--config", str(path)], cwd=REPO,
                                env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        children: set[int] = set()
        try:
            db_file = path.parent / "state" / "finpatrol.db"
            wait_until(lambda: "/slow.html" in site.requests and pages_stored(db_file) == 1, timeout=120,
                       what="the patrol to store the home page and hang on the slow one")
            children = wait_until(lambda: (found := descendants(proc.pid)) and len(found) >= 3 and found,
                                  what="the patrol's forkserver and workers")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            wait_until(lambda: not [p for p in children if _stat(p) is not None], timeout=30,
                       what=f"no worker of the killed patrol left of {sorted(children)}")
        finally:  # a failing test leaves no orphans on the machine either
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            for pid in children:
                if _stat(pid) is not None:
                    os.kill(pid, signal.SIGKILL)
    db = StateDB(config.db_url)
    try:
        (run_id,) = db.execute("SELECT id FROM patrol_runs").scalars().all()
        evaluate(db, config)  # an alert pass settles it, and marks it evaluated: not selected again
        with db.new_session() as session:
            assert session.get(AlertRun, run_id) is not None, "the settled run is evaluated once, for good"
    finally:
        db.close()
    (run,) = json_lines(cli("runs", "--config", str(path), "--json").stdout)
    assert (run["id"], run["status"], run["finish_reason"]) == (run_id, "partial", "process_gone"), run
    assert run["finished_at"] is not None
    assert run["targets"]["slow"]["pages"] == 1, "the counts as recorded so far: the home page it stored"


def test_runs_of_a_process_gone_are_settled_when_the_next_patrol_starts_and_live_ones_are_not(tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        dead = start_run(db, "site_patrol", targets=["a"])
        db.execute("UPDATE patrol_runs SET pid = :pid WHERE id = :id", pid=gone.pid, id=dead)
        other_host = start_run(db, "site_patrol", targets=["a"])
        db.execute("UPDATE patrol_runs SET pid = :pid, host = 'elsewhere' WHERE id = :id", pid=gone.pid, id=other_host)
        reused = start_run(db, "site_patrol", targets=["a"])  # this pid, but a process that started earlier
        db.execute("UPDATE patrol_runs SET pid_started = '2000-01-01 00:00:00' WHERE id = :id", id=reused)
        live = start_run(db, "site_patrol", targets=["a"])  # this process: alive
        with db.new_session() as session:
            statuses = {r.id: (r.status, r.finish_reason) for r in session.query(PatrolRun)}
        assert statuses[dead] == ("failed", "process_gone"), "settled when the next run started"
        assert statuses[reused] == ("failed", "process_gone"), "its pid now names another process"
        assert statuses[other_host] == ("running", None), "a process on another host cannot be looked at"
        assert statuses[live] == ("running", None)
        assert settle_abandoned(db) == []
    finally:
        db.close()
