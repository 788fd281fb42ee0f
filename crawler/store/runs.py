"""Patrol runs and targets in the state DB.

A run's status is judged from Scrapy's stats, because ``scrapy crawl`` exits 0
even after a crawl in which every request failed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from crawler.config import Target
from crawler.store.db import StateDB, utcnow
from crawler.store.models import Hit, PatrolRun, RunTarget, TargetRow


def sync_targets(db: StateDB, targets: Iterable[Target]) -> None:
    """Mirror the configured targets so reports can name them after the config changes."""
    now = utcnow()
    with db.new_session() as session, session.begin():
        for target in targets:
            row = session.get(TargetRow, target.id) or TargetRow(id=target.id)
            row.name, row.business, row.aliases = target.name, target.business, list(target.aliases)
            row.credit_code, row.urls, row.updated_at = target.credit_code, list(target.urls), now
            session.merge(row)


def stored_target(db: StateDB, target_id: str) -> Target | None:
    """A target as it was last configured (``sync_targets``), for one since removed from the
    config (or renamed) whose records remain; None if it was never patrolled, or for the
    pseudo target of a channel or source (``channel:sousuo``). Disabled."""
    if ":" in target_id:
        return None
    with db.new_session() as session:
        row = session.get(TargetRow, target_id)
        if row is None:
            return None
        return Target.model_validate({
            "id": row.id, "name": row.name, "business": row.business, "aliases": row.aliases or [],
            "credit_code": row.credit_code, "urls": row.urls, "enabled": False})


def unconfigured_targets(db: StateDB, configured: Iterable[str]) -> list[tuple[str, str, int]]:
    """(id, name, open hits) of every stored target that is not in the config and still has hits
    not removed: a renamed or removed target, whose hits would otherwise stay open unnoticed.
    Channels and sources (``channel:sousuo``) are not targets: their results are not patrolled again."""
    from sqlalchemy import func, select

    configured = set(configured)
    with db.new_session() as session:
        rows = session.execute(
            select(TargetRow.id, TargetRow.name, func.count(Hit.id))
            .join(Hit, Hit.target_id == TargetRow.id).where(Hit.removed_at.is_(None))
            .group_by(TargetRow.id, TargetRow.name).order_by(TargetRow.id)).all()
    return [(row[0], row[1], row[2]) for row in rows if row[0] not in configured and ":" not in row[0]]


def start_run(db: StateDB, spider: str, started_at: datetime | None = None, targets: Iterable[str] = ()) -> int:
    """A new run, with a row of no pages for each of ``targets``: a crawl killed before it
    could record its counts still shows, per target, an attempt that fetched nothing."""
    with db.new_session() as session, session.begin():
        run = PatrolRun(spider=spider, started_at=started_at or utcnow(), status="running", stats={})
        session.add(run)
        session.flush()
        session.add_all(RunTarget(run_id=run.id, target_id=t, pages=0, failed=0, hits=0, new_hits=0, errors={})
                        for t in dict.fromkeys(targets))
        return run.id


def judge(per_target: dict[str, dict], finish_reason: str) -> str:
    """ok: every target fetched pages; partial: some did; failed: none did or the crawl broke."""
    if finish_reason not in ("finished", "closespider_pagecount", "closespider_itemcount"):
        return "failed" if not any(t["pages"] for t in per_target.values()) else "partial"
    if not per_target or not any(t["pages"] for t in per_target.values()):
        return "failed"
    return "ok" if all(t["pages"] for t in per_target.values()) else "partial"


def finish_run(
    db: StateDB, run_id: int, finish_reason: str, stats: dict, per_target: dict[str, dict]
) -> str:
    """Record the end of a run and each target's counts; return the judged status."""
    status = judge(per_target, finish_reason)
    with db.new_session() as session, session.begin():
        run = session.get(PatrolRun, run_id)
        run.finished_at, run.finish_reason, run.status = utcnow(), finish_reason, status
        run.stats = {k: _jsonable(v) for k, v in stats.items()}
        for target_id, counts in per_target.items():
            session.merge(RunTarget(run_id=run_id, target_id=target_id, **counts))
    return status


def _jsonable(value):
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
