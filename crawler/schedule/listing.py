"""What ``finpatrol schedule list`` shows: every configured job and its next run.

Read from the job store in the state DB without starting a scheduler; a job the
service has not stored yet (or whose config changed since) shows the next run
its trigger would give now. A stored next run in the past is ``overdue``: a running
service would have run it and stored the next one, so the service is most likely
not running.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from crawler.config import PatrolConfig
from crawler.schedule.service import ALERTS_JOB, job_name, job_store
from crawler.schedule.triggers import describe, next_fire_times
from crawler.store.db import StateDB, iso, utcnow

logger = logging.getLogger(__name__)
OVERDUE = "overdue: is `finpatrol serve` running?"


def stored_jobs(db: StateDB) -> dict:
    store = job_store(db)
    store.start(None, "default")
    try:
        return {job.id: job for job in store.get_all_jobs()}
    finally:
        store.shutdown()


def _local(when: datetime | None, timezone: str) -> str | None:
    """``2026-11-30 03:00 CST``: in the schedule's zone, as the job's trigger reads (the job
    store gives stored times back in UTC)."""
    return when.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z") if when else None


def schedule_rows(config: PatrolConfig, db: StateDB, now: datetime | None = None) -> list[dict]:
    now = now or utcnow()
    schedules = config.schedules
    stored = stored_jobs(db)
    rows = []
    for job in schedules.jobs:
        entry = stored.get(job.id)
        overdue = False
        if not job.enabled:
            state, next_run = "disabled", None
        elif entry is not None and entry.name == job_name(job, schedules):
            state, next_run = "stored", entry.next_run_time
            overdue = next_run is not None and next_run < now
        else:
            state = "changed: applied when serve starts" if entry is not None else "not stored: serve not started"
            upcoming = next_fire_times(job, schedules.timezone, now, 1)
            next_run = upcoming[0] if upcoming else None
        rows.append({
            "id": job.id, "targets": list(job.targets) or ["(all enabled)"], "trigger": describe(job),
            "jitter": job.jitter, "next_run": iso(next_run) if next_run else None,
            "next_run_local": _local(next_run, schedules.timezone),
            "state": state, "overdue": overdue,
        })
    for job_id, entry in stored.items():
        if job_id != ALERTS_JOB and job_id not in {j.id for j in schedules.jobs}:
            rows.append({"id": job_id, "targets": [], "trigger": str(entry.trigger), "jitter": 0,
                         "next_run": iso(entry.next_run_time),
                         "next_run_local": _local(entry.next_run_time, schedules.timezone),
                         "state": "removed when serve starts", "overdue": False})
    return rows
