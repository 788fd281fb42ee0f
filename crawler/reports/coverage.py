"""Patrol coverage (全覆盖): every target's last successful patrol, next scheduled one and failures.

Read from the state DB: ``run_targets`` per finished run gives when each target
was last patrolled with pages fetched, and the failures of its latest attempt,
grouped by class (``crawler.store.failures``: blocked, offline, domain_gone, not_found
(a dead link, or a start URL gone), other).
The next scheduled patrol comes from the scheduler's job store
(``crawler.schedule.listing``) for the jobs that cover the target.
Channels and sources are listed too, under their pseudo ids.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select

from crawler.config import PatrolConfig, Target
from crawler.config_channels import pseudo_target
from crawler.store.db import StateDB, iso
from crawler.store.failures import classify_errors, describe_failures
from crawler.store.models import PatrolRun, RunTarget

logger = logging.getLogger(__name__)


def _subjects(config: PatrolConfig) -> list[tuple[str, str, str, str, bool]]:
    """(id, store id, name, kind, enabled) of every target, channel and source."""
    rows = [(t.id, t.id, t.name, "target", t.enabled) for t in config.targets]
    rows += [(c.id, pseudo_target("channel", c.id), c.name or c.id, "channel", c.enabled) for c in config.channels]
    rows += [(s.id, pseudo_target("source", s.id), s.name or s.id, "source", s.enabled) for s in config.sources]
    return rows


def next_runs(config: PatrolConfig, db: StateDB) -> dict[tuple[str, str], datetime | None]:
    """(spider, id or "*") → next run time of the scheduled jobs, from the job store."""
    if not config.schedules.jobs:
        return {}
    from crawler.schedule.listing import schedule_rows

    jobs = {j.id: j for j in config.schedules.jobs}
    out: dict[tuple[str, str], datetime | None] = {}
    for row in schedule_rows(config, db):
        job = jobs.get(row["id"])
        if job is None or not row["next_run"]:
            continue
        when = datetime.fromisoformat(row["next_run"])
        for key in job.targets or ("*",):
            slot = (job.spider, key)
            if out.get(slot) is None or when < out[slot]:
                out[slot] = when
    return out


SPIDER_OF = {"target": "site_patrol", "channel": "ad_channel", "source": "opinion"}


def coverage_rows(config: PatrolConfig, db: StateDB) -> list[dict]:
    upcoming = next_runs(config, db)
    with db.new_session() as session:
        return [_row(session, upcoming, *subject) for subject in _subjects(config)]


def target_coverage(config: PatrolConfig, db: StateDB, target: Target) -> dict:
    """The coverage row of one target, also of one removed from the config (never scheduled then)."""
    with db.new_session() as session:
        return _row(session, next_runs(config, db), target.id, target.id, target.name, "target", target.enabled)


def _row(session, upcoming: dict, ident: str, store_id: str, name: str, kind: str, enabled: bool) -> dict:
    last, success, runs = _attempts(session, store_id)
    spider = SPIDER_OF[kind]
    candidates = [upcoming.get((spider, ident)), upcoming.get((spider, "*"))]
    nxt = min((c for c in candidates if c is not None), default=None) if enabled else None
    failures = classify_errors(last[0].errors) if last else {}
    return {
        "id": ident, "kind": kind, "name": name, "enabled": enabled,
        "status": _status(last, failures),
        "last_success": iso(success[1].finished_at or success[1].started_at) if success else None,
        "last_success_run": success[1].id if success else None,
        "last_success_pages": success[0].pages if success else 0,
        "last_attempt": iso(last[1].finished_at or last[1].started_at) if last else None,
        "last_attempt_run": last[1].id if last else None,
        "failures": failures,
        "errors": dict(last[0].errors or {}) if last else {},
        "failure_summary": describe_failures(last[0].errors or {}) if last else "",
        "next_scheduled": iso(nxt),
        "runs": runs,
    }


def _attempts(session, store_id: str) -> tuple[tuple | None, tuple | None, int]:
    """(run target, run) of the latest finished patrol of ``store_id`` and of the latest that
    fetched pages (None when there is none), and how many finished patrols it had: read from its
    newest patrols back (``ix_run_targets_target_run``), not from every run of the history."""
    finished = (select(RunTarget, PatrolRun).join(PatrolRun, PatrolRun.id == RunTarget.run_id)
                .where(RunTarget.target_id == store_id, PatrolRun.status != "running")
                .order_by(RunTarget.run_id.desc()).limit(1))
    last = session.execute(finished).first()
    success = session.execute(finished.where(RunTarget.pages > 0)).first() if last else None
    runs = session.scalar(select(func.count()).select_from(RunTarget).join(PatrolRun, PatrolRun.id == RunTarget.run_id)
                          .where(RunTarget.target_id == store_id, PatrolRun.status != "running"))
    return last, success, runs


def _status(last, failures: dict[str, int]) -> str:
    """ok | partial | blocked | offline | domain_gone | not_found | other | failed | never

    ``partial``: pages were fetched, but some requests failed other than with not_found.
    """
    if last is None:
        return "never"
    run_target = last[0]
    if run_target.pages > 0:  # a dead link or a removed page (not_found) leaves the site covered
        return "partial" if any(cls != "not_found" for cls in failures) else "ok"
    if failures:
        return max(failures, key=lambda k: (failures[k], k != "other"))
    return "failed"
