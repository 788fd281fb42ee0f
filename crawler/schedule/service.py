"""``finpatrol serve``: the long-running patrol service on APScheduler 3.x.

Jobs come from ``schedules.jobs`` (cron or interval, jitter) and live in the state
DB (``SQLAlchemyJobStore`` on the same engine, table ``apscheduler_jobs``), so
schedules and missed runs survive restarts: a job whose trigger and targets are
unchanged keeps its stored next run time, and a run missed while the service was
down runs once at start-up when within ``schedules.misfire_grace``
(``coalesce=True``, ``max_instances=1``). A run missed beyond the grace, a job
error or an unhealthy crawl mails the operator unit. Every
``schedules.alerts_every`` and after each crawl the service evaluates new hits,
composes due mail and sends the outbox. An edit of the config file is taken up within
seconds (at once on SIGHUP): jobs rescheduled, alerts, routing and SMTP swapped; an invalid
edit, or one that moves ``state_dir`` or the DB, is refused, the version in effect kept and
the operator mailed (``config_watch``). Once a day it prunes old crawl logs and stats
(``crawler.housekeeping``, ``retention:``). SIGTERM/SIGINT stop cleanly: running
crawls are asked to close (then killed after ``schedules.stop_grace``), their
runs recorded, the outbox flushed once more. A crawl the stop interrupted is due again
from the moment of the stop, so the next start runs it as a missed run (within
``misfire_grace``; later, the operator is told it was missed): a restart for an update
does not cost a day's patrol. So is a crawl that fell due while the service was stopping.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from datetime import datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from crawler.alerts.evaluate import notify_operator
from crawler.alerts.models import ensure_schema
from crawler.alerts.service import deliver
from crawler.config import PatrolConfig
from crawler.housekeeping import daily as housekeep_daily
from crawler.schedule.config_watch import Change, ConfigWatch, Version
from crawler.schedule.runner import CrawlOutcome, Runner
from crawler.schedule.triggers import build_trigger, spec_hash
from crawler.store.db import StateDB, utcnow
from crawler.store.runs import failing_targets
from crawler.wording import crawl_end, zh

logger = logging.getLogger(__name__)
JOBS_TABLE = "apscheduler_jobs"
ALERTS_JOB = "_alerts"
WATCH_EVERY = 5.0
"""Seconds between looks at the config file."""
SPARE_THREADS = 16
"""Crawl threads beyond the jobs configured at start, for jobs a reload adds."""
_service: "Service | None" = None


def _submitted(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Error submitting job")


@contextmanager
def _quiet_about_submitting():
    """Without APScheduler's "Error submitting job" traceback while it shuts down: it cannot
    start a job due then, and ``due_again`` keeps that job due (and says so)."""
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    scheduler_log.addFilter(_submitted)
    try:
        yield
    finally:
        scheduler_log.removeFilter(_submitted)


def crawl_job(job_id: str) -> None:
    """Job function (stored by reference in the job store)."""
    if _service is not None:
        _service.crawl(job_id)


def alerts_job() -> None:
    if _service is not None:
        _service.alerts_tick()


def stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S %Z}"


def job_store(db: StateDB) -> SQLAlchemyJobStore:
    return SQLAlchemyJobStore(engine=db.engine, tablename=JOBS_TABLE)


def job_name(job, schedules) -> str:
    return f"{job.id}#{spec_hash(job, schedules)}"


def report(outcome: CrawlOutcome) -> None:
    """One line on the console for a crawl: ERROR when it did not start, crashed or was killed,
    WARNING when its run is partial or failed, naming the files that say why."""
    files = " and ".join(outcome.files().values())
    if outcome.crashed:
        logger.error("crawl %s %s (%s, exit code %s): see %s", outcome.job_id, outcome.status, outcome.reason,
                     outcome.returncode, files)
    elif not outcome.healthy and outcome.reason != "stopped":
        logger.warning("crawl %s %s (%s, run %s): see %s", outcome.job_id, outcome.status, outcome.reason,
                       outcome.run_id, files)
    else:
        logger.info("crawl %s %s (%s, run %s)", outcome.job_id, outcome.status, outcome.reason, outcome.run_id)


class Service:
    def __init__(self, version: Version, watch: ConfigWatch | None = None):
        self.version = version
        self.watch = watch
        self.db = StateDB(self.config.db_url)
        ensure_schema(self.db)
        schedules = self.config.schedules
        self.runner = Runner(schedules.stop_grace)
        self.alert_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.reload_asked = False
        self.on_config = None
        self.interrupted: list[tuple[str, datetime]] = []
        """Crawl jobs the stop interrupted, and when."""
        self.crawl_threads = len(schedules.jobs) + SPARE_THREADS
        self.scheduler = BackgroundScheduler(
            jobstores={"default": job_store(self.db)},
            executors={"default": ThreadPoolExecutor(self.crawl_threads + 1)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": int(schedules.misfire_grace)},
            timezone=schedules.timezone,
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    @property
    def config(self) -> PatrolConfig:
        return self.version.config

    def sync_jobs(self) -> None:
        """Make the stored jobs match the config; unchanged jobs keep their stored next run."""
        schedules = self.config.schedules
        misfire = int(schedules.misfire_grace)
        stored = {job.id: job for job in self.scheduler.get_jobs()}
        wanted = {job.id: job for job in schedules.jobs if job.enabled}
        for job_id, job in stored.items():
            if job_id != ALERTS_JOB and job_id not in wanted:
                logger.info("schedule: removing job %s (no longer configured)", job_id)
                job.remove()
        for job_id, job in wanted.items():
            name = job_name(job, schedules)
            if job_id in stored and stored[job_id].name == name:
                if stored[job_id].misfire_grace_time != misfire:
                    stored[job_id].modify(misfire_grace_time=misfire)
                logger.info("schedule: %s kept, next run %s", job_id, stored[job_id].next_run_time)
                continue
            self.scheduler.add_job(
                "crawler.schedule.service:crawl_job", trigger=build_trigger(job, schedules.timezone),
                args=[job_id], id=job_id, name=name, replace_existing=True, misfire_grace_time=misfire,
            )
            logger.info("schedule: %s (re)scheduled", job_id)
        self.scheduler.add_job(
            "crawler.schedule.service:alerts_job",
            trigger=IntervalTrigger(seconds=schedules.alerts_every, timezone=schedules.timezone),
            id=ALERTS_JOB, name="alerts", replace_existing=True, misfire_grace_time=None,
        )

    def crawl(self, job_id: str) -> None:
        version = self.version  # one version for the whole crawl, though a reload may swap it meanwhile
        schedules = version.config.schedules
        job = next((j for j in schedules.jobs if j.id == job_id and j.enabled), None)
        if job is None:  # removed by a reload while it was due
            logger.info("crawl %s: no longer configured, not started", job_id)
            return
        timeout = job.timeout or schedules.crawl_timeout
        outcome = self.runner.run(version.config, job_id, job.targets, timeout, job.spider, version.text_file)
        report(outcome)
        if outcome.reason == "stopped":
            self.interrupted.append((job_id, utcnow()))
        if not outcome.healthy and outcome.reason != "stopped":
            how = f"（{crawl_end(outcome.reason)}）" if outcome.reason != "finished" else ""
            subject = f"巡查任务 {job_id}：{zh(outcome.status, 'run')}{how}"
            notify_operator(self.db, version.config, subject, {
                "job": job_id, "targets": ",".join(job.targets) or "(all)", "run_id": outcome.run_id,
                "status": outcome.status, "reason": outcome.reason, "exit_code": outcome.returncode,
                **failing_targets(self.db, outcome.run_id), **outcome.files(),
            }, key=f"{job_id}:{outcome.status}:{outcome.reason}")
        self.alerts_tick()

    def alerts_tick(self) -> None:
        with self.alert_lock:
            try:
                result = deliver(self.config, self.db)
            except Exception:  # batch boundary: log and try again on the next tick
                logger.exception("alert processing failed; retrying on the next tick")
                return
            if result.alerts or result.sent or result.failed or result.unaddressed:
                logger.info("alerts: %d new, %d composed, %d sent, %d failed, %d without an address (%s)",
                            len(result.alerts), len(result.queued), len(result.sent), len(result.failed),
                            len(result.unaddressed), result.where)

    def _on_event(self, event) -> None:
        if event.job_id == ALERTS_JOB:
            if event.code == EVENT_JOB_ERROR:
                logger.error("alerts job failed: %s", event.exception)
            return
        if event.code == EVENT_JOB_MISSED:
            subject = f"巡查任务 {event.job_id} 错过计划时间"
            details = {"job": event.job_id, "scheduled": str(event.scheduled_run_time)}
        else:
            subject = f"巡查任务 {event.job_id} 出错"
            details = {"job": event.job_id, "error": repr(event.exception)}
        logger.error("%s: %s", subject, details)
        try:
            notify_operator(self.db, self.config, subject, details, key=f"{event.job_id}:{event.code}")
        except Exception:  # never let a listener break the scheduler
            logger.exception("could not queue the operator notice")

    def check_config(self, forced: bool = False) -> None:
        """Take up an edited config file, or refuse it and say why (see ``config_watch``)."""
        if self.watch is None:
            return
        change = self.watch.check(self.version, forced)
        if change is None:
            return
        if change.version is self.version:
            logger.warning("%s: unchanged, in effect since %s", self.config.source, stamp(self.version.read_at))
        elif change.version is not None:
            self.take(change.version)
        else:
            self.refuse(change)

    def take(self, version: Version) -> None:
        known = set(self.config.warnings())  # logged already
        self.version = version
        self.runner.stop_grace = version.config.schedules.stop_grace
        self.sync_jobs()
        jobs = self.crawl_jobs()
        logger.warning("%s changed: reloaded, %d job(s) scheduled", self.config.source, len(jobs))
        if len(jobs) > self.crawl_threads:
            logger.warning("%d jobs, but this service runs at most %d crawls at once until it is restarted",
                           len(jobs), self.crawl_threads)
        for warning in (w for w in version.config.warnings() if w not in known):
            logger.warning("%s: %s", self.config.source, warning)
        if self.on_config is not None:
            self.on_config(version.config, jobs)

    def refuse(self, change: Change) -> None:
        """Keep the version in effect; log the problems and mail the operator once per version."""
        source = self.config.source
        why = "改动需重启服务才能生效" if change.needs_restart else "有误，改动未生效"
        logger.error("%s changed but %s; still running the version read at %s:\n  %s", source,
                     "needs a restart of serve to take effect" if change.needs_restart else "is invalid",
                     stamp(self.version.read_at), "\n  ".join(change.problems))
        try:
            notify_operator(self.db, self.config, f"配置文件{why}：{source}", {
                "file": str(source), "problems": "\n".join(change.problems),
                "in_effect": f"{stamp(self.version.read_at)}（sha256 {self.version.digest[:16]}）",
            }, key=f"config:{change.digest[:16]}")
        except Exception:  # the notice is best effort; the refusal stands
            logger.exception("could not queue the operator notice of the refused config")

    def due_again(self, interrupted: list[tuple[str, datetime]], missed: list[tuple[str, datetime]] = ()) -> None:
        """Store each job the stop interrupted as due at its interruption, and each one that fell
        due while stopping (``missed``) as due then, unless it is due earlier anyway. The scheduler
        is shut down: its job store is written directly. APScheduler 3 processes due jobs once
        more when shut down and, unable to start them, moves them on to their next run: without
        this a crawl due during a restart was skipped."""
        if not interrupted and not missed:
            return
        store = job_store(self.db)
        store.start(None, "default")
        for (job_id, at), why in [*((j, "was stopped") for j in interrupted),
                                  *((j, "fell due while serve stopped") for j in missed)]:
            job = store.lookup_job(job_id)
            if job is None:
                continue
            if job.next_run_time is None or job.next_run_time > at:
                job.next_run_time = at
                store.update_job(job)
            logger.warning("crawl %s %s: it runs when serve starts again within %g s", job_id, why,
                           self.config.schedules.misfire_grace)

    def crawl_jobs(self) -> list:
        return [job for job in self.scheduler.get_jobs() if job.id != ALERTS_JOB]

    def request_stop(self, *_args) -> None:
        self.stop_event.set()
        self.wake.set()

    def request_reload(self, *_args) -> None:
        self.reload_asked = True
        self.wake.set()

    def run(self, install_signals: bool = True, on_config=None) -> None:
        """Start, serve until SIGTERM/SIGINT (or :meth:`request_stop`), then stop cleanly.

        ``on_config(config, jobs)`` is called once the crawl jobs are scheduled (APScheduler
        jobs), and again after each reload of the config."""
        global _service
        _service = self
        self.on_config = on_config
        if install_signals:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
            signal.signal(signal.SIGHUP, self.request_reload)
        self.scheduler.start(paused=True)
        self.sync_jobs()
        if on_config is not None:
            on_config(self.config, self.crawl_jobs())
        self.scheduler.resume()
        logger.info("finpatrol serve: %d job(s) scheduled", len(self.config.schedules.jobs))
        try:
            while not self.stop_event.is_set():
                self.wake.wait(WATCH_EVERY)
                self.wake.clear()
                if not self.stop_event.is_set():
                    forced, self.reload_asked = self.reload_asked, False
                    try:
                        self.check_config(forced)
                    except Exception:  # the service goes on with the version in effect
                        logger.exception("could not check %s for changes", self.config.source)
                    housekeep_daily(self.config, self.db)
        finally:
            logger.info("finpatrol serve: stopping")
            self.scheduler.pause()
            # APScheduler 3 processes due jobs once more when shut down: the alert job (sync_jobs adds
            # it at every start) would be submitted to the stopped executor, an error in the log.
            self.scheduler.remove_job(ALERTS_JOB)
            self.runner.stop_all()
            planned = {job.id: job.next_run_time for job in self.crawl_jobs()}
            with _quiet_about_submitting():
                self.scheduler.shutdown(wait=True)
            self.due_again(self.interrupted, missed=[(job_id, at) for job_id, at in planned.items()
                                                    if at is not None and at <= utcnow()])
            self.alerts_tick()
            self.db.close()
            _service = None
            logger.info("finpatrol serve: stopped")
