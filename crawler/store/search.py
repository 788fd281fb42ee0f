"""Embedded full-text search: SQLite FTS5 over jieba tokens of page title and text.

Tokens are produced by ``classifiers.tokenize`` (the project's one jieba
module) and stored space-separated, so FTS5's plain ``unicode61`` tokenizer
sees exactly jieba's words and no SQLite extension is needed. Pages and queries
are cut from width-folded text (``classifiers.tokenize.fold``: １８ is 18, ＰＯＳ is
pos). Snippets are cut from the original text, not from the token stream, so
investigators read the page's own words; the matches are found in a folded copy.
Whether a result's page is gone, or its hit removed, comes from the state DB
(:func:`with_state`), for the cluster's results too. Earlier versions of pages, words a
page no longer says, are searched too (``crawler.store.search_versions``).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text

from classifiers.tokenize import fold_chars, index_terms, query_tokens
from crawler.store.changes import taken_down
from crawler.store.db import in_chunks, iso, sql_time
from crawler.store.models import Hit, Page
from crawler.store.search_versions import VERSION_COLUMNS, VersionIndex, merged, version_result

logger = logging.getLogger(__name__)

SNIPPET_RADIUS = 40


@dataclass(frozen=True)
class Filters:
    """Filters shared by ``hits`` and ``search``; None means no filter."""

    targets: tuple[str, ...] = ()
    category: str | None = None
    risk: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class EmbeddedIndex:
    def __init__(self, db):
        self.db = db
        db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS page_fts USING fts5("
            "title, body, tokenize = 'unicode61 remove_diacritics 0')"
        )
        self.versions = VersionIndex(db)

    def put(self, session, entries, superseded: dict[int, int] | None = None) -> None:
        """(Re)index (page, item) pairs inside the caller's transaction; each page at most once.

        ``superseded`` maps the id of a page whose text changed to its previous version's id:
        the terms the index held for the page are kept for that version first (``VersionIndex.keep``).

        The item's tokens, computed in the analyse pipeline's worker, are used when
        present, so segmentation does not run on the store thread. The worker leaves
        them out only for a page that kept its stored title and text, which the store
        does not re-index; cutting them here is the fallback for anything else (a page
        another process changed during the patrol).
        """
        rows = [
            {
                "id": page.id,
                "title": item.title_tokens if item.title_tokens is not None else index_terms(page.title),
                "body": item.text_tokens if item.text_tokens is not None else index_terms(page.text),
            }
            for page, item in entries
        ]
        if not rows:
            return
        conn = session.connection()  # one executemany per statement for the whole batch
        if superseded:
            self.versions.keep(conn, superseded)
        conn.execute(text("DELETE FROM page_fts WHERE rowid = :id"), [{"id": row["id"]} for row in rows])
        conn.execute(text("INSERT INTO page_fts(rowid, title, body) VALUES (:id, :title, :body)"), rows)

    def rebuild(self, chunk: int = 200, progress=None) -> int:
        """Cut every stored page's title and text again; the number of pages indexed.

        For an upgrade that changes the index terms: pages are otherwise re-indexed
        only when their text changes. Pages are read and cut ``chunk`` at a time and
        written in one transaction per chunk, so a patrol writing meanwhile waits at
        most one chunk's write; a page whose title or text a patrol changed after it
        was read keeps the terms the patrol gave it. ``progress(done)`` is called
        after each chunk.
        """
        done, last_id = 0, 0
        while True:
            with self.db.engine.connect() as conn:
                pages = conn.execute(
                    text("SELECT id, title, text, text_fingerprint FROM pages WHERE id > :last ORDER BY id LIMIT :chunk"),
                    {"last": last_id, "chunk": chunk},
                ).all()
            if not pages:
                return done
            rows = [
                {"id": page.id, "page_title": page.title, "fingerprint": page.text_fingerprint,
                 "title": index_terms(page.title), "body": index_terms(page.text)}
                for page in pages
            ]
            unchanged = ("EXISTS (SELECT 1 FROM pages WHERE id = :id AND title IS :page_title"
                         " AND text_fingerprint IS :fingerprint)")
            with self.db.engine.begin() as conn:
                conn.execute(text(f"DELETE FROM page_fts WHERE rowid = :id AND {unchanged}"), rows)
                conn.execute(text(f"INSERT INTO page_fts(rowid, title, body) SELECT :id, :title, :body WHERE {unchanged}"),
                             rows)
            done, last_id = done + len(pages), pages[-1].id
            if progress is not None:
                progress(done)

    def search(self, query: str, filters: Filters, limit: int = 20) -> list[dict]:
        """Pages matching every word of the query, best first (BM25, title weighted 3×), and
        earlier versions of pages that matched (``current`` false; ``VersionIndex.search``
        says which), each right after its page when that is listed too."""
        terms = query_terms(query)
        if not terms:
            return []
        match = fts_match(terms)
        where, params = filter_sql(filters)
        sql = (
            "SELECT p.id, p.target_id, p.url, p.final_url, p.title, p.text, p.labels, p.risk,"
            " p.score, p.fetched_at, p.current_hit_id, bm25(page_fts, 3.0, 1.0) AS rank"
            " FROM page_fts JOIN pages p ON p.id = page_fts.rowid"
            f" WHERE page_fts MATCH :match {where} ORDER BY rank LIMIT :limit"
        )
        rows = self.db.execute(sql, match=match, limit=limit, **params).mappings().all()
        # A result listed by its title alone (a classifieds row) has no text: cut from the title.
        current = [result(row, snippet(row["text"] or row["title"], query, terms)) for row in rows]
        wanted = filter_sql(filters, **VERSION_COLUMNS)
        earlier = [version_result(row, snippet(row["text"] or row["title"], query, terms))
                   for row in self.versions.search(match, wanted, (where, params), limit)]
        return merged(current, earlier, limit)

    def earlier_matches(self, query: str, filters: Filters) -> int:
        """How many earlier versions of pages :meth:`search` would list for ``query`` (one per
        page): words pages no longer say, which the cluster does not hold."""
        terms = query_terms(query)
        if not terms:
            return 0
        return self.versions.count(fts_match(terms), filter_sql(filters, **VERSION_COLUMNS), filter_sql(filters))


def fts_match(terms: list[str]) -> str:
    """An FTS5 query matching every term, each quoted as a phrase."""
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in terms)


def result(row, cut: str) -> dict:
    """One search result: the stable JSON shape of ``finpatrol search --json``."""
    fetched = datetime.fromisoformat(row["fetched_at"]).replace(tzinfo=UTC)
    return {
        "page_id": row["id"],
        "hit_id": row["current_hit_id"],
        "target": row["target_id"],
        "url": row["url"],
        "final_url": row["final_url"],
        "title": row["title"],
        "labels": json.loads(row["labels"] or "[]"),
        "risk": row["risk"],
        "score": row["score"],
        "fetched_at": fetched.isoformat(timespec="seconds"),
        "snippet": cut,
        "rank": round(row["rank"], 4),
        **CURRENT,
    }


CURRENT = {"current": True, "version_id": None, "version_first_seen": None, "version_last_seen": None}
"""The version fields of a result from a page as it is now (an earlier version's: ``version_result``)."""


def with_state(db, results: list[dict]) -> list[dict]:
    """The results, each with what the state DB says of its page and hit now.

    ``gone_at``: when a complete patrol of the target no longer found the page (None while
    it is online); ``hit_removed_at``: when the result's hit left its page (rectified, or
    the page gone; None while the page says it, and when the result has no hit);
    ``hit_replaced_by``: the hit that says the same in other words, when it was reworded
    rather than rectified; ``hit_reclassified``: True when the hit was withdrawn or replaced
    because the rules changed, not the page; ``hit_taken_down``: True when the removed hit was a
    collapse or 维权 notice (``crawler.store.changes.taken_down``: no rectification). The index keeps a gone page's last words so that it is still
    found (it is evidence), so these are what tells it from a live one; the state DB
    answers for the cluster's results too, since it is the source of truth. For an earlier
    version (``current`` false) the hit is the one that version had.
    """
    page_ids = sorted({r["page_id"] for r in results if r.get("page_id") is not None})
    hit_ids = sorted({r["hit_id"] for r in results if r.get("hit_id") is not None})
    gone, hits = {}, {}
    with db.new_session() as session:
        for some in in_chunks(page_ids):  # a --limit in the thousands too
            gone.update(session.execute(select(Page.id, Page.gone_at).where(Page.id.in_(some))).all())
        for some in in_chunks(hit_ids):
            hits.update((row.id, row) for row in session.execute(
                select(Hit.id, Hit.removed_at, Hit.replaced_by, Hit.reclassified, Hit.labels).where(Hit.id.in_(some))))
    out = []
    for r in results:
        hit = hits.get(r.get("hit_id"))
        out.append(r | {
            "gone_at": iso(gone.get(r.get("page_id"))),
            "hit_removed_at": iso(hit.removed_at) if hit else None,
            "hit_replaced_by": hit.replaced_by if hit else None,
            "hit_reclassified": bool(hit and hit.reclassified),
            "hit_taken_down": bool(hit and hit.removed_at and not hit.replaced_by and not hit.reclassified
                                   and taken_down(hit.labels)),
        })
    return out


def query_terms(query: str) -> list[str]:
    """The query's distinct words, folded and cut as pages are (``classifiers.tokenize.query_tokens``)."""
    seen: list[str] = []
    for token in query_tokens(query):
        if token not in seen:
            seen.append(token)
    return seen


def filter_sql(filters: Filters, target: str = "p.target_id", labels: str = "p.labels", risk: str = "p.risk",
               since: str = "p.fetched_at", until: str = "p.fetched_at", prefix: str = "") -> tuple[str, dict]:
    """SQL clauses (each after `` AND ``) and parameters of ``filters`` on the given columns (a
    page's by default; ``since``/``until``: the columns compared with the span's start and end),
    parameter names prefixed with ``prefix`` so that two sets can share one statement."""
    clauses, params = [], {}
    if filters.targets:
        names = [f"{prefix}t{i}" for i in range(len(filters.targets))]
        clauses.append(f"{target} IN ({', '.join(':' + n for n in names)})")
        params.update(zip(names, filters.targets))
    if filters.category:
        clauses.append(f"EXISTS (SELECT 1 FROM json_each({labels}) WHERE value = :{prefix}category)")
        params[f"{prefix}category"] = filters.category
    if filters.risk:
        clauses.append(f"{risk} = :{prefix}risk")
        params[f"{prefix}risk"] = filters.risk
    if filters.since:
        clauses.append(f"{since} >= :{prefix}since")
        params[f"{prefix}since"] = sql_time(filters.since)
    if filters.until:
        clauses.append(f"{until} < :{prefix}until")
        params[f"{prefix}until"] = sql_time(filters.until)
    return "".join(" AND " + c for c in clauses), params


def snippet(body: str, query: str, terms: list[str]) -> str:
    """A window of the original text around the first match, matches marked 【…】.

    Matches are looked for in a copy of the text with its compatibility characters
    folded one for one (``classifiers.tokenize.fold_chars``), so a query for 18% marks
    １８％ and the other way round. Each word the user typed is marked whole where the page
    has it (聚财宝, which jieba cuts 聚 / 财宝), else its jieba words; touching marks are one.
    """
    words = sorted({*(fold_chars(part) for part in query.split()), *terms}, key=len, reverse=True)
    words = [w for w in words if w]
    if not words or not body:
        return body[: 2 * SNIPPET_RADIUS]
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    folded = fold_chars(body)
    first = pattern.search(folded)
    start = max(0, first.start() - SNIPPET_RADIUS) if first else 0
    end = min(len(body), (first.end() if first else 0) + SNIPPET_RADIUS)
    marked, at = [], start
    for m in pattern.finditer(folded, start, end):
        if marked and m.start() == at:  # touching the previous match: one mark
            marked[-1:] = [body[m.start():m.end()], "】"]
        else:
            marked += [body[at:m.start()], "【", body[m.start():m.end()], "】"]
        at = m.end()
    marked.append(body[at:end])
    window = "".join(marked).replace("\n", " ")
    return ("…" if start > 0 else "") + window + ("…" if end < len(body) else "")
