"""Where the hit behind a queued alert stands when its message is composed.

A hit alert can wait hours before it is composed (the daily digest, quiet hours, a
patrol evaluated late); by then its page may have dropped the claim (rectified), been
deleted (gone), or said it in other words (reworded: the store's ``replaced_by``). The
composer asks here so that a message built now does not present such a hit as current:

- ``rectified`` / ``gone``: the claim, or its whole page, is no longer online. The
  message keeps it, marked, apart from current findings: it was published and the unit
  has not heard of it otherwise, but it needs no action now.
- ``taken_down``: a collapse or 维权 notice (``crawler.store.changes.taken_down``) was
  removed, or its page: that resolves nothing, so the entry stays current, marked.
- ``reworded``: the page says it in other words (hit ``latest``), still breaking a rule
  it broke; the entry is kept and says so.
- ``superseded``: reworded, and the unit has an alert of its own for a later wording in
  the same category (which names this hit as the earlier claim): the entry is dropped.
- ``withdrawn``: the page still says the same, but the office's rules no longer find a
  violation in it, or no longer this alert's category (the store's ``reclassified``):
  the entry is dropped.

A hit judged again under new rules with the same words (``reclassified`` with
``replaced_by``) is no rewording: while its successor is live and breaks the alert's
category, the alert stands as it is.

Reads hits, pages and alerts; writes nothing. No settings.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from crawler.alerts.models import Alert, Delivery
from crawler.store.changes import taken_down
from crawler.store.db import IN_CHUNK, in_chunks, iso
from crawler.store.models import Hit, Page

logger = logging.getLogger(__name__)
PAST = ("rectified", "gone")
"""Standings of a claim no longer online."""
MAX_CHAIN = 100  # rewordings followed from one hit; a guard against a cycle in replaced_by


def standings(session, unit: str, alerts: list[Alert]) -> dict[int, dict]:
    """alert id → ``{"state", "at", "latest"}`` for the hit alerts whose hit is no longer live;
    alerts of live hits (and opinion and operator alerts) are not in it."""
    ids = sorted({a.hit_id for a in alerts if a.kind == "hit" and a.hit_id})
    hits: dict[int, Hit] = {}
    for some in in_chunks(ids):
        hits.update((h.id, h) for h in session.scalars(select(Hit).where(Hit.id.in_(some))))
    out = {}
    for alert in alerts:
        hit = hits.get(alert.hit_id) if alert.kind == "hit" else None
        if hit is None or hit.removed_at is None:
            continue
        later = _rewordings(session, hit)
        last = later[-1] if later else hit
        if last.removed_at is not None:  # rectified in the end, perhaps after rewordings
            page = session.get(Page, last.page_id)
            if last.reclassified:
                state = "withdrawn"
            elif taken_down(last.labels):  # a collapse or 维权 notice removed: not resolved
                state = "taken_down"
            else:
                state = "gone" if page is not None and page.gone_at is not None else "rectified"
            out[alert.id] = {"state": state, "at": iso(last.removed_at), "latest": None}
        elif all(h.reclassified for h in [hit, *later[:-1]]):  # the same words, judged again
            if alert.category not in last.labels:  # but no longer as breaking this rule
                out[alert.id] = {"state": "withdrawn", "at": iso(hit.removed_at), "latest": last.id}
            # else still current: the entry stands as it is
        elif _told_of(session, unit, alert.category, [h.id for h in later]):
            out[alert.id] = {"state": "superseded", "at": iso(hit.removed_at), "latest": last.id}
        else:
            out[alert.id] = {"state": "reworded", "at": iso(hit.removed_at), "latest": last.id}
    return out


def _rewordings(session, hit: Hit) -> list[Hit]:
    """The hits that replaced ``hit`` on its page, one after the other (``replaced_by``)."""
    chain, seen, nxt = [], {hit.id}, hit.replaced_by
    while nxt is not None and nxt not in seen and len(chain) < MAX_CHAIN:
        later = session.get(Hit, nxt)
        if later is None:
            break
        chain.append(later)
        seen.add(later.id)
        nxt = later.replaced_by if later.removed_at is not None else None
    return chain


def _told_of(session, unit: str, category: str, hit_ids: list[int]) -> bool:
    """True when ``unit`` has a hit alert (queued or mailed) about ``category`` for one of ``hit_ids``."""
    if not hit_ids:
        return False
    query = (select(Alert.id).join(Delivery, Delivery.alert_id == Alert.id)
             .where(Alert.kind == "hit", Alert.category == category, Alert.hit_id.in_(hit_ids[-IN_CHUNK:]),
                    Delivery.unit == unit).limit(1))
    return session.scalar(query) is not None
