"""``finpatrol serve`` as a real subprocess: scheduled patrol → alert mail, restarts, missed runs, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo
from pathlib import Path

import pytest
import yaml
from conftest import REPO, cli, json_lines, wait_until
from smtp_fixtures import SmtpSink

from crawler.config import load_config
from crawler.demo.server import Reply, SiteServer, routes
from crawler.schedule.config_watch import ConfigWatch
from crawler.schedule.runner import Runner
from crawler.schedule.service import Service, job_store
from crawler.store.db import StateDB
from crawler.store.models import PatrolRun

AD = ("<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>鑫盈宝 稳健理财</title></head>"
      "<body><article><h1>鑫盈宝 稳健理财</h1><p>鑫盈宝平台承诺保本保息，100%本息保障，稳赚不赔，"
      "年化收益18%，到期刚性兑付。欢迎广大投资者加入，首投即送红包。</p></article></body></html>")


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
    """``finpatrol serve`` in a subprocess (in ``cwd``, default the repository), stopped with SIGTERM."""

    def __init__(self, config: Path, cwd: Path = REPO, verbose: bool = True):
        env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
        self.log = open((cwd / config).parent / f"serve-{time.monotonic_ns()}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", *(["-v"] if verbose else []), "serve",
                                      "--config", str(config)],
                                     cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

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
    """The runs in the config's state DB (by where write_config puts it: the file may be broken)."""
    db = StateDB(f"sqlite:///{config.parent / 'state' / 'finpatrol.db'}")
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


def store_jobs(config: Path) -> None:
    """Store the config's jobs in its state DB as `serve` does at start, without serving."""
    service = Service(ConfigWatch(config).load())
    service.scheduler.start(paused=True)
    service.sync_jobs()
    service.scheduler.shutdown(wait=False)
    service.db.close()


def set_next_run(config, job_id: str, when: datetime) -> None:
    """Move a stored job's next run, as time passing while serve is down would."""
    db = StateDB(load_config(config).db_url)
    store = job_store(db)
    store.start(None, "default")
    job = store.lookup_job(job_id)
    job.next_run_time = when
    store.update_job(job)
    db.close()


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
        set_next_run(config, "newyear", datetime.now(UTC) - timedelta(minutes=5))
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
        assert notice["Subject"] == "【巡查运行异常】巡查任务 broken：失败", notice["Subject"]
        body = notice.get_body(("plain",)).get_content()
        assert "crawl-broken-" in body and "target xyb: pages 0, failed 1: offline×1" in body, body
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


def test_serve_logs_once_at_start_a_sender_mail_relays_refuse(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9/", 9, [])  # smtp.host set, smtp.sender not
    served = Served(config, verbose=False)
    try:
        wait_until(lambda: "Ctrl-C" in served.output(), timeout=60, what="the start-up line")
    finally:
        assert served.stop() == 0, served.output()
    warned = [line for line in served.output().splitlines() if "smtp.sender" in line]
    assert len(warned) == 1, served.output()
    assert warned[0].endswith(f"WARNING crawler.commands.common: {config}: smtp.sender: mail to 127.0.0.1 goes out "
                              "From finpatrol@localhost (smtp.sender is not set), which mail relays refuse or file "
                              "as spam; set smtp.sender to an address of the office's own mail domain")


def next_new_year_3am() -> datetime:
    """When the cron ``0 3 1 1 *`` (in Asia/Shanghai) runs next: this year's or next year's."""
    zone = ZoneInfo("Asia/Shanghai")
    now = datetime.now(zone)
    this_year = datetime(now.year, 1, 1, 3, tzinfo=zone)
    return this_year if this_year > now else this_year.replace(year=now.year + 1)


def test_serve_started_in_the_config_directory_with_a_relative_path_patrols(tmp_path, site):
    """The README's layout: `cd dir; finpatrol serve` with `state_dir: state` relative to patrol.yaml.
    The crawl subprocess runs in another directory and must still find its log file and state DB."""
    with SmtpSink() as sink:
        config = write_config(tmp_path, site.url("/"), sink.port, [{"id": "fast", "interval": 2, "targets": ["xyb"]}])
        served = Served(Path("patrol.yaml"), cwd=tmp_path)
        try:
            wait_until(lambda: any(r.status == "ok" for r in runs(config)), timeout=90, what=f"an ok run: "
                       f"{[p.read_text(errors='replace')[-300:] for p in (tmp_path / 'state' / 'logs').glob('*.err')]}")
        finally:
            assert served.stop() == 0, served.output()
        logs = list((tmp_path / "state" / "logs").glob("crawl-fast-*.log"))
        assert logs and all(p.stat().st_size > 0 for p in logs)


def test_runner_in_another_directory_with_a_relative_config_path(tmp_path, site, monkeypatch):
    write_config(tmp_path, site.url("/"), 9, [])
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("patrol.yaml"))
    outcome = Runner(stop_grace=10).run(config, "once", ("xyb",), timeout=120)
    assert (outcome.status, outcome.reason) == ("ok", "finished"), \
        Path(outcome.log_file).with_suffix(".err").read_text(errors="replace")
    assert Path(outcome.log_file).is_absolute() and Path(outcome.log_file).is_file()
    assert [r.id for r in runs(tmp_path / "patrol.yaml")] == [outcome.run_id]


