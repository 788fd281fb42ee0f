"""Patrol runs and targets in the state DB.

A run's status is judged from Scrapy's stats, because ``scrapy crawl`` exits 0
even after a crawl in which every request failed. A run records the id and host of
the process crawling: one left ``running`` by a process that is gone (``kill -9``, a
crash, a power cut) is settled by :func:`settle_abandoned` when the next run starts,
when ``runs`` or ``coverage`` read the runs and before every alert pass.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from typing import Iterable

from crawler.config import Target
from crawler.store.db import StateDB, as_utc, utcnow
from crawler.store.models import Hit, Page, PatrolRun, RunTarget, TargetRow

logger = logging.getLogger(__name__)
GONE = "process_gone"
"""The finish reason of a run settled because its process no longer exists."""


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
    could record its counts still shows, per target, an attempt that fetched nothing.
    Runs earlier patrols left ``running`` when their process died are settled first."""
    settle_abandoned(db)
    with db.new_session() as session, session.begin():
        run = PatrolRun(spider=spider, started_at=started_at or utcnow(), status="running", stats={},
                        pid=os.getpid(), host=socket.gethostname(), pid_started=process_started(os.getpid()))
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


def settle_abandoned(db: StateDB) -> list[int]:
    """Settle every run still ``running`` whose process, on this host, no longer exists; return their ids.

    Its per-target counts are what it stored so far (its pages and hits), its status is judged
    from them as for a crawl that broke (``partial`` when some target fetched pages, else
    ``failed``), its finish reason ``process_gone``. Runs of another host, and of a finpatrol
    that recorded no process, are left alone: their process cannot be looked at from here."""
    from sqlalchemy import select, update

    host = socket.gethostname()
    with db.new_session() as session:
        candidates = session.execute(select(PatrolRun.id, PatrolRun.pid, PatrolRun.pid_started).where(
            PatrolRun.status == "running", PatrolRun.pid.is_not(None), PatrolRun.host == host)).all()
    settled = []
    for run_id, pid, pid_started in candidates:
        if process_alive(pid, pid_started):
            continue
        with db.new_session() as session, session.begin():
            per_target = recorded_counts(session, run_id)
            status = judge(per_target, GONE)
            claimed = session.execute(  # the first statement takes the write lock: one settler wins
                update(PatrolRun).where(PatrolRun.id == run_id, PatrolRun.status == "running")
                .values(status=status, finish_reason=GONE, finished_at=utcnow())).rowcount
            if not claimed:
                continue
            for target_id, counts in per_target.items():
                session.merge(RunTarget(run_id=run_id, target_id=target_id, **counts))
        logger.warning("patrol run %s: its process %s is gone; recorded as %s (%s)", run_id, pid, status, GONE)
        settled.append(run_id)
    return settled


def recorded_counts(session, run_id: int) -> dict[str, dict]:
    """Per target, what a run stored before it stopped: pages it fetched, their hits and new hits."""
    from sqlalchemy import func, select

    rows = session.scalars(select(RunTarget).where(RunTarget.run_id == run_id)).all()
    out = {r.target_id: {"pages": r.pages, "failed": r.failed, "hits": r.hits, "new_hits": r.new_hits,
                         "errors": dict(r.errors or {})} for r in rows}
    for column, query in (
        ("pages", select(Page.target_id, func.count()).where(Page.last_run_id == run_id).group_by(Page.target_id)),
        ("hits", select(Hit.target_id, func.count()).where(Hit.last_run_id == run_id).group_by(Hit.target_id)),
        ("new_hits", select(Hit.target_id, func.count()).where(Hit.first_run_id == run_id).group_by(Hit.target_id)),
    ):
        for target_id, count in session.execute(query):
            counts = out.setdefault(target_id, {"pages": 0, "failed": 0, "hits": 0, "new_hits": 0, "errors": {}})
            counts[column] = max(counts[column], count)
    return out


def process_alive(pid: int, started: datetime | None = None) -> bool:
    """Whether process ``pid`` of this host exists (not a zombie); when ``started`` (its start
    time as :func:`process_started` read it) is given, a process that started at another time
    is another one given the same id."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc (not Linux): the id exists
    if stat[0] in ("Z", "X"):
        return False
    now = process_started(pid)
    return started is None or now is None or abs((now - as_utc(started)).total_seconds()) < 2


def process_started(pid: int) -> datetime | None:
    """When process ``pid`` started, from /proc (its start in clock ticks after boot); None elsewhere."""
    stat = _proc_stat(pid)
    try:
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return datetime.fromtimestamp(boot + int(stat[19]) / os.sysconf("SC_CLK_TCK"), tz=UTC)
    except (OSError, StopIteration, ValueError, TypeError, IndexError):
        return None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first); None without it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _jsonable(value):
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def failing_targets(db: StateDB, run_id: int | None, limit: int = 20) -> dict[str, str]:
    """``target <id>`` → what went wrong for it in the run (``pages 0, failed 3: not_found×3
    (http_404×3)``), for every target that fetched nothing or had failures, at most ``limit``
    (then ``more targets``: how many are left out): what an operator's notice names."""
    from sqlalchemy import select

    from crawler.store.failures import describe_failures

    if run_id is None:
        return {}
    with db.new_session() as session:
        rows = session.scalars(select(RunTarget).where(RunTarget.run_id == run_id).order_by(RunTarget.target_id))
        failing = [r for r in rows if r.pages == 0 or r.failed]
    out = {f"target {r.target_id}": f"pages {r.pages}, failed {r.failed}"
           + (f": {describe_failures(r.errors)}" if r.errors else "") for r in failing[:limit]}
    if len(failing) > limit:
        out["more targets"] = str(len(failing) - limit)
    return out
