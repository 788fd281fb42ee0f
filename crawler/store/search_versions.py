"""Earlier versions of pages in the embedded search index: words a page no longer says.

``page_fts`` holds each page's latest title and text (rowid = page id). When a fetch
changes them, the page's previous version (``page_versions``) is superseded: its row of
terms moves, as it is, to ``version_fts`` (rowid = page_versions.id) in the same
transaction, so nothing is cut again on the store thread. Every superseded version is
kept, not only those that carried a hit: an investigator also looks for the names and
products a platform once advertised. A separate table rather than rows of ``page_fts``
with a kind column, because FTS5 has no key but its rowid: page ids and version ids
would need one encoded key, and every reader of ``page_fts`` (the cluster reuses its
terms, ``elastic_docs.stored_segments``) a filter on the kind.

A version's hit is the page's hit when the version was last seen: the ``old_hit_id`` of
the change record that superseded it (or found the page gone), so nothing is stored twice;
its categories and risk are what ``--category`` and ``--risk`` read, and a version was
seen in a span when its first sighting is before the span's end and its last after its
start. ``finpatrol reindex`` cuts every superseded version again (an upgrade from a
finpatrol without this table fills it that way).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from sqlalchemy import text

from classifiers.tokenize import index_terms

logger = logging.getLogger(__name__)

SUPERSEDED = "EXISTS (SELECT 1 FROM page_versions w WHERE w.page_id = v.page_id AND w.id > v.id)"
"""SQL: the version ``v`` is not its page's newest (its words were replaced on the page)."""

VERSION_HIT = ("(SELECT c.old_hit_id FROM page_changes c WHERE c.old_version_id = v.id"
               " AND c.new_version_id IS NOT v.id ORDER BY c.id DESC LIMIT 1)")
"""SQL: the page's hit when the version ``v`` was last seen (None when it had none)."""


VERSION_COLUMNS = {"target": "f.target_id", "labels": "h.labels", "risk": "h.risk",
                   "since": "f.last_seen", "until": "f.first_seen", "prefix": "v"}
"""``search.filter_sql``'s columns for a found version ``f`` and its hit ``h``: category and
risk are its hit's; a version is seen in a span as hits are (first seen before its end,
last seen after its start)."""


