"""Read hits and runs back as plain dicts: the stable JSON interface of the CLI."""

from __future__ import annotations

from sqlalchemy import select

from crawler.store.captures import stored_evidence
from crawler.store.db import StateDB, in_chunks, iso
from crawler.store.models import Hit, HitCategory, Page, PatrolRun, RunTarget
from crawler.store.removal import removal
from crawler.store.same_content import same_content, with_same_content
from crawler.store.search import Filters

CONTENT_BATCH = 200
"""Hits whose contents ``list_contents`` reads at a time."""


def hit_dict(hit: Hit) -> dict:
    return {
        "id": hit.id,
        "target": hit.target_id,
        "url": hit.url,
        "title": hit.title,
        "labels": list(hit.labels),
        "risk": hit.risk,
        "score": round(hit.score, 4),
        "context": hit.context,
        "findings": hit.findings,
        "yields": hit.yields,
        "first_seen": iso(hit.first_seen),
        "last_seen": iso(hit.last_seen),
        "fetched_at": iso(hit.fetched_at),
        "sha256": hit.sha256,
        "page_id": hit.page_id,
        "first_run": hit.first_run_id,
        "last_run": hit.last_run_id,
        "removed_at": iso(hit.removed_at),
        "reopened_at": iso(hit.reopened_at),
        "replaced_by": hit.replaced_by,
        "reclassified": bool(hit.reclassified),
    }


def hit_rows(session, hits: list[Hit]) -> list[dict]:
    """``hit_dict`` of each hit, with why and in which run a removed one went and the hits each replaced.

    ``removed_run``, ``removed_reason`` (``crawler.store.removal.WHY``: page_gone, claim_removed,
    replaced, withdrawn, rejudged; None while live), ``taken_down`` (a collapse or 维权 notice
    removed, not rectified) and ``replaces`` (the ids of the hits it replaced: reworded claims)."""
    replaces: dict[int, list[int]] = {}
    for chunk in in_chunks([h.id for h in hits]):
        for old, new in session.execute(select(Hit.id, Hit.replaced_by).where(Hit.replaced_by.in_(chunk))
                                        .order_by(Hit.id)):
            replaces.setdefault(new, []).append(old)
    rows = []
    for hit in hits:
        gone = removal(session, hit)
        rows.append(hit_dict(hit) | {
            "removed_run": gone["run_id"] if gone else None,
            "removed_reason": gone["why"] if gone else None,
            "taken_down": bool(gone and gone["taken_down"]),
            "replaces": replaces.get(hit.id, []),
        })
    return rows


def predecessors(db: StateDB, hit_id: int) -> list[dict]:
    """The hits ``hit_id`` replaced, and those they replaced in turn, nearest first: since when the
    claims it still makes in other words have been online. Each ``{"id", "replaced_by", "first_seen",
    "first_run"}``; a hit met twice (one that came back) is listed once."""
    out, seen, wanted = [], {hit_id}, [hit_id]
    with db.new_session() as session:
        while wanted:
            rows = [row for chunk in in_chunks(wanted) for row in session.execute(
                select(Hit.id, Hit.replaced_by, Hit.first_seen, Hit.first_run_id)
                .where(Hit.replaced_by.in_(chunk)).order_by(Hit.id)) if row.id not in seen]
            seen.update(row.id for row in rows)
            out += [{"id": row.id, "replaced_by": row.replaced_by, "first_seen": iso(row.first_seen),
                     "first_run": row.first_run_id} for row in rows]
            wanted = [row.id for row in rows]
    return out


def _filtered(query, filters: Filters):
    """``query`` of hits newest first: last seen latest (a claim still up outranks one seen once
    long ago), then the larger id; filtered by target, category, risk and the time they were seen."""
    query = query.order_by(Hit.last_seen.desc(), Hit.id.desc())
    if filters.targets:
        query = query.where(Hit.target_id.in_(filters.targets))
    if filters.category:
        query = query.where(
            Hit.id.in_(select(HitCategory.hit_id).where(HitCategory.category == filters.category))
        )
    if filters.risk:
        query = query.where(Hit.risk == filters.risk)
    if filters.since:
        query = query.where(Hit.last_seen >= filters.since)
    if filters.until:
        query = query.where(Hit.first_seen < filters.until)
    return query


