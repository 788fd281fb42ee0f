"""Why and when a hit was removed, and every time it went and came back, from the change records.

A hit's row keeps only its latest state (``removed_at``, ``removed_run_id``, ``replaced_by``,
``reclassified``, ``reopened_at``); the change records (``page_changes``) keep each patrol that
removed it or brought it back. ``removal`` says why a removed hit is removed now; ``history``
lists its whole life on the page. Read by ``evidence export`` (the manifest) and by ``show``/``hits``.

Reasons (``why``): ``page_gone`` (the server answered 404/410 for its page), ``claim_removed``
(its claims are no longer on the page: rectified), ``replaced`` (reworded: ``replaced_by`` names
the hit that says it in other words), ``withdrawn`` (the office's rules changed, the words
stayed) and ``rejudged`` (judged again by changed rules as ``replaced_by``).
"""

from __future__ import annotations

import logging

from sqlalchemy import or_, select

from crawler.store.changes import supersedes, taken_down
from crawler.store.db import as_utc, iso
from crawler.store.models import Hit, Page, PageChange

logger = logging.getLogger(__name__)

WHY = {
    "page_gone": "page gone (the server answered 404/410)",
    "claim_removed": "claims no longer on the page (rectified)",
    "replaced": "reworded: replaced by another hit",
    "withdrawn": "withdrawn: the rules changed, the words stayed",
    "rejudged": "judged again by changed rules: replaced by another hit",
}
"""Each removal reason, in words."""
SHOWN_BY_PAGE = frozenset({"claim_removed", "replaced"})
"""Reasons the page as then fetched shows (it changed): the evidence pipeline archives that fetch.
``page_gone`` is shown by the archived 404/410 answer; a removal by changed rules (``withdrawn``,
``rejudged``) shows nothing on the page and is not archived."""
SHOWN = SHOWN_BY_PAGE | {"page_gone"}
"""Reasons a capture shows (``Evidence.gone_hit_id``)."""


def _why(gone: bool, replaced_by: int | None, by_rules: bool) -> str:
    if gone:
        return "page_gone"
    if by_rules:
        return "rejudged" if replaced_by else "withdrawn"
    return "replaced" if replaced_by else "claim_removed"


def _removed(change: PageChange, hit: Hit, successor: Hit | None) -> dict:
    """The removal of ``hit`` by ``change``, judged as ``change_report.change_dict`` judges it."""
    by_rules = bool(change.by_rules)
    if change.by_rules is None:  # recorded before by_rules was: one version, hit withdrawn
        by_rules = bool(hit.reclassified) and change.old_version_id == change.new_version_id
    replaced = change.kind == "changed" and successor is not None and supersedes(successor.labels, hit.labels)
    why = _why(change.kind == "gone", successor.id if replaced else None, by_rules)
    return {"event": "removed", "at": iso(change.at), "run_id": change.run_id, "change_id": change.id,
            "why": why, "replaced_by": successor.id if replaced else None,
            "taken_down": why in ("page_gone", "claim_removed") and taken_down(hit.labels)}


def history(session, hit: Hit) -> list[dict]:
    """Every change that opened, removed or brought back ``hit``, oldest first.

    Each is ``{"event": "opened"|"removed"|"back", "at", "run_id", "change_id"}``; a removal also
    has ``why``, ``replaced_by`` and ``taken_down``. A hit the office's new rules found in words
    already on its page is ``opened`` by the change that found it, though its first_seen is older."""
    changes = session.scalars(
        select(PageChange).where(or_(PageChange.old_hit_id == hit.id, PageChange.new_hit_id == hit.id))
        .order_by(PageChange.at, PageChange.id)).all()
    events: list[dict] = []
    for change in changes:
        if change.old_hit_id == hit.id and (change.kind == "gone" or change.new_hit_id != hit.id):
            successor = session.get(Hit, change.new_hit_id) if change.new_hit_id else None
            events.append(_removed(change, hit, successor))
        elif change.new_hit_id == hit.id and (change.old_hit_id != hit.id or change.kind == "added"):
            event = "back" if any(e["event"] == "removed" for e in events) else "opened"
            events.append({"event": event, "at": iso(change.at), "run_id": change.run_id, "change_id": change.id})
    return events


def removal(session, hit: Hit) -> dict | None:
    """Why a removed hit is removed: ``{"at", "run_id", "why", "replaced_by", "taken_down",
    "change_id"}``; None while the hit is live.

    ``replaced_by`` and ``reclassified`` are the hit's own columns; that the page went is the
    change record of the removal (``gone``), or for one without, the page's ``gone_at``."""
    if hit.removed_at is None:
        return None
    change = session.scalar(
        select(PageChange).where(PageChange.old_hit_id == hit.id,
                                 PageChange.at == select(Hit.removed_at).where(Hit.id == hit.id).scalar_subquery())
        .order_by(PageChange.id.desc()).limit(1))
    if change is not None:
        gone = change.kind == "gone"
    else:
        page = session.get(Page, hit.page_id)
        gone = page is not None and as_utc(page.gone_at) == as_utc(hit.removed_at)
    why = _why(gone, hit.replaced_by, bool(hit.reclassified))
    return {"at": iso(hit.removed_at), "run_id": hit.removed_run_id, "why": why, "replaced_by": hit.replaced_by,
            "taken_down": why in ("page_gone", "claim_removed") and taken_down(hit.labels),
            "change_id": change.id if change is not None else None}
