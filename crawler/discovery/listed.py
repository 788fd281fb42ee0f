"""What other modules read of ``listed_pages``: the publish times lists give their entries."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import inspect, select

from crawler.discovery.models import ListedPage
from crawler.store.db import in_chunks


def listed_publish_times(session, page_ids: Iterable[int]) -> dict[int, str]:
    """page id → publish time as its list gives it (``posted_at``), for the listed pages among
    ``page_ids`` that have one; nothing on a state DB no channel or source has written to yet."""
    if not inspect(session.connection()).has_table(ListedPage.__tablename__):
        return {}
    ids, out = sorted(set(page_ids)), {}
    for some in in_chunks(ids):
        out.update((page_id, posted) for page_id, posted in session.execute(
            select(ListedPage.page_id, ListedPage.posted_at).where(ListedPage.page_id.in_(some))) if posted)
    return out
