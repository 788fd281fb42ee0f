"""Read hits and runs back as plain dicts: the stable JSON interface of the CLI."""

from __future__ import annotations

from sqlalchemy import select

from crawler.store.db import StateDB, iso
from crawler.store.models import Hit, HitCategory, PatrolRun, RunTarget
from crawler.store.search import Filters


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


def list_hits(db: StateDB, filters: Filters, limit: int | None = None) -> list[dict]:
    """Hits newest first: last seen latest (a claim still up outranks one seen once long ago),
    then the larger id; filtered by target, category, risk and the time they were seen."""
    query = select(Hit).order_by(Hit.last_seen.desc(), Hit.id.desc())
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
    if limit:
        query = query.limit(limit)
    with db.new_session() as session:
        return [hit_dict(h) for h in session.scalars(query)]


def get_hit(db: StateDB, hit_id: int) -> dict | None:
    with db.new_session() as session:
        hit = session.get(Hit, hit_id)
        return hit_dict(hit) if hit else None


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
