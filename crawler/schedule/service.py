"""``finpatrol serve``: the long-running patrol service on APScheduler 3.x.

Jobs come from ``schedules.jobs`` (cron or interval, jitter) and live in the state
DB (``SQLAlchemyJobStore`` on the same engine, table ``apscheduler_jobs``), so
schedules and missed runs survive restarts: a job whose trigger and targets are
unchanged keeps its stored next run time, and a run missed while the service was
down runs once at start-up when within ``schedules.misfire_grace``
(``coalesce=True``, ``max_instances=1``). A run missed beyond the grace, a job
error or an unhealthy crawl mails the operator unit. Every
``schedules.alerts_every`` and after each crawl the service evaluates new hits,
composes due mail and sends the outbox. SIGTERM/SIGINT stop cleanly: running
crawls are asked to close (then killed after ``schedules.stop_grace``), their
runs recorded, the outbox flushed once more.
"""

from __future__ import annotations

import logging
import signal
import threading

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from crawler.alerts.evaluate import notify_operator
from crawler.alerts.models import ensure_schema
from crawler.alerts.service import deliver
from crawler.config import PatrolConfig
from crawler.schedule.runner import CrawlOutcome, Runner
from crawler.schedule.triggers import build_trigger, spec_hash
from crawler.store.db import StateDB
from crawler.store.runs import failing_targets
from crawler.wording import crawl_end, zh

logger = logging.getLogger(__name__)
JOBS_TABLE = "apscheduler_jobs"
ALERTS_JOB = "_alerts"
_service: "Service | None" = None


def crawl_job(job_id: str) -> None:
    """Job function (stored by reference in the job store)."""
    if _service is not None:
        _service.crawl(job_id)


def alerts_job() -> None:
    if _service is not None:
        _service.alerts_tick()


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
    def __init__(self, config: PatrolConfig):
        self.config = config
        self.db = StateDB(config.db_url)
        ensure_schema(self.db)
        schedules = config.schedules
        self.runner = Runner(schedules.stop_grace)
        self.alert_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": job_store(self.db)},
            executors={"default": ThreadPoolExecutor(len(schedules.jobs) + 2)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": int(schedules.misfire_grace)},
            timezone=schedules.timezone,
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def sync_jobs(self) -> None:
        """Make the stored jobs match the config; unchanged jobs keep their stored next run."""
        schedules = self.config.schedules
        stored = {job.id: job for job in self.scheduler.get_jobs()}
        wanted = {job.id: job for job in schedules.jobs if job.enabled}
        for job_id, job in stored.items():
            if job_id != ALERTS_JOB and job_id not in wanted:
                logger.info("schedule: removing job %s (no longer configured)", job_id)
                job.remove()
        for job_id, job in wanted.items():
            name = job_name(job, schedules)
            if job_id in stored and stored[job_id].name == name:
                logger.info("schedule: %s kept, next run %s", job_id, stored[job_id].next_run_time)
                continue
            self.scheduler.add_job(
                "crawler.schedule.service:crawl_job", trigger=build_trigger(job, schedules.timezone),
                args=[job_id], id=job_id, name=name, replace_existing=True,
            )
            logger.info("schedule: %s (re)scheduled", job_id)
        self.scheduler.add_job(
            "crawler.schedule.service:alerts_job",
            trigger=IntervalTrigger(seconds=schedules.alerts_every, timezone=schedules.timezone),
            id=ALERTS_JOB, name="alerts", replace_existing=True, misfire_grace_time=None,
        )

    def crawl(self, job_id: str) -> None:
        schedules = self.config.schedules
        job = next(j for j in schedules.jobs if j.id == job_id)
        timeout = job.timeout or schedules.crawl_timeout
        outcome = self.runner.run(self.config, job_id, job.targets, timeout, job.spider)
        report(outcome)
        if not outcome.healthy and outcome.reason != "stopped":
            how = f"（{crawl_end(outcome.reason)}）" if outcome.reason != "finished" else ""
            subject = f"巡查任务 {job_id}：{zh(outcome.status, 'run')}{how}"
            notify_operator(self.db, self.config, subject, {
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

    def request_stop(self, *_args) -> None:
        self.stop_event.set()

    def run(self, install_signals: bool = True, on_started=None) -> None:
        """Start, serve until SIGTERM/SIGINT (or :meth:`request_stop`), then stop cleanly.

        ``on_started(jobs)`` is called once the crawl jobs are scheduled (APScheduler jobs)."""
        global _service
        _service = self
        if install_signals:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self.scheduler.start(paused=True)
        self.sync_jobs()
        if on_started is not None:
            on_started([job for job in self.scheduler.get_jobs() if job.id != ALERTS_JOB])
        self.scheduler.resume()
        logger.info("finpatrol serve: %d job(s) scheduled", len(self.config.schedules.jobs))
        try:
            self.stop_event.wait()
        finally:
            logger.info("finpatrol serve: stopping")
            self.scheduler.pause()
            self.runner.stop_all()
            self.scheduler.shutdown(wait=True)
            self.alerts_tick()
            self.db.close()
            _service = None
            logger.info("finpatrol serve: stopped")