class VersionIndex:
    """``version_fts``: the terms of superseded page versions (SQLite state DB only)."""

    def __init__(self, db):
        self.db = db
        existed = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'version_fts'").first() is not None
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS version_fts USING fts5("
                   "title, body, tokenize = 'unicode61 remove_diacritics 0')")
        # a version's hit is looked up by the change that superseded it (VERSION_HIT), per match
        db.execute("CREATE INDEX IF NOT EXISTS ix_page_changes_old_version ON page_changes (old_version_id)")
        if not existed:
            missing = self.missing()
            if missing:
                logger.warning("state DB upgraded: %d earlier page versions are not searchable yet;"
                               " run `finpatrol reindex` once", missing)

    def missing(self) -> int:
        """How many superseded versions have no row in the index (an upgraded state DB before
        ``finpatrol reindex``); 0 when search finds every earlier version.

        Counted, not looked up one by one, so that every search can ask (60 ms for 100,000
        versions): every version but each page's newest is superseded, and the index holds
        one row for each of those (``version_fts_docsize``: FTS5's row of sizes per document)."""
        return max(0, self.db.execute(
            "SELECT (SELECT count(*) FROM page_versions) - (SELECT count(DISTINCT page_id) FROM page_versions)"
            " - (SELECT count(*) FROM version_fts_docsize)").scalar())

    @staticmethod
    def keep(conn, superseded: dict[int, int]) -> None:
        """Move the indexed terms of pages to their superseded versions (page id → version id),
        inside the caller's transaction and before the pages' rows are replaced."""
        rows = [{"page": page_id, "version": version_id} for page_id, version_id in superseded.items()]
        if rows:
            conn.execute(text("DELETE FROM version_fts WHERE rowid = :version"), rows)
            conn.execute(text("INSERT INTO version_fts(rowid, title, body)"
                              " SELECT :version, title, body FROM page_fts WHERE rowid = :page"), rows)

    def rebuild(self, chunk: int = 200, progress=None) -> int:
        """Cut every superseded version's title and text again; the number indexed.

        A version's words never change, so a chunk is read, cut and written without the
        checks ``EmbeddedIndex.rebuild`` needs; a version a patrol supersedes meanwhile is
        written by the patrol (same terms). ``progress(done)`` after each chunk.
        """
        done, last_id = 0, 0
        while True:
            with self.db.engine.connect() as conn:
                versions = conn.execute(text(
                    f"SELECT v.id, v.title, v.text FROM page_versions v WHERE v.id > :last AND {SUPERSEDED}"
                    " ORDER BY v.id LIMIT :chunk"), {"last": last_id, "chunk": chunk}).all()
            if not versions:
                return done
            rows = [{"id": v.id, "title": index_terms(v.title), "body": index_terms(v.text)} for v in versions]
            with self.db.engine.begin() as conn:
                conn.execute(text("DELETE FROM version_fts WHERE rowid = :id"), rows)
                conn.execute(text("INSERT INTO version_fts(rowid, title, body) VALUES (:id, :title, :body)"), rows)
            done, last_id = done + len(versions), versions[-1].id
            if progress is not None:
                progress(done)

    def search(self, match: str, wanted: tuple[str, dict], current: tuple[str, dict], limit: int) -> list:
        """Rows of the earlier versions matching ``match``, best first: per page the newest
        matching one, and none that would only repeat its page's current result (the page
        matches under the same filters, ``current``: the SQL and parameters of
        ``search.filter_sql``, and the version had no hit or the same hit). ``wanted``: the
        filters on a version, ``search.filter_sql`` with ``VERSION_COLUMNS``."""
        sql = (  # the text and the hit's fields are read for the chosen versions only
            self._kept(wanted, current) +
            " SELECT k.version_id, k.page_id, k.first_seen, k.last_seen, k.target_id, k.rank, k.hit_id,"
            " v.title, v.text, p.url, p.final_url, h.labels, h.risk, h.score"
            " FROM kept k JOIN page_versions v ON v.id = k.version_id JOIN pages p ON p.id = k.page_id"
            " LEFT JOIN hits h ON h.id = k.hit_id WHERE k.nth = 1 ORDER BY k.rank LIMIT :limit"
        )
        return self.db.execute(sql, match=match, limit=limit, **current[1], **wanted[1]).mappings().all()

    def count(self, match: str, wanted: tuple[str, dict], current: tuple[str, dict]) -> int:
        """How many results :meth:`search` has in all (one per page): what a search of the cluster,
        which holds pages as they are now, leaves out. No text is read."""
        sql = self._kept(wanted, current) + " SELECT count(*) FROM kept WHERE nth = 1"
        return self.db.execute(sql, match=match, **current[1], **wanted[1]).scalar()

    @staticmethod
    def _kept(wanted: tuple[str, dict], current: tuple[str, dict]) -> str:
        """SQL: the CTEs up to ``kept``, the matching versions :meth:`search` may list (``nth`` 1:
        the newest of its page)."""
        return (
            "WITH cur AS MATERIALIZED (SELECT p.id AS page_id, p.current_hit_id"
            f" FROM page_fts JOIN pages p ON p.id = page_fts.rowid WHERE page_fts MATCH :match {current[0]}),"
            " found AS MATERIALIZED (SELECT v.id AS version_id, v.page_id, v.first_seen, v.last_seen, p.target_id,"
            " bm25(version_fts, 3.0, 1.0) AS rank, " + VERSION_HIT + " AS hit_id"
            " FROM version_fts JOIN page_versions v ON v.id = version_fts.rowid JOIN pages p ON p.id = v.page_id"
            " WHERE version_fts MATCH :match),"
            " kept AS (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.page_id ORDER BY f.version_id DESC) AS nth"
            " FROM found f LEFT JOIN cur ON cur.page_id = f.page_id LEFT JOIN hits h ON h.id = f.hit_id"
            " WHERE (cur.page_id IS NULL OR f.hit_id IS NOT NULL AND f.hit_id IS NOT cur.current_hit_id)"
            f" {wanted[0]})"
        )


def version_result(row, cut: str) -> dict:
    """One search result from an earlier version: the fields of a current result (``search.result``),
    with ``title``, ``labels``, ``risk``, ``score`` and ``hit_id`` as they were then and ``fetched_at``
    the version's last fetch, plus the version's id and when it was seen."""
    def utc(value: str) -> str:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat(timespec="seconds")

    return {
        "page_id": row["page_id"],
        "hit_id": row["hit_id"],
        "target": row["target_id"],
        "url": row["url"],
        "final_url": row["final_url"],
        "title": row["title"],
        "labels": json.loads(row["labels"] or "[]"),
        "risk": row["risk"] or "none",
        "score": row["score"] or 0.0,
        "fetched_at": utc(row["last_seen"]),
        "snippet": cut,
        "rank": round(row["rank"], 4),
        "current": False,
        "version_id": row["version_id"],
        "version_first_seen": utc(row["first_seen"]),
        "version_last_seen": utc(row["last_seen"]),
    }


def merged(current: list[dict], earlier: list[dict], limit: int) -> list[dict]:
    """Current and earlier-version results best first (BM25 of both tables), an earlier version
    placed right after its page's current result where that is listed too; at most ``limit``."""
    listed = {r["page_id"] for r in current}
    after: dict[int, dict] = {r["page_id"]: r for r in earlier if r["page_id"] in listed}
    out: list[dict] = []
    for r in sorted(current + [r for r in earlier if r["page_id"] not in listed], key=lambda r: r["rank"]):
        out.append(r)
        if r.get("current", True) and r["page_id"] in after:
            out.append(after[r["page_id"]])
    return out[:limit]
