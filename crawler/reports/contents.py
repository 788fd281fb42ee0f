"""An institution's hit rows folded by content, as dossiers list and count them.

The live hits that show the same content on several URLs of a target (a redirect, query
variants: ``crawler.store.same_content``) are one row of a dossier, led by the content's
first hit, with the other URLs, their hit ids and evidence on that row: 11 条违规内容，见于
16 个页面. Every hit keeps its own row in the dossier's JSON (``hits``, with
``same_content_as`` and ``also_at``); only the rendered documents fold them.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def fold_contents(hits: list[dict]) -> list[dict]:
    """``hits`` (rows given ``same_content_as`` by ``crawler.store.same_content.with_same_content``)
    with those of one content made one row: the content's first hit (its representative; the
    earliest of the content's rows here, if that is not among them), in its place, with the
    content's other rows as ``same_pages`` (first seen first). Every other row comes as it is, with ``same_pages`` empty."""
    members: dict[int, list[dict]] = {}
    for hit in hits:
        if hit["same_content_as"] is not None:
            members.setdefault(hit["same_content_as"], []).append(hit)
    leads = {first: min(rows, key=lambda r: (r["id"] != first, r["first_seen"], r["id"]))
             for first, rows in members.items()}
    out = []
    for hit in hits:
        first = hit["same_content_as"]
        if first is None:
            out.append({**hit, "same_pages": []})
        elif leads[first] is hit:
            others = sorted((r for r in members[first] if r is not hit), key=lambda r: (r["first_seen"], r["id"]))
            out.append({**hit, "same_pages": others})
    return out


def live_contents(hits: list[dict]) -> dict:
    """How many distinct contents the live ``hits`` show (``live``), on how many URLs (``live_urls``:
    one live hit each)."""
    live = [h for h in hits if not h["removed_at"]]
    return {"live": len({h["same_content_as"] or h["id"] for h in live}), "live_urls": len(live)}
