"""Which documents the cluster has acknowledged: the ``es_docs`` table of the state DB.

One row per (kind, ref): ``page``/page id, ``hit``/hit id, ``target``/target id.
A patrol only enqueues (``seq`` grows and the state becomes ``pending``); the
push marks a row ``indexed`` only for the ``seq`` it sent and only after the
cluster acknowledged the document, so a change made while a push was in flight
is pushed again. ``index_name`` is where the document landed, so later versions
overwrite it there instead of creating a second copy in a newer index.
Rejected documents keep the cluster's reason until ``es sync --retry-rejected``.
Besides the explicit ``enqueue`` of what a patrol stored, ``watch`` makes every
state DB session mark a document pending again when a flush changes what its
hit or page says about removal (``REMOVAL``): old hits and gone pages are not
items of the patrol, yet their documents must stop looking live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import Connection, DateTime, bindparam, case, event, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, get_history

from crawler.store.db import StateDB, in_chunks, utcnow
from crawler.store.models import EsDoc, Hit, Page, TargetRow

logger = logging.getLogger(__name__)

KINDS = ("target", "page", "hit")
REMOVAL = {Hit: ("hit", ("removed_at", "replaced_by", "reopened_at", "reclassified")), Page: ("page", ("gone_at",))}
"""Row class → (document kind, columns whose change must reach the document)."""
REQUEUE = (
    "UPDATE es_docs SET seq = seq + 1, reason = NULL, updated_at = :now,"
    " enqueued_at = CASE WHEN state = 'pending' THEN enqueued_at ELSE :now END, state = 'pending'"
    " WHERE kind = :kind AND ref = :ref"
)


def _sql(statement: str):
    """Raw SQL for executemany, with ``:now`` stored the way the ORM stores datetimes."""
    clause = text(statement)
    if ":now" in statement:
        clause = clause.bindparams(bindparam("now", type_=DateTime(timezone=True)))
    return clause


@dataclass(frozen=True)
class Pending:
    kind: str
    ref: str
    seq: int
    index_name: str | None
    attempts: int


def enqueue(db: StateDB, docs: Iterable[tuple[str, object]]) -> int:
    """Mark (kind, ref) pairs as needing a push; returns how many pairs were queued."""
    now = utcnow()
    keys = list(dict.fromkeys((k, str(r)) for k, r in docs))
    if not keys:
        return 0
    with db.engine.begin() as conn:
        existing: set[tuple[str, str]] = set()
        for kind in {k for k, _ in keys}:
            refs = [r for k, r in keys if k == kind]
            for chunk in in_chunks(refs):
                rows = conn.execute(select(EsDoc.ref).where(EsDoc.kind == kind, EsDoc.ref.in_(chunk)))
                existing.update((kind, ref) for (ref,) in rows)
        new = [{"kind": k, "ref": r, "now": now} for k, r in keys if (k, r) not in existing]
        old = [{"kind": k, "ref": r, "now": now} for k, r in keys if (k, r) in existing]
        if new:
            conn.execute(_sql(
                "INSERT INTO es_docs (kind, ref, seq, state, indexed_seq, attempts, enqueued_at, updated_at)"
                " VALUES (:kind, :ref, 1, 'pending', 0, 0, :now, :now)"), new)
        if old:
            conn.execute(_sql(REQUEUE), old)
    return len(keys)


def requeue(conn: Connection, docs: Iterable[tuple[str, object]]) -> None:
    """Mark these documents pending again, in the caller's transaction.

    Only rows ``es_docs`` already has: a document never queued is built from its
    current row when it first is, so it cannot be stale (and a state DB without a
    cluster gets no queue).
    """
    now = utcnow()
    params = [{"kind": k, "ref": r, "now": now} for k, r in dict.fromkeys((k, str(r)) for k, r in docs)]
    if params:
        conn.execute(_sql(REQUEUE), params)


def watch(sessions: sessionmaker) -> None:
    """Requeue, in the flush's own transaction, the documents of rows whose ``REMOVAL`` columns changed."""
    event.listen(sessions, "after_flush", _requeue_removals)


def _requeue_removals(session: Session, _context) -> None:
    # after_flush still shows the flushed objects as dirty, with their attribute history
    docs = []
    for obj in session.dirty:
        if type(obj) in REMOVAL:
            kind, columns = REMOVAL[type(obj)]
            if any(get_history(obj, c, PASSIVE_NO_INITIALIZE).has_changes() for c in columns):
                docs.append((kind, obj.id))
    if docs:
        requeue(session.connection(), docs)


