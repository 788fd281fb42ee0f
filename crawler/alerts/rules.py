"""Alert rules and clocks: what a hit's category triggers, quiet hours, digest times.

Driven by ``alerts.rules``, ``alerts.targets`` (per-target rules tried first),
``alerts.urgent_risk``, ``alerts.quiet_hours``, ``alerts.digest_time`` and
``alerts.timezone``. Pure functions of the config and the time they are given.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from crawler.alerts.config import AlertsConfig, risk_rank

logger = logging.getLogger(__name__)


def decide(config: AlertsConfig, target_id: str | None, category: str, risk: str) -> str:
    """``immediate``, ``digest`` or ``ignore`` for one category of a hit; first match wins."""
    for rule in (*config.targets.get(target_id or "", ()), *config.rules):
        if ("*" in rule.categories or category in rule.categories) and risk_rank(risk) >= risk_rank(
            rule.min_risk
        ):
            return rule.action
    return "ignore"


def is_urgent(config: AlertsConfig, risk: str) -> bool:
    return risk_rank(risk) >= risk_rank(config.urgent_risk)


def local(config: AlertsConfig, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(config.timezone))


def in_quiet_hours(config: AlertsConfig, now: datetime) -> bool:
    """True inside ``quiet_hours`` (local time); spans past midnight when start > end."""
    quiet = config.quiet_hours
    if quiet is None or quiet.start == quiet.end:
        return False
    clock = local(config, now).time()
    if quiet.start < quiet.end:
        return quiet.start <= clock < quiet.end
    return clock >= quiet.start or clock < quiet.end


def last_digest_slot(config: AlertsConfig, now: datetime) -> datetime:
    """The most recent ``digest_time`` at or before ``now`` (aware, local zone)."""
    here = local(config, now)
    slot = _at(here, config.digest_time)
    return slot if slot <= here else _at(here - timedelta(days=1), config.digest_time)


def _at(day: datetime, clock: time) -> datetime:
    return day.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)


def digest_due(config: AlertsConfig, now: datetime, last_sent: datetime | None) -> bool:
    """A digest is due once per day after ``digest_time`` (held during quiet hours)."""
    slot = last_digest_slot(config, now)
    if last_sent is not None and last_sent >= slot:
        return False
    return not in_quiet_hours(config, now)
