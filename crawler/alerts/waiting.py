"""Alerts decided but not composed yet: what each waits for, and when it goes out.

An alert becomes a message when it is composed (``crawler.alerts.compose``); until then its
deliveries wait. A ``digest`` delivery waits for its unit's next daily digest
(``alerts.digest_time``, held through quiet hours); a non-urgent ``pending`` one for
``alerts.quiet_hours`` to end; any other ``pending`` one only for the next alert pass
(``serve`` every ``schedules.alerts_every``, or ``finpatrol alerts send``). ``finpatrol alerts
list --waiting`` shows them, so a duty officer sees what was caught and not told yet. When it
goes out is a forecast: composition may still drop a delivery (its hit reworded or withdrawn
meanwhile: ``crawler.alerts.standing``) or move it to the digest (``max_per_recipient_per_hour``).

Reads alerts and deliveries; writes nothing. Settings: ``alerts.digest_time``,
``alerts.quiet_hours``, ``alerts.timezone``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from crawler.alerts.compose import LAST_DIGEST, subject_for
from crawler.alerts.config import AlertsConfig
from crawler.alerts.models import Alert, AlertState, Delivery
from crawler.alerts.rules import in_quiet_hours, last_digest_slot, local
from crawler.store.db import as_utc, iso, parse_time

logger = logging.getLogger(__name__)
WAITS = ("next_pass", "quiet_hours", "digest")
"""Why an alert waits: only for the next alert pass, for quiet hours to end, for the digest."""


def waiting(session, config: AlertsConfig, now: datetime) -> list[dict]:
    """One dict per alert and reason its units wait (usually one per alert), soonest first."""
    state = session.get(AlertState, LAST_DIGEST)
    digest_at = next_digest(config, now, parse_time(state.value) if state else None)
    quiet_until = quiet_end(config, now) if in_quiet_hours(config, now) else None
    rows = session.execute(select(Delivery.unit, Delivery.state, Alert).join(Alert, Alert.id == Delivery.alert_id)
                           .where(Delivery.state.in_(("pending", "digest"))).order_by(Alert.id, Delivery.unit))
    out: dict[tuple[int, str], dict] = {}
    for unit, delivery_state, alert in rows:
        if delivery_state == "digest":
            waits, at = "digest", digest_at
        elif quiet_until is not None and not alert.urgent:
            waits, at = "quiet_hours", quiet_until
        else:
            waits, at = "next_pass", now
        entry = out.get((alert.id, waits))
        if entry is None:
            entry = out[(alert.id, waits)] = _entry(alert, waits, at)
        entry["units"].append(unit)
    return sorted(out.values(), key=lambda entry: (entry["send_at"], entry["alert_id"]))


def _entry(alert: Alert, waits: str, at: datetime) -> dict:
    p = alert.payload
    return {
        "alert_id": alert.id, "kind": alert.kind, "target": alert.target_id,
        "institution": p.get("institution", alert.target_id), "category": alert.category,
        "category_zh": p.get("category_zh", alert.category), "risk": alert.risk, "urgent": bool(alert.urgent),
        "hit_id": alert.hit_id, "units": [], "waits": waits, "send_at": iso(at),
        "created_at": iso(alert.created_at), "summary": subject_for([alert]),
    }


def next_digest(config: AlertsConfig, now: datetime, last_sent: datetime | None) -> datetime:
    """When the next digest is composed, as ``compose_digests`` decides it: at the first
    ``digest_time`` not yet served (now, when today's is still owed; the first one after the
    first alert pass when none was sent), or when quiet hours end if it falls in them."""
    slot = last_digest_slot(config, now)
    at = now if last_sent is not None and as_utc(last_sent) < slot else slot + timedelta(days=1)
    return quiet_end(config, at) if in_quiet_hours(config, at) else as_utc(at)


def quiet_end(config: AlertsConfig, at: datetime) -> datetime:
    """The first end of quiet hours after ``at`` (UTC)."""
    here, end = local(config, at), config.quiet_hours.end
    until = here.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    return as_utc(until if until > here else until + timedelta(days=1))