def test_a_crawl_that_crashes_is_an_error_on_the_console_and_the_mail_names_its_traceback(tmp_path, site):
    with SmtpSink() as sink:
        config = write_config(tmp_path, site.url("/"), sink.port, [{"id": "crashing", "interval": 2}])
        served = Served(config, verbose=False)
        try:
            wait_until(lambda: "Ctrl-C" in served.output(), timeout=60, what="the start-up line")
            # The config text the service handed its crawls removed: the next crawl cannot load it, exits non-zero.
            for accepted in (tmp_path / "state" / "serve").glob("patrol-*.yaml"):
                accepted.unlink()
            notice = wait_until(lambda: next((m for m in sink.messages if m["X-Finpatrol-Unit"] == "operator"), None),
                                what="the operator's notice")
            line = wait_until(lambda: next((l for l in served.output().splitlines() if "crawl crashing" in l), None),
                              timeout=30, what="the console line")
        finally:
            assert served.stop() == 0, served.output()
    err = next((tmp_path / "state" / "logs").glob("crawl-crashing-*.err"))
    assert "ConfigError" in err.read_text(errors="replace")
    assert "ERROR" in line and "exit_1" in line and str(err) in line, served.output()
    assert notice["Subject"].endswith("：失败（异常退出（代码 1））"), notice["Subject"]
    body = notice.get_body(("plain",)).get_content()
    assert str(err) in body, body


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("how", ["stop", "timeout"])
def test_a_stopped_or_timed_out_crawl_leaves_no_process_of_its_group(tmp_path, how):
    with SiteServer(routes({"/": Reply(hang=True, headers={"Content-Type": "text/html"}, body=AD.encode())})) as slow:
        path = write_config(tmp_path, slow.url("/"), 9, [])
        path.write_text(path.read_text(encoding="utf-8").replace("download_timeout: 5", "download_timeout: 300"),
                        encoding="utf-8")
        config = load_config(path)
        runner = Runner(stop_grace=1)  # the hanging download keeps Scrapy from closing in time: killed
        outcomes = []
        thread = threading.Thread(target=lambda: outcomes.append(
            runner.run(config, "slow", ("xyb",), timeout=600 if how == "stop" else 20)))
        thread.start()
        try:
            pgid = wait_until(lambda: next(iter(runner._procs), None), timeout=30, what="the crawl process")
            wait_until(lambda: "/" in slow.requests and len(group_members(pgid)) >= 3, timeout=90,
                       what="the crawl, its forkserver and workers, fetching the slow page")
            if how == "stop":
                runner.stop_all()
        finally:
            thread.join(timeout=120)
    try:
        (outcome,) = outcomes
        assert outcome.reason == ("stopped" if how == "stop" else "killed"), outcome
        assert outcome.returncode == -signal.SIGKILL and outcome.status == "failed", outcome
        wait_until(lambda: not group_members(pgid), timeout=10, what=f"no process left in group {pgid}")
        covered = json_lines(cli("coverage", "--config", str(path), "--json").stdout)
        (xyb,) = [row for row in covered if row["id"] == "xyb"]
        assert (xyb["status"], xyb["last_attempt_run"]) == ("failed", outcome.run_id), "the killed attempt counts"
    finally:  # a failing run leaves no orphans on the machine either
        if group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)


