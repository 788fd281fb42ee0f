"""Hits of the same content: one claim a target serves under several URLs.

A redirect (``invest.php`` → ``products.html``, both stored), query variants
(``?term=3``, ``?page=2``) and tracking parameters give one page several URLs. Each URL
is a place the claim was published and keeps its own hit and evidence; this module only
says which hits show a person the same thing, so that lists and counts can show it once.

The definition, here and nowhere else: two live hits (not removed) are the same content
when they are of the same target, their pages have the same text fingerprint
(``pages.text_fingerprint``: the extracted title and text) and the hits the same labels.
The representative of a content is its earliest hit (first seen, then the smaller id).
A removed hit (rectified, reworded, withdrawn, its page gone) is of no content group:
where the claim left one URL and stays on another, the two are told apart.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import select

from crawler.store.db import IN_CHUNK, StateDB, in_chunks
from crawler.store.models import Hit, Page

logger = logging.getLogger(__name__)


class SameContent(NamedTuple):
    """The live hits of one content, two or more."""

    representative: int
    """The earliest hit's id (first seen, then the smaller id)."""
    members: tuple[tuple[int, str], ...]
    """(hit id, URL) of every hit of the content, the representative first, then by first seen and id."""

    def others(self, hit_id: int) -> list[dict]:
        """The content's other hits than ``hit_id``, as ``{"id", "url"}``."""
        return [{"id": other, "url": url} for other, url in self.members if other != hit_id]


def content_key(target_id: str, text_fingerprint: str, labels: Iterable[str]) -> tuple:
    """What makes two live hits the same content (see the module docstring)."""
    return target_id, text_fingerprint, tuple(sorted(labels))


def _live_with_page(*columns):
    return select(*columns).join(Page, Page.id == Hit.page_id).where(Hit.removed_at.is_(None))


def same_content(db: StateDB, hit_ids: Iterable[int]) -> dict[int, SameContent]:
    """The content of each of ``hit_ids`` that is live and shared with another live hit, keyed by
    hit id; every hit of those contents is a key, also those not in ``hit_ids``. A hit alone
    with its content, and a removed hit, is no key."""
    asked = set(hit_ids)
    with db.new_session() as session:
        shared = _same_text(session, asked)
        labels: dict[int, list] = {}
        for chunk in in_chunks(sorted(r.id for rows in shared for r in rows)):
            labels.update((row.id, row.labels) for row in session.execute(
                select(Hit.id, Hit.labels).where(Hit.id.in_(chunk))))
    groups: dict[tuple, list] = defaultdict(list)
    for rows in shared:
        for row in rows:
            groups[content_key(row.target_id, row.text_fingerprint, labels[row.id])].append(row)
    out: dict[int, SameContent] = {}
    for rows in groups.values():
        if len(rows) < 2:
            continue
        rows.sort(key=lambda r: (r.first_seen, r.id))
        content = SameContent(rows[0].id, tuple((r.id, r.url) for r in rows))
        out.update((r.id, content) for r in rows)
    return out


def _same_text(session, asked: set[int]) -> list[list]:
    """The live hits (id, url, first seen, target, page text fingerprint) of each page text of a
    target that two or more live hits show, one of them in ``asked``. Reads the live hits of the
    asked hits' targets (of their page texts, when those are few) once, without their labels:
    no index on fingerprints needed, no JSON decoded."""
    texts: set[tuple[str, str]] = set()
    for chunk in in_chunks(sorted(asked)):
        texts.update(tuple(row) for row in session.execute(
            _live_with_page(Hit.target_id, Page.text_fingerprint).where(Hit.id.in_(chunk)).distinct()))
    fingerprints = sorted({fingerprint for _, fingerprint in texts})
    same_text: dict[tuple[str, str], list] = defaultdict(list)
    for chunk in in_chunks(sorted({target for target, _ in texts}), IN_CHUNK // 2):
        query = _live_with_page(Hit.id, Hit.url, Hit.first_seen, Hit.target_id, Page.text_fingerprint) \
            .where(Hit.target_id.in_(chunk))
        if len(fingerprints) <= IN_CHUNK // 2:  # with the targets, one IN () list's worth
            query = query.where(Page.text_fingerprint.in_(fingerprints))
        for row in session.execute(query):
            same_text[(row.target_id, row.text_fingerprint)].append(row)
    return [rows for rows in same_text.values() if len(rows) > 1 and any(r.id in asked for r in rows)]


def with_same_content(db: StateDB, rows: list[dict], groups: dict[int, SameContent] | None = None) -> list[dict]:
    """``rows`` (dicts with an ``id`` of a hit), each given ``same_content_as``: the id of its
    content's representative (its own id when it is the representative), None when no other
    live hit shows the same content; and ``also_at``: the content's other hits as ``{"id", "url"}``
    (empty then). ``groups``: from :func:`same_content`, when the caller has them already."""
    if groups is None:
        groups = same_content(db, [row["id"] for row in rows])
    for row in rows:
        content = groups.get(row["id"])
        row["same_content_as"] = content.representative if content else None
        row["also_at"] = content.others(row["id"]) if content else []
    return rows


def representatives(hit_ids: Iterable[int], groups: dict[int, SameContent]) -> set[int]:
    """One id per content among ``hit_ids``: its representative's (a hit of no group: its own),
    so that ``len()`` counts the distinct contents. ``groups``: from :func:`same_content`."""
    return {groups[hit_id].representative if hit_id in groups else hit_id for hit_id in hit_ids}
