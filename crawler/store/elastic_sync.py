"""Push pending documents from the state DB to the cluster, batch by batch.

The state DB is the source of truth: a batch is built from the rows as they are
now, sent with ``async_streaming_bulk`` (the per-document form of ``async_bulk``:
it reports where each document landed, which the plain summary drops), and a
row is marked indexed only for the documents the cluster acknowledged. A
connection failure, a timeout or an error status for the whole request stops
the push and leaves everything pending; a per-document 429/5xx stays pending;
any other per-document error is recorded as a rejection with the cluster's
reason. A document is written to the concrete index that already holds it, and
a document whose earlier send had an unknown outcome is looked up by id first,
so a rollover between two sends cannot make a second copy.
Settings: ``ElasticConfig`` (batch_size, max_retries, origin, index_prefix).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError
from elasticsearch.helpers import async_streaming_bulk
from sqlalchemy import select

from crawler.store import elastic_queue as queue
from crawler.store.db import StateDB
from crawler.store.captures import stored_evidence
from crawler.store.elastic_client import describe
from crawler.store.elastic_config import ElasticConfig
from crawler.store.elastic_docs import (
    hit_doc, hit_doc_id, page_doc, page_doc_id, stored_segments, target_doc, target_doc_id,
)
from crawler.store.elastic_words import hit_words
from crawler.store.models import Hit, Page, TargetRow

logger = logging.getLogger(__name__)

FAMILY = {"page": "pages", "hit": "hits", "target": "targets"}


class NotSetUp(Exception):
    """The cluster is reachable but has no finpatrol aliases yet."""


@dataclass
class PushResult:
    acked: int = 0
    rejected: int = 0
    deferred: int = 0
    gone: int = 0
    batches: int = 0
    error: str | None = None
    """Why the push stopped early (cluster unreachable, authentication ...), else None."""

    def add(self, other: "PushResult") -> None:
        self.acked += other.acked
        self.rejected += other.rejected
        self.deferred += other.deferred
        self.gone += other.gone
        self.batches += other.batches


def build(db: StateDB, origin: str, batch: list[queue.Pending]):
    """[(pending, kind, doc id, source)] for rows that exist, and the pendings whose row is gone."""
    refs = {k: [p.ref for p in batch if p.kind == k] for k in queue.KINDS}
    with db.new_session() as session:
        pages = {str(p.id): p for p in session.scalars(select(Page).where(Page.id.in_([int(r) for r in refs["page"]])))}
        hits = {str(h.id): h for h in session.scalars(select(Hit).where(Hit.id.in_([int(r) for r in refs["hit"]])))}
        hit_pages = {p.id: p for p in session.scalars(select(Page).where(Page.id.in_({h.page_id for h in hits.values()})))}
        target_ids = set(refs["target"]) | {p.target_id for p in pages.values()} | {h.target_id for h in hits.values()}
        targets = {t.id: t for t in session.scalars(select(TargetRow).where(TargetRow.id.in_(target_ids)))}
        target_hits: dict[str, list[Hit]] = {t: [] for t in refs["target"]}
        for hit in session.scalars(select(Hit).where(Hit.target_id.in_(refs["target"]))):
            target_hits[hit.target_id].append(hit)
    segs = stored_segments(db, [p.id for p in pages.values()] + list(hit_pages))
    words = hit_words(db, list(hits.values()), hit_pages, segs)
    evidence = stored_evidence(db, [h.id for h in hits.values()])
    docs, gone = [], []
    for p in batch:
        if p.kind == "page" and p.ref in pages:
            page = pages[p.ref]
            source = page_doc(origin, page, targets.get(page.target_id), segs.get(page.id))
            docs.append((p, page_doc_id(origin, page), source))
        elif p.kind == "hit" and p.ref in hits:
            hit = hits[p.ref]
            source = hit_doc(origin, hit, hit_pages.get(hit.page_id), targets.get(hit.target_id),
                             words[hit.id], evidence.get(hit.id))
            docs.append((p, hit_doc_id(origin, hit), source))
        elif p.kind == "target" and p.ref in targets:
            docs.append((p, target_doc_id(origin, p.ref), target_doc(origin, targets[p.ref], target_hits[p.ref])))
        else:
            gone.append(p)
    return docs, gone


async def live_indices(es: AsyncElasticsearch, alias: str) -> set[str]:
    try:
        return set((await es.indices.get_alias(name=alias)).body)
    except NotFoundError:
        return set()


async def locate(es: AsyncElasticsearch, alias: str, ids: list[str]) -> dict[str, str]:
    """Concrete index of each of these ids that the alias already holds."""
    if not ids:
        return {}
    body = await es.search(index=alias, query={"ids": {"values": ids}}, size=len(ids), source=False)
    return {h["_id"]: h["_index"] for h in body["hits"]["hits"]}


async def targets_for(es, config: ElasticConfig, docs) -> dict[str, str]:
    """Doc id → index to write to: where the document lives now, else the family's write alias."""
    where: dict[str, str] = {}
    for kind, family in FAMILY.items():
        mine = [(p, doc_id) for p, doc_id, _ in docs if p.kind == kind]
        if not mine:
            continue
        alias = config.name(family)
        live = await live_indices(es, alias)
        if not live:
            raise NotSetUp(f"alias {alias} does not exist on the cluster: run `finpatrol es setup` first")
        unsure = [doc_id for p, doc_id in mine if p.attempts > 0 or (p.index_name and p.index_name not in live)]
        found = await locate(es, alias, unsure)
        for p, doc_id in mine:
            if p.index_name in live:
                where[doc_id] = p.index_name
            else:
                where[doc_id] = found.get(doc_id, alias)
    return where


