"""Writing alerts: dedup marks, alert rows and their per-unit deliveries.

Callers pass an open session so an alert, its deliveries and the dedup mark
that suppresses its repeats commit together or not at all.
Setting: ``alerts.renotify_after``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import select

from crawler.alerts.models import Alert, AlertMark, Delivery
from crawler.store.db import as_utc

logger = logging.getLogger(__name__)


def text_fingerprint(category: str, findings: list[dict]) -> str:
    """SHA-256 over the category and the normalised words that matched it (live findings only).

    The same wording on another page of the same institution, or on the same page in
    the next patrol, has the same fingerprint; changed wording has a new one.
    """
    words = sorted(
        {
            unicodedata.normalize("NFKC", f.get("text", "")).strip().lower()
            for f in findings
            if f.get("category") == category and not f.get("negated")
        }
    )
    blob = json.dumps([category, words], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def get_mark(session, target_id: str, category: str, fingerprint: str) -> AlertMark | None:
    return session.scalar(
        select(AlertMark).where(
            AlertMark.target_id == target_id,
            AlertMark.category == category,
            AlertMark.fingerprint == fingerprint,
        )
    )


def claim_mark(
    session, target_id: str, category: str, fingerprint: str, now: datetime, renotify_after: float
) -> bool:
    """True (and the mark set to ``now``) unless the same key alerted within ``renotify_after``."""
    mark = get_mark(session, target_id, category, fingerprint)
    if mark is not None and now - as_utc(mark.last_alerted) < timedelta(seconds=renotify_after):
        return False
    if mark is None:
        mark = AlertMark(target_id=target_id, category=category, fingerprint=fingerprint, count=0)
        session.add(mark)
    mark.last_alerted = now
    session.flush()
    return True


def add_alert(
    session,
    *,
    kind: str,
    target_id: str | None,
    hit_id: int | None,
    category: str,
    risk: str,
    action: str,
    urgent: bool,
    fingerprint: str,
    payload: dict,
    units: list[str],
    now: datetime,
) -> Alert:
    alert = Alert(
        kind=kind, target_id=target_id, hit_id=hit_id, category=category, risk=risk,
        action=action, urgent=urgent, fingerprint=fingerprint, payload=payload, created_at=now,
    )
    session.add(alert)
    session.flush()
    state = "pending" if action == "immediate" else "digest"
    session.add_all(Delivery(alert_id=alert.id, unit=unit, state=state) for unit in units)
    logger.info("alert %s: %s %s %s → %s (%s)", alert.id, kind, target_id, category, ",".join(units), action)
    return alert