def list_hits(db: StateDB, filters: Filters, limit: int | None = None) -> list[dict]:
    """Every hit that matches ``filters``, newest first (:func:`_filtered`), with the other URLs
    of its content (``same_content_as``, ``also_at``: ``crawler.store.same_content``)."""
    query = _filtered(select(Hit), filters)
    if limit:
        query = query.limit(limit)
    with db.new_session() as session:
        return with_same_content(db, hit_rows(session, list(session.scalars(query))))


def list_contents(db: StateDB, filters: Filters, limit: int | None = None) -> list[dict]:
    """One hit per content among those that match ``filters``: its representative when that
    matches too, else its newest hit that does; in the order of each content's newest matching
    hit, at most ``limit``. A hit that shares its content with no other live hit is its own row.
    The contents are read for the matching hits in turn, a batch at a time, until ``limit``."""
    with db.new_session() as session:
        ids = list(session.scalars(_filtered(select(Hit.id), filters)))
    matched, groups = set(ids), {}
    chosen: list[int] = []
    shown: set[int] = set()
    for batch in in_chunks(ids, CONTENT_BATCH):
        groups |= same_content(db, [i for i in batch if i not in groups])
        for hit_id in batch:
            content = groups.get(hit_id)
            if content is None:
                chosen.append(hit_id)
            elif content.representative not in shown:
                shown.add(content.representative)
                chosen.append(content.representative if content.representative in matched else hit_id)
            if limit and len(chosen) >= limit:
                break
        if limit and len(chosen) >= limit:
            break
    with db.new_session() as session:
        hits = {row["id"]: row for chunk in in_chunks(chosen)
                for row in hit_rows(session, list(session.scalars(select(Hit).where(Hit.id.in_(chunk)))))}
    return with_same_content(db, [hits[i] for i in chosen], groups)


def get_hit(db: StateDB, hit_id: int) -> dict | None:
    with db.new_session() as session:
        hit = session.get(Hit, hit_id)
        row = hit_rows(session, [hit])[0] if hit else None
        if row is not None:  # where its URL led (a redirect) when the claim was seen, as its capture has it
            page = session.get(Page, hit.page_id)
            captured = stored_evidence(db, [hit.id]).get(hit.id, {})
            row["final_url"] = captured.get("final_url") or (page.final_url if page is not None else None) or hit.url
    return with_same_content(db, [row])[0] if row else None


def run_dict(run: PatrolRun, targets: list[RunTarget]) -> dict:
    return {
        "id": run.id,
        "spider": run.spider,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "finish_reason": run.finish_reason,
        "status": run.status,
        "targets": {
            t.target_id: {
                "pages": t.pages,
                "failed": t.failed,
                "hits": t.hits,
                "new_hits": t.new_hits,
                "errors": t.errors,
            }
            for t in targets
        },
    }


def get_run(db: StateDB, run_id: int) -> dict | None:
    with db.new_session() as session:
        run = session.get(PatrolRun, run_id)
        if run is None:
            return None
        targets = session.scalars(select(RunTarget).where(RunTarget.run_id == run_id)).all()
        return run_dict(run, list(targets))


def list_runs(db: StateDB, limit: int = 20) -> list[dict]:
    with db.new_session() as session:
        runs = session.scalars(select(PatrolRun).order_by(PatrolRun.id.desc()).limit(limit)).all()
        out = []
        for run in runs:
            targets = session.scalars(select(RunTarget).where(RunTarget.run_id == run.id)).all()
            out.append(run_dict(run, list(targets)))
        return out