async def push_batch(db: StateDB, es: AsyncElasticsearch, config: ElasticConfig, batch) -> PushResult:
    """Send one batch; raises the client's error when the request as a whole failed."""
    result = PushResult(batches=1)
    docs, gone = build(db, config.origin, batch)
    if gone:
        queue.forget(db, gone)
        result.gone = len(gone)
    if not docs:
        return result
    where = await targets_for(es, config, docs)
    by_id = {doc_id: p for p, doc_id, _ in docs}
    actions = [
        {"_op_type": "index", "_index": where[doc_id], "_id": doc_id, "_source": source}
        for _, doc_id, source in docs
    ]
    queue.mark_attempt(db, [p for p, _, _ in docs])
    acked, rejected, deferred = [], [], []
    async for ok, item in async_streaming_bulk(
        es, actions, chunk_size=len(actions), max_chunk_bytes=50 * 1024 * 1024,
        raise_on_error=False, raise_on_exception=True, yield_ok=True,
        max_retries=config.max_retries, initial_backoff=1, max_backoff=30,
    ):
        op = item.get("index") or next(iter(item.values()))
        pending = by_id[op["_id"]]
        if ok:
            acked.append((pending, op["_index"]))
        elif op.get("status") == 429 or int(op.get("status") or 500) >= 500:
            deferred.append((pending, _reason(op)))
        else:
            rejected.append((pending, _reason(op)))
    result.acked = queue.mark_indexed(db, acked)
    if rejected:
        queue.mark_failed(db, rejected, rejected=True)
        for pending, reason in rejected:
            logger.warning("cluster rejected %s %s: %s", pending.kind, pending.ref, reason)
    if deferred:
        queue.mark_failed(db, deferred, rejected=False)
    result.rejected, result.deferred = len(rejected), len(deferred)
    return result


def _reason(op: dict) -> str:
    error = op.get("error")
    if isinstance(error, dict):
        text = f"{error.get('type')}: {error.get('reason')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return f"HTTP {op.get('status')} {text}"
    return f"HTTP {op.get('status')} {error}"


async def push_pending(
    db: StateDB, es: AsyncElasticsearch, config: ElasticConfig, *, max_batches: int | None = None,
    refresh: bool = False,
) -> PushResult:
    """Push pending documents until none are left, a batch makes no progress, or the cluster fails."""
    total = PushResult()
    while max_batches is None or total.batches < max_batches:
        batch = queue.take(db, config.batch_size)
        if not batch:
            break
        try:
            result = await push_batch(db, es, config, batch)
        except NotSetUp as e:
            total.error = str(e)
            logger.warning("indexing stopped, documents stay pending: %s", e)
            break
        except (ApiError, TransportError) as e:
            total.error = describe(e, config)
            logger.warning("indexing stopped, documents stay pending: %s", total.error)
            break
        total.add(result)
        if result.deferred or not (result.acked or result.rejected or result.gone):
            break  # the cluster is pushing back, or the rows were re-enqueued meanwhile
    if refresh and total.acked and total.error is None:
        try:
            await es.indices.refresh(index=",".join(config.name(f) for f in FAMILY.values()))
        except (ApiError, TransportError) as e:
            logger.warning("refresh failed: %s", describe(e, config))
    return total
