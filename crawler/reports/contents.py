"""An institution's hit rows folded by content, and the two units dossiers and reports count in.

**网页** (a page) is a post URL (``crawler.items.post_url``): the records of one post found
on a target's site, on an opinion source and as a listed snippet are one page. **内容** (a
content) is what a person sees: the live hits that show the same content on several URLs
of a target (a redirect, query variants: ``crawler.store.same_content``), and the live
records of one page, are one content; a removed hit is a content of its own (its page
may show another now). So live contents never outnumber the live pages.

The rendered dossier lists a content of one target on several URLs as one row, led by the
content's first hit, with the other URLs, their hit ids and evidence on that row: 11 条违规
内容，涉及 16 个网页. Every hit keeps its own row in the dossier's JSON (``hits``, with
``same_content_as`` and ``also_at``); only the rendered documents fold them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

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


def count_contents(rows: Iterable[dict]) -> int:
    """How many contents the hit ``rows`` (``id``, ``post``, ``same_content_as``, ``removed_at``) show:
    live rows sharing a content or a page are one (joined transitively), a removed row is one alone."""
    parent: dict[tuple, tuple] = {}

    def root(key: tuple) -> tuple:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    firsts = []
    for row in rows:
        if row["removed_at"]:
            keys = [("hit", row["id"])]
        else:
            keys = [("post", row["post"])]
            if row["same_content_as"] is not None:
                keys.append(("content", row["same_content_as"]))
        firsts.append(keys[0])
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    return len({root(key) for key in firsts})


def live_contents(hits: list[dict]) -> dict:
    """What the live ``hits`` show: contents (``live``), pages (``live_pages``) and hit records
    (``live_urls``: one per URL of a target or source)."""
    live = [h for h in hits if not h["removed_at"]]
    return {"live": count_contents(live), "live_pages": len({h["post"] for h in live}), "live_urls": len(live)}
