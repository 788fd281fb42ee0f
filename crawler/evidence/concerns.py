"""Which registered institution a hit concerns, and how a listing showed it: for hand-over.

A hit on an institution's own site concerns that institution (reason ``own_site``). A hit
of an ad channel or opinion source (stored under ``channel:<id>`` / ``source:<id>``)
concerns the institution the attribute pipeline attributed it to in ``hit_attributions``
(by ``domain``, ``advertiser`` or ``name``), or none. A page found through a listing also
has its ``listed_pages`` row: keyword, rank, ad slot, advertiser, author, publish time.
Read by ``evidence export`` (the manifest) and ``finpatrol show``.
"""

from __future__ import annotations

import logging

from sqlalchemy import inspect

from crawler.discovery.models import HitAttribution, ListedPage
from crawler.store.db import StateDB
from crawler.store.models import Hit, TargetRow
from crawler.wording import zh

logger = logging.getLogger(__name__)

LISTING_FIELDS = ("origin", "origin_id", "list_url", "slot", "keyword", "rank", "is_ad", "advertiser",
                  "landing_chain", "author", "posted_at", "replies", "kind", "slot_title", "slot_text")
"""Columns of ``listed_pages`` handed over as they are stored (``posted_at`` as the site listed it;
``slot``: the hit is the entry as listed, whose evidence is the list page; ``slot_title`` and
``slot_text``: the entry's title and snippet on the list page)."""


def is_listing_subject(target_id: str) -> bool:
    """True for the pseudo targets of channels and sources (``channel:sousuo``): target ids have no colon."""
    return ":" in target_id


def attributed_to(session, hit: Hit) -> dict | None:
    """The institution the hit concerns: ``id, name, credit_code, business, reason, reason_zh, detail``.

    The attribution stored with the hit (a channel or source hit, or a post on a forum
    registered as a target), else the target whose own site it is; None for a channel or
    source hit attributed to no registered institution. ``name``, ``credit_code`` and
    ``business`` come from the targets table (empty, None and empty when the institution
    is no longer in it)."""
    row = session.get(HitAttribution, hit.id) if _has(session, HitAttribution) else None
    if row is not None:
        target_id, reason, detail = row.target_id, row.reason, row.detail
    elif not is_listing_subject(hit.target_id):
        target_id, reason, detail = hit.target_id, "own_site", ""
    else:
        return None
    target = session.get(TargetRow, target_id)
    return {
        "id": target_id,
        "name": target.name if target else "",
        "credit_code": target.credit_code if target else None,
        "business": target.business if target else "",
        "reason": reason,
        "reason_zh": zh(reason, "attribution"),
        "detail": detail,
    }


def listing(session, hit: Hit) -> dict | None:
    """How a channel or source listed the hit's page (``LISTING_FIELDS``), None when it was not listed."""
    if not _has(session, ListedPage):
        return None
    row = session.get(ListedPage, hit.page_id)
    return {name: getattr(row, name) for name in LISTING_FIELDS} if row else None


def hit_concerns(db: StateDB, hit_id: int) -> dict:
    """``{"attributed_to": …, "listed": …}`` of one hit; both None when there is no such hit."""
    with db.new_session() as session:
        hit = session.get(Hit, hit_id)
        if hit is None:
            return {"attributed_to": None, "listed": None}
        return {"attributed_to": attributed_to(session, hit), "listed": listing(session, hit)}


def _has(session, model) -> bool:
    """A state DB from before channels and sources has not got their tables yet."""
    return inspect(session.connection()).has_table(model.__tablename__)
