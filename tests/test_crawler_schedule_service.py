"""``finpatrol serve`` as a real subprocess: scheduled patrol → alert mail, restarts, missed runs, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo
from pathlib import Path

import pytest
import yaml
from conftest import REPO, cli
from smtp_fixtures import SmtpSink

from crawler.config import load_config
from crawler.demo.server import SiteServer, routes
from crawler.schedule.service import job_store
from crawler.store.db import StateDB
from crawler.store.models import PatrolRun

AD = ("<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>鑫盈宝 稳健理财</title></head>"
      "<body><article><h1>鑫盈宝 稳健理财</h1><p>鑫盈宝平台承诺保本保息，100%本息保障，稳赚不赔，"
      "年化收益18%，到期刚性兑付。欢迎广大投资者加入，首投即送红包。</p></article></body></html>")


def wait_until(predicate, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def write_config(tmp_path: Path, site_url: str, smtp_port: int, jobs: list[dict], **schedules) -> Path:
    document = {
        "state_dir": "state", "allow_private_networks": True, "download_timeout": 5,
        "alerts": {"quiet_hours": None},
        "routing": {"units": {"cbrc": {"name": "江津银监分局", "emails": ["duty@cbrc.test"]},
                              "operator": {"name": "运维", "emails": ["ops@finpatrol.test"]}}},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        "schedules": {"alerts_every": 1, "stop_grace": 20, "jobs": jobs} | schedules,
        "targets": [{"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"],
                     "business": "p2p", "urls": [site_url], "max_pages": 5}],
    }
    path = tmp_path / "patrol.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


class Served:
    """``finpatrol serve`` in a subprocess, stopped with SIGTERM."""

    def __init__(self, config: Path):
        env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
        self.log = open(config.parent / f"serve-{time.monotonic_ns()}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", "-v", "serve", "--config", str(config)],
                                     cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=90)
        self.log.close()
        return code

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")


def schedule(config: Path) -> dict[str, dict]:
    result = cli("schedule", "list", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}


def runs(config: Path) -> list[PatrolRun]:
    db = StateDB(load_config(config).db_url)
    try:
        with db.new_session() as session:
            return list(session.query(PatrolRun).order_by(PatrolRun.id))
    finally:
        db.close()


@pytest.fixture
def site():
    with SiteServer(routes({"/": AD})) as server:
        yield server


def test_service_patrols_on_schedule_delivers_the_alert_and_stops_cleanly(tmp_path, site):
    with SmtpSink() as sink:
        config = write_config(tmp_path, site.url("/"), sink.port, [{"id": "fast", "interval": 2, "targets": ["xyb"]}])
        served = Served(config)
        try:
            messages = sink.wait_for(1, timeout=180)
            assert "重庆鑫盈宝网络科技有限公司" in messages[0]["Subject"], served.output()
            assert sink.received[0][1] == ["duty@cbrc.test"]
            wait_until(lambda: any(r.status == "ok" for r in runs(config)), what="an ok run")
        finally:
            code = served.stop()
        assert code == 0, served.output()
        assert all(r.status != "running" for r in runs(config)), "a crawl running at SIGTERM is recorded"
        assert len([m for m in sink.messages if m["X-Finpatrol-Unit"] == "cbrc"]) == 1, "dedup across patrols"


def test_restart_keeps_schedule_and_runs_a_missed_crawl_once(tmp_path, site):
    with SmtpSink() as sink:
        config = write_config(tmp_path, site.url("/"), sink.port,
                              [{"id": "newyear", "cron": "0 3 1 1 *", "targets": ["xyb"]}], misfire_grace=600)
        assert schedule(config)["newyear"]["state"] == "not stored: serve not started"
        served = Served(config)
        try:
            first = wait_until(lambda: (row := schedule(config)["newyear"])["state"] == "stored" and row,
                               what="the job stored")
        finally:
            assert served.stop() == 0, served.output()
        assert runs(config) == []
        # Restarted, the stored job is kept as it was.
        served = Served(config)
        try:
            wait_until(lambda: "scheduled" in served.output(), what="the service to start")
            assert schedule(config)["newyear"]["next_run"] == first["next_run"]
        finally:
            assert served.stop() == 0, served.output()
        # A run due while the service was down (within misfire_grace) runs once at start-up.
        db = StateDB(load_config(config).db_url)
        store = job_store(db)
        store.start(None, "default")
        job = store.lookup_job("newyear")
        job.next_run_time = datetime.now(UTC) - timedelta(minutes=5)
        store.update_job(job)
        db.close()
        served = Served(config)
        try:
            wait_until(lambda: any(r.status == "ok" for r in runs(config)), what="the missed run")
            sink.wait_for(1, timeout=60)
            assert datetime.fromisoformat(schedule(config)["newyear"]["next_run"]) == next_new_year_3am()
        finally:
            assert served.stop() == 0, served.output()
        assert len(runs(config)) == 1, "coalesced: one run for the missed time"


def test_unhealthy_crawl_mails_the_operator_once(tmp_path):
    with SiteServer(routes({})) as gone:  # every page is 404: the crawl stores nothing
        url = gone.url("/")
    with SmtpSink() as sink:
        config = write_config(tmp_path, url, sink.port, [{"id": "broken", "interval": 2}])
        served = Served(config)
        try:
            (notice, *_) = sink.wait_for(1, timeout=180)
            wait_until(lambda: len(runs(config)) >= 3, what="more failing runs")
        finally:
            assert served.stop() == 0, served.output()
        assert notice["X-Finpatrol-Unit"] == "operator" and sink.received[0][1] == ["ops@finpatrol.test"]
        assert "巡查任务 broken：failed" in notice["Subject"]
        assert "crawl-broken-" in notice.get_body(("plain",)).get_content()
        assert len(sink.received) == 1, "the same failure mails the operator once per operator_renotify"


def test_serve_says_it_is_running_with_the_config_its_jobs_the_next_run_and_how_to_stop(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9/", 9, [
        {"id": "newyear", "cron": "0 3 1 1 *", "targets": ["xyb"]},
        {"id": "midyear", "cron": "0 4 1 7 *", "targets": ["xyb"], "enabled": False},
    ], timezone="Asia/Shanghai")
    served = Served(config)
    try:
        line = wait_until(lambda: next((l for l in served.output().splitlines() if "Ctrl-C" in l), None),
                          timeout=60, what="the start-up line")
        assert served.proc.poll() is None, "still running after saying so"
    finally:
        assert served.stop() == 0, served.output()
    year = next_new_year_3am().year
    assert line == (f"finpatrol serve: {config}, 1 job(s) scheduled, next run newyear at {year}-01-01 03:00:00 CST; "
                    "alert mail every 1 s; stop with Ctrl-C (or SIGTERM)"), served.output()


def test_serve_without_crawl_jobs_says_it_only_sends_alert_mail(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9/", 9, [])
    served = Served(config)
    try:
        line = wait_until(lambda: next((l for l in served.output().splitlines() if "Ctrl-C" in l), None),
                          timeout=60, what="the start-up line")
    finally:
        assert served.stop() == 0, served.output()
    assert f"finpatrol serve: {config}, 0 job(s) scheduled, no crawl (none in schedules.jobs): only alert mail" in line


def next_new_year_3am() -> datetime:
    """When the cron ``0 3 1 1 *`` (in Asia/Shanghai) runs next: this year's or next year's."""
    zone = ZoneInfo("Asia/Shanghai")
    now = datetime.now(zone)
    this_year = datetime(now.year, 1, 1, 3, tzinfo=zone)
    return this_year if this_year > now else this_year.replace(year=now.year + 1)
