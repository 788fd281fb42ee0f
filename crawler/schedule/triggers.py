"""APScheduler triggers from the ``schedules.jobs`` config, and a hash to notice changes.

Pure: no scheduler is started here, so trigger arithmetic is testable by asking
a trigger for its next fire time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawler.schedule.config import Job, SchedulesConfig


def build_trigger(job: Job, timezone: str, start: datetime | None = None):
    """CronTrigger or IntervalTrigger for one job, with its jitter, in the schedule's time zone.

    An interval counts from ``start`` (default: now), so its first run is one interval later.
    """
    jitter = int(job.jitter) or None
    if job.cron is not None:
        return CronTrigger(**job.cron.model_dump(), timezone=timezone, jitter=jitter)
    first = start + timedelta(seconds=job.interval.every) if start else None
    return IntervalTrigger(seconds=job.interval.every, timezone=timezone, jitter=jitter, start_date=first)


def describe(job: Job) -> str:
    if job.cron is not None:
        c = job.cron
        return f"cron {c.minute} {c.hour} {c.day} {c.month} {c.day_of_week}"
    return f"every {timedelta(seconds=job.interval.every)}"


def spec_hash(job: Job, schedules: SchedulesConfig) -> str:
    """Changes when the job's trigger or targets change, so a restart keeps unchanged jobs as stored."""
    blob = json.dumps([job.model_dump(mode="json"), schedules.timezone], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def next_fire_times(job: Job, timezone: str, after: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` fire times after ``after`` (jitter ignored)."""
    trigger = build_trigger(job.model_copy(update={"jitter": 0}), timezone, start=after)
    out, previous, now = [], None, after
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        out.append(fire)
        previous, now = fire, fire + timedelta(microseconds=1)
    return out