def take(db: StateDB, limit: int, skip: int = 0) -> list[Pending]:
    """Up to ``limit`` pending rows, oldest first; targets, then pages, then hits."""
    kind_order = case({k: i for i, k in enumerate(KINDS)}, value=EsDoc.kind, else_=9)
    with db.new_session() as session:
        rows = session.scalars(
            select(EsDoc).where(EsDoc.state == "pending")
            .order_by(kind_order, EsDoc.enqueued_at, EsDoc.ref).offset(skip).limit(limit)
        ).all()
    return [Pending(r.kind, r.ref, r.seq, r.index_name, r.attempts) for r in rows]


def mark_attempt(db: StateDB, batch: list[Pending]) -> None:
    """Before sending: count the attempt, so an unknown outcome is known to be unknown."""
    if batch:
        with db.engine.begin() as conn:
            conn.execute(_sql("UPDATE es_docs SET attempts = attempts + 1, updated_at = :now"
                              " WHERE kind = :kind AND ref = :ref"),
                         [{"kind": p.kind, "ref": p.ref, "now": utcnow()} for p in batch])


def mark_indexed(db: StateDB, acked: list[tuple[Pending, str]]) -> int:
    """The cluster acknowledged these (pending row, concrete index) pairs; returns rows now indexed."""
    if not acked:
        return 0
    now = utcnow()
    params = [{"kind": p.kind, "ref": p.ref, "seq": p.seq, "index": index, "now": now} for p, index in acked]
    with db.engine.begin() as conn:
        conn.execute(_sql("UPDATE es_docs SET index_name = :index, indexed_seq = :seq, attempts = 0,"
                          " updated_at = :now WHERE kind = :kind AND ref = :ref"), params)
        # Only the seq that was sent counts: a row enqueued again meanwhile stays pending.
        done = conn.execute(_sql("UPDATE es_docs SET state = 'indexed', reason = NULL"
                                 " WHERE kind = :kind AND ref = :ref AND seq = :seq"), params)
    return done.rowcount if done.rowcount is not None and done.rowcount >= 0 else len(acked)


def mark_failed(db: StateDB, failed: list[tuple[Pending, str]], rejected: bool) -> None:
    """A per-document failure: ``rejected`` stops retries until asked; otherwise it stays pending."""
    with db.new_session() as session, session.begin():
        for p, reason in failed:
            row = session.get(EsDoc, (p.kind, p.ref))
            if row is None:
                continue
            row.reason, row.updated_at = reason[:2000], utcnow()
            if rejected and row.seq == p.seq:
                row.state = "rejected"


def forget(db: StateDB, gone: list[Pending]) -> None:
    """Rows whose source row no longer exists have nothing to index."""
    with db.new_session() as session, session.begin():
        for p in gone:
            row = session.get(EsDoc, (p.kind, p.ref))
            if row is not None and row.seq == p.seq:
                session.delete(row)


def retry_rejected(db: StateDB) -> int:
    with db.new_session() as session, session.begin():
        result = session.execute(
            update(EsDoc).where(EsDoc.state == "rejected").values(state="pending", seq=EsDoc.seq + 1)
        )
        return result.rowcount or 0


def counts(db: StateDB) -> dict[str, dict[str, int]]:
    """{kind: {state: n}}."""
    out: dict[str, dict[str, int]] = {}
    with db.new_session() as session:
        for kind, state, n in session.execute(
            select(EsDoc.kind, EsDoc.state, func.count()).group_by(EsDoc.kind, EsDoc.state)
        ):
            out.setdefault(kind, {})[state] = n
    return out


def rejections(db: StateDB, limit: int = 20) -> list[dict]:
    with db.new_session() as session:
        rows = session.scalars(
            select(EsDoc).where(EsDoc.state == "rejected").order_by(EsDoc.updated_at.desc()).limit(limit)
        ).all()
    return [{"kind": r.kind, "ref": r.ref, "reason": r.reason} for r in rows]


def enqueue_all(db: StateDB) -> int:
    """Queue every target, page and hit of the state DB (first sync of an existing DB)."""
    with db.new_session() as session:
        refs = [("target", t) for t in session.scalars(select(TargetRow.id))]
        refs += [("page", p) for p in session.scalars(select(Page.id))]
        refs += [("hit", h) for h in session.scalars(select(Hit.id))]
    return enqueue(db, refs)
