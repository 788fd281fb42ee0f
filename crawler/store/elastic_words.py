"""The words a hit's search document carries: the title and text of the version it was found in.

A hit records the title and ``text_fingerprint`` of the last fetch that gave its verdict;
``page_versions`` holds every title and text a page had, one row per (fingerprint, title)
run, so the hit's words are its page's version with both (the newest, should the page have
said the same twice). That is the page's current text while the page still says it; once a
claim was reworded or taken down the page says something else, and a document with the
page's text would contradict the hit's own findings and SHA-256, and a search of the hits
by the claim's words would miss it. The jieba terms are read where the embedded index holds
them (``page_fts`` for a page's current version, ``version_fts`` for superseded ones) and cut
only otherwise (a server state DB, or an upgraded one before ``finpatrol reindex``).
"""

from __future__ import annotations

import logging

from crawler.store.db import in_chunks
from crawler.store.elastic_docs import Words, segment, stored_segments
from crawler.store.models import Hit, Page

logger = logging.getLogger(__name__)


def hit_words(db, hits: list[Hit], pages: dict[int, Page],
              page_segs: dict[int, tuple[str, str]]) -> dict[int, Words]:
    """hit id → the words of the version it was found in, for every hit of ``hits``.

    ``pages``: the hits' pages by id; ``page_segs``: the stored terms of those pages
    (``elastic_docs.stored_segments``). A hit whose version is not stored (a state DB from
    before finpatrol kept versions) gets its title and no text rather than words it never had.
    """
    out: dict[int, Words] = {}
    older: list[Hit] = []
    for hit in hits:
        page = pages.get(hit.page_id)
        if page is not None and (page.text_fingerprint, page.title) == (hit.text_fingerprint, hit.title):
            title_seg, text_seg = page_segs.get(page.id) or (segment(page.title), segment(page.text))
            out[hit.id] = Words(page.text or "", title_seg, text_seg)
        else:
            older.append(hit)
    versions = _versions(db, [hit.id for hit in older])
    terms = stored_segments(db, [version_id for version_id, _ in versions.values()], table="version_fts")
    for hit in older:
        version_id, text = versions.get(hit.id, (None, ""))
        title_seg, text_seg = terms.get(version_id) or (segment(hit.title), segment(text))
        out[hit.id] = Words(text, title_seg, text_seg)
    return out


def _versions(db, hit_ids: list[int]) -> dict[int, tuple[int, str]]:
    """hit id → (id, text) of the newest version of its page with the hit's title and fingerprint."""
    out: dict[int, tuple[int, str]] = {}
    for chunk in in_chunks(sorted(set(hit_ids))):
        marks = ", ".join(f":h{n}" for n in range(len(chunk)))
        rows = db.execute(
            "SELECT h.id, v.id, v.text FROM hits h JOIN page_versions v ON v.page_id = h.page_id"
            " AND v.text_fingerprint = h.text_fingerprint AND v.title = h.title"
            f" WHERE h.id IN ({marks}) ORDER BY v.id", **{f"h{n}": v for n, v in enumerate(chunk)})
        out.update({hit_id: (version_id, text or "") for hit_id, version_id, text in rows})
    return out
