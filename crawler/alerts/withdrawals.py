"""Tell a unit when a hit it was mailed about is withdrawn by the office's new rules.

A hit is withdrawn when the classifier that judged its page changed and the claims' words
stayed (``hits.reclassified``, see ``crawler.store.changes``): with no successor, or judged
again without some of its categories. A unit mailed an alert about one of those categories,
for that hit or one it judged again, may be acting on it; it gets one notice per such alert
(kind ``withdrawal``, sent at once, through quiet hours when the alert was urgent, once per
alert): the page still says the same, the rules no longer call it that, and the earlier alert
needs no action. Told so, the unit is no longer counted as told of the claim
(``crawler.alerts.records.untell``): rules that find it again alert it again at once. Queued alerts of withdrawn
hits are never mailed (``crawler.alerts.standing``), so they need no notice. Evaluated with
the hit alerts of each patrol run (``crawler.alerts.evaluate``; a run still running is
evaluated again, so an alert already noticed is skipped).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from crawler.alerts.models import Alert, Delivery, OutboxMessage
from crawler.alerts.records import add_alert, untell, withdrawal_key
from crawler.items import post_url
from crawler.store.db import in_chunks, iso
from crawler.store.models import Hit

logger = logging.getLogger(__name__)
MAX_CHAIN = 100  # judged-again links followed back from one hit: a guard against a cycle


def withdrawal_alerts(session, run_ids: list[int], now: datetime) -> list[int]:
    """Queue a notice for every mailed alert whose category a hit withdrawn in these runs lost."""
    withdrawn = [hit for some in in_chunks(run_ids) for hit in session.scalars(
        select(Hit).where(Hit.reclassified.is_(True), Hit.removed_run_id.in_(some)).order_by(Hit.id))]
    if not withdrawn:
        return []
    judged = _judged_again(session)
    ids: list[int] = []
    for hit in withdrawn:
        successor = session.get(Hit, hit.replaced_by) if hit.replaced_by else None
        dropped = [c for c in hit.labels if successor is None or c not in successor.labels]
        if dropped:
            ids += _notices(session, hit, successor, dropped, _chain(hit.id, judged), now)
    return ids


def _notices(session, hit: Hit, successor: Hit | None, dropped: list[str], chain: list[int],
             now: datetime) -> list[int]:
    told: dict[int, tuple[Alert, list[str], datetime | None]] = {}
    query = (select(Alert, Delivery.unit, OutboxMessage.created_at)
             .join(Delivery, Delivery.alert_id == Alert.id)
             .outerjoin(OutboxMessage, OutboxMessage.id == Delivery.outbox_id)
             .where(Alert.kind == "hit", Alert.hit_id.in_(chain), Alert.category.in_(dropped),
                    Delivery.state == "mailed")
             .order_by(Alert.id, Delivery.unit))
    for alert, unit, mailed_at in session.execute(query):
        entry = told.setdefault(alert.id, (alert, [], mailed_at))
        entry[1].append(unit)
    ids = []
    for alert, units, mailed_at in told.values():
        fingerprint = withdrawal_key(alert.id)
        if session.scalar(select(Alert.id).where(Alert.hit_id == hit.id, Alert.kind == "withdrawal",
                                                 Alert.fingerprint == fingerprint)):
            continue  # told already: a run is evaluated again while it is still running
        p = alert.payload
        payload = {
            "institution": p.get("institution", alert.target_id), "target": alert.target_id,
            "category": alert.category, "category_zh": p.get("category_zh", alert.category),
            "title": hit.title, "url": hit.url, "hit_id": alert.hit_id,
            "told_at": iso(mailed_at or alert.created_at),  # when the message was composed and queued
            "withdrawn_at": iso(hit.removed_at), "latest": successor.id if successor is not None else None,
        }
        notice = add_alert(session, kind="withdrawal", target_id=alert.target_id, hit_id=hit.id,
                           category=alert.category, risk=alert.risk, action="immediate", urgent=alert.urgent,
                           fingerprint=fingerprint, payload=payload, units=units, now=now)
        untell(session, alert, hit.page_id, post_url(hit.url), units)
        ids.append(notice.id)
    return ids


def _judged_again(session) -> dict[int, list[int]]:
    """hit id → the hits it judged again (``reclassified``, ``replaced_by`` it), read in one query."""
    links: dict[int, list[int]] = {}
    for hit_id, successor in session.execute(
            select(Hit.id, Hit.replaced_by).where(Hit.reclassified.is_(True), Hit.replaced_by.is_not(None))):
        links.setdefault(successor, []).append(hit_id)
    return links


def _chain(hit_id: int, judged: dict[int, list[int]]) -> list[int]:
    """``hit_id`` and the hits it judged again, back through their replacements: a unit told of
    any of them was told of these words."""
    chain, frontier = [hit_id], [hit_id]
    while frontier and len(chain) < MAX_CHAIN:
        frontier = [earlier for h in frontier for earlier in judged.get(h, ()) if earlier not in chain]
        chain += frontier
    return chain


def withdrawn_before(session, hit_id: int, category: str) -> dict | None:
    """What a hit alert says when the rules find a claim again that a unit was told is
    withdrawn (the office took its rule change back): when the last notice was queued."""
    at = session.scalar(select(Alert.created_at).where(
        Alert.kind == "withdrawal", Alert.hit_id == hit_id, Alert.category == category)
        .order_by(Alert.id.desc()).limit(1))
    return {"at": iso(at)} if at is not None else None
