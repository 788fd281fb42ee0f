"""The ``schedules:`` block of ``patrol.yaml``: when ``finpatrol serve`` crawls what.

Each job names a group of targets and either a ``cron`` or an ``interval``.
Cron day-of-week must use names (``mon-fri``): APScheduler 3.x reads 0 as
Monday, unlike crontab, so numbers are rejected instead of silently shifted.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from crawler.alerts.config import Seconds, check_timezone

JOB_ID = re.compile(r"^[a-z0-9_-]+$")
CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Cron(_Frozen):
    """Cron fields in APScheduler's syntax; unset fields mean ``*`` (``minute`` means 0)."""

    minute: str = "0"
    hour: str = "*"
    day: str = "*"
    month: str = "*"
    day_of_week: str = "*"

    @field_validator("*", mode="before")
    @classmethod
    def _as_text(cls, value):
        return str(value) if isinstance(value, int) else value

    @field_validator("day_of_week")
    @classmethod
    def _day_names(cls, value: str) -> str:
        if re.search(r"(?<![/])\b\d", value):
            raise ValueError(
                f"use day names like 'mon-fri' or 'sun', got {value!r}: "
                "in APScheduler 0 means Monday, not Sunday as in crontab"
            )
        return value

    @model_validator(mode="after")
    def _builds(self) -> "Cron":
        """Each field as APScheduler reads it, so a bad one fails at load, not when the service starts."""
        for name in CRON_FIELDS:
            value = getattr(self, name)
            try:
                CronTrigger(**{name: value}, timezone="UTC")
            except ValueError as e:
                why = str(e).removeprefix(f"Error validating expression {value!r}: ")
                raise ValueError(f"invalid cron {name} {value!r}: {why}") from None
        return self


def _cron(value):
    """A five-field crontab string becomes the field mapping."""
    if isinstance(value, str):
        parts = value.split()
        if len(parts) != 5:
            raise ValueError(f"expected 5 cron fields 'minute hour day month day_of_week', got {value!r}")
        return dict(zip(CRON_FIELDS, parts))
    return value


class Interval(_Frozen):
    every: Seconds = Field(gt=0)


def _interval(value):
    return {"every": value} if isinstance(value, (int, float, str)) else value


class Job(_Frozen):
    """One scheduled crawl of a group of targets."""

    id: str
    targets: tuple[str, ...] = ()
    """Target ids (channel or source ids for those spiders); empty means every enabled one."""
    spider: Literal["site_patrol", "ad_channel", "opinion"] = "site_patrol"
    """What the job crawls: the targets' sites, the ad channels or the opinion sources."""
    cron: Annotated[Cron, BeforeValidator(_cron)] | None = None
    interval: Annotated[Interval, BeforeValidator(_interval)] | None = None
    jitter: Seconds = 0
    """Random delay up to this long, so groups do not hit shared hosts together."""
    timeout: Seconds | None = None
    """Kill the crawl after this long (default ``schedules.crawl_timeout``)."""
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not JOB_ID.match(value):
            raise ValueError(f"expected lower-case letters, digits, '_' or '-', got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> "Job":
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of 'cron' or 'interval'")
        return self


class SchedulesConfig(_Frozen):
    timezone: Annotated[str, BeforeValidator(check_timezone)] = "Asia/Shanghai"
    misfire_grace: Seconds = 3600
    """A run missed (service down) by less than this still runs once at start-up."""
    crawl_timeout: Seconds = 3 * 3600
    stop_grace: Seconds = 60
    """On SIGTERM or timeout a crawl gets this long to close cleanly before it is killed."""
    alerts_every: Seconds = Field(60, gt=0)
    """How often the service evaluates new hits, composes digests and sends the outbox."""
    jobs: tuple[Job, ...] = ()
    """Unique ids: checked by ``PatrolConfig`` with the other id lists, at the item's own field."""