def test_a_second_serve_on_the_same_state_dir_is_refused_naming_the_lock_and_its_holder(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9/", 9, [{"id": "newyear", "cron": "0 3 1 1 *"}])
    first = Served(config)
    try:
        wait_until(lambda: "Ctrl-C" in first.output(), timeout=60, what="the first service to start")
        second = cli("serve", "--config", str(config), timeout=60)
        assert first.proc.poll() is None, "the first service runs on"
    finally:
        assert first.stop() == 0, first.output()
    lock = tmp_path / "state" / "serve.lock"
    assert second.returncode != 0
    (line,) = second.stderr.strip().splitlines()
    assert str(lock) in line and f"pid {first.proc.pid}" in line, line
    # Once the first has stopped, the lock is free again.
    again = Served(config)
    try:
        wait_until(lambda: "Ctrl-C" in again.output(), timeout=60, what="a service after the first stopped")
    finally:
        assert again.stop() == 0, again.output()


def test_schedule_list_and_coverage_mark_a_stored_next_run_in_the_past_as_overdue(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9/", 9, [{"id": "newyear", "cron": "0 3 1 1 *"},
                                                               {"id": "midyear", "cron": "0 4 1 7 *"}])
    store_jobs(config)
    assert not any(row["overdue"] for row in schedule(config).values()), "stored, in the future"
    set_next_run(config, "newyear", datetime.now(UTC) - timedelta(hours=2))
    rows = schedule(config)
    assert (rows["newyear"]["state"], rows["newyear"]["overdue"]) == ("stored", True)
    assert rows["midyear"]["overdue"] is False
    assert rows["midyear"]["next_run_local"].endswith("-07-01 04:00 CST"), "in the schedule's zone, as written"
    assert rows["newyear"]["next_run_local"].endswith(" CST"), "a time stored in UTC is shown in the schedule's zone"
    table = cli("schedule", "list", "--config", str(config))
    assert table.returncode == 0, table.stderr
    (line,) = [l for l in table.stdout.splitlines() if "newyear" in l]
    assert "overdue: is `finpatrol serve` running?" in line, table.stdout
    assert "overdue" not in next(l for l in table.stdout.splitlines() if "midyear" in l)
    covered = cli("coverage", "--config", str(config), "--json")
    assert covered.returncode == 0, covered.stderr
    (xyb,) = [row for row in map(json.loads, covered.stdout.splitlines()) if row["id"] == "xyb"]
    assert xyb["next_scheduled_overdue"] is True
    assert "overdue: is `finpatrol serve` running?" in cli("coverage", "--config", str(config)).stdout


def save(config: Path, document: dict) -> None:
    config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")


def test_serve_takes_up_an_edited_config_and_keeps_the_version_in_effect_when_an_edit_is_refused(tmp_path, site):
    with SmtpSink() as sink:
        config = write_config(tmp_path, site.url("/"), sink.port, [])
        served = Served(config, verbose=False)
        try:
            wait_until(lambda: "only alert mail" in served.output(), timeout=60, what="the start-up line")
            # A job added and a unit's address corrected while it runs: both taken up.
            document = yaml.safe_load(config.read_text(encoding="utf-8"))
            document["schedules"]["jobs"] = [{"id": "fast", "interval": 2, "targets": ["xyb"]}]
            document["routing"]["units"]["cbrc"]["emails"] = ["night-duty@cbrc.test"]
            save(config, document)
            (alert,) = sink.wait_for(1, timeout=180)
            assert "重庆鑫盈宝网络科技有限公司" in alert["Subject"] and sink.received[0][1] == ["night-duty@cbrc.test"]
            assert f"{config} changed: reloaded, 1 job(s) scheduled" in served.output()
            assert f"finpatrol serve: {config}, 1 job(s) scheduled, next run fast" in served.output()

            # A broken edit: refused once, the operator told, the crawls go on with the version in effect.
            config.write_text(config.read_text(encoding="utf-8").replace("business: p2p", "business: lending"),
                              encoding="utf-8")
            notice = wait_until(lambda: next((m for m in sink.messages if m["X-Finpatrol-Unit"] == "operator"), None),
                                what="the operator's notice of the broken config")
            assert notice["Subject"] == f"【巡查运行异常】配置文件有误，改动未生效：{config}", notice["Subject"]
            body = notice.get_body(("plain",)).get_content()
            assert "targets[0].business" in body and "lending" in body, body
            refused_at = len(runs(config))
            wait_until(lambda: len([r for r in runs(config)[refused_at:] if r.status == "ok"]) >= 2, timeout=180,
                       what="crawls after the refusal, with the version in effect")

            # An edit that moves the state: refused, it needs a restart.
            document["state_dir"] = "elsewhere"
            save(config, document)
            moved = wait_until(lambda: [m for m in sink.messages if "需重启" in m["Subject"]], what="the restart notice")
            assert moved[0]["Subject"] == f"【巡查运行异常】配置文件改动需重启服务才能生效：{config}"
            assert f"{tmp_path / 'state'} → {tmp_path / 'elsewhere'}" in moved[0].get_body(("plain",)).get_content()

            # Back to the version in effect; SIGHUP checks at once, changed or not.
            document["state_dir"] = "state"
            save(config, document)
            wait_until(lambda: served.output().count("unchanged, in effect since") == 1, what="the revert noticed")
            served.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: served.output().count("unchanged, in effect since") == 2, what="SIGHUP's check")
        finally:
            assert served.stop() == 0, served.output()
        operator = [m["Subject"] for m in sink.messages if m["X-Finpatrol-Unit"] == "operator"]
        assert len(operator) == 2, f"each refused version told once: {operator}"
        assert not (tmp_path / "elsewhere").exists(), "a refused version leaves nothing behind"
        ended = [(r.status, r.finish_reason) for r in runs(config)]
        if ended[-1][1] == "stopped":  # the "fast" job's crawl running when the test stopped serve
            ended.pop()
        assert all(status == "ok" for status, _ in ended), [(r.id, r.status, r.finish_reason) for r in runs(config)]


def test_serve_prunes_crawl_logs_past_retention_once_a_day(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9/", 9, [])
    logs = tmp_path / "state" / "logs"
    logs.mkdir(parents=True)
    old = [logs / "crawl-sites-20200101T030000.log", logs / "crawl-sites-20200101T030000.err"]
    recent = logs / f"crawl-sites-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    for path in (*old, recent):
        path.write_text("2020-01-01 03:00:00 [scrapy.core.engine] INFO: Spider opened\n", encoding="utf-8")
    served = Served(config)
    try:
        wait_until(lambda: not any(p.exists() for p in old), timeout=60, what="the 2020 crawl's logs pruned")
    finally:
        assert served.stop() == 0, served.output()
    assert recent.exists()
    assert (tmp_path / "state" / "last-prune").exists(), "a restart within the day does not prune again"


def test_a_crawl_the_stop_interrupted_runs_again_at_the_next_start(tmp_path):
    slow = {"/": Reply(body=AD.encode(), headers={"Content-Type": "text/html; charset=utf-8"}, delay=15)}
    with SiteServer(routes(slow)) as server, SmtpSink() as sink:
        config = write_config(tmp_path, server.url("/"), sink.port,
                              [{"id": "newyear", "cron": "0 3 1 1 *", "targets": ["xyb"]}], misfire_grace=600)
        store_jobs(config)
        set_next_run(config, "newyear", datetime.now(UTC) - timedelta(minutes=1))
        served = Served(config)
        try:
            wait_until(lambda: any(r.status == "running" for r in runs(config)), what="the crawl under way")
        finally:
            assert served.stop() == 0, served.output()
        assert [r.finish_reason for r in runs(config)] == ["stopped"], served.output()
        assert schedule(config)["newyear"]["overdue"], "due again from the stop"
        slow["/"] = AD
        served = Served(config)
        try:
            wait_until(lambda: len(runs(config)) == 2 and runs(config)[1].status == "ok", what="the crawl run again")
            assert datetime.fromisoformat(schedule(config)["newyear"]["next_run"]) == next_new_year_3am()
        finally:
            assert served.stop() == 0, served.output()


def test_a_crawl_due_while_serve_stops_runs_at_the_next_start(tmp_path):
    """Stopping waits for a running crawl to close (up to stop_grace): a crawl falling due meanwhile
    was moved on to its next run by APScheduler's shutdown (a day's patrol skipped, an ERROR logged)."""
    hanging = {"/": Reply(body=AD.encode(), headers={"Content-Type": "text/html; charset=utf-8"}, delay=60)}
    with SiteServer(routes(hanging)) as server, SmtpSink() as sink:
        config = write_config(tmp_path, server.url("/"), sink.port,
                              [{"id": "slow", "cron": "0 3 1 1 *", "targets": ["xyb"]},
                               {"id": "daily", "interval": "1d", "targets": ["xyb"]}],
                              misfire_grace=600, stop_grace=12)
        document = yaml.safe_load(config.read_text(encoding="utf-8"))
        config.write_text(yaml.safe_dump(document | {"download_timeout": 60}, allow_unicode=True), encoding="utf-8")
        store_jobs(config)
        set_next_run(config, "slow", datetime.now(UTC) - timedelta(minutes=1))
        served = Served(config)
        try:
            wait_until(lambda: "/" in server.requests, what="the slow crawl waiting for the page")
            # the stop waits for that crawl to close: stop_grace (12 s), as the page never comes
            due = datetime.now(UTC) + timedelta(seconds=2)
            set_next_run(config, "daily", due)  # read by the scheduler only when it next wakes: after the stop began
        finally:
            stopped = served.stop()
        assert stopped == 0, served.output()
        assert datetime.now(UTC) > due, "the stop outlasted the moment the daily crawl fell due"
        assert datetime.fromisoformat(schedule(config)["daily"]["next_run"]) == due.replace(microsecond=0)
        assert "crawl daily fell due while serve stopped" in served.output()
        assert "Error submitting job" not in served.output()
