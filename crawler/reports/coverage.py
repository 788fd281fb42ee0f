"""Patrol coverage (全覆盖): every target's last successful patrol, next scheduled one and failures.

Read from the state DB: ``run_targets`` per finished run gives when each target
was last patrolled with pages fetched, and the failures of its latest attempt,
grouped as ``blocked`` (robots.txt, 401/403/429/451, refused by policy), ``offline``
(refused, timeouts, lost connections, 5xx, browser errors, and ``host_unresponsive``:
requests not sent once their host had failed too often in a row), ``domain_gone`` (DNS:
no server answers; ``host_unresolved``: not sent, the host's name did not resolve),
``not_found`` (404, and 410: the server answers that the page is missing or was removed
on purpose; a dead link, or a start URL gone) and ``other``.
The next scheduled patrol comes from the scheduler's job store
(``crawler.schedule.listing``) for the jobs that cover the target.
Channels and sources are listed too, under their pseudo ids.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from crawler.config import PatrolConfig, Target
from crawler.config_channels import pseudo_target
from crawler.store.db import StateDB, iso
from crawler.store.models import PatrolRun, RunTarget

logger = logging.getLogger(__name__)

BLOCKED = ("private_network", "robots", "ignored", "http_401", "http_403", "http_429", "http_451")
OFFLINE = ("refused", "timeout", "connection_lost", "render_timeout", "render_error", "too_large",
           "host_unresponsive")
DOMAIN_GONE = ("dns", "host_unresolved")
NOT_FOUND = ("http_404", "http_410")


def failure_class(reason: str) -> str:
    if reason in BLOCKED:
        return "blocked"
    if reason in DOMAIN_GONE:
        return "domain_gone"
    if reason in NOT_FOUND:
        return "not_found"
    if reason in OFFLINE or reason.startswith("http_5"):
        return "offline"
    return "other"


def describe_failures(errors: dict) -> str:
    """``offline×3 (timeout×2, http_503×1)``: each class with the reasons behind it."""
    parts = []
    for cls, count in sorted(classify_errors(errors).items()):
        reasons = sorted(((r, int(n)) for r, n in errors.items() if failure_class(r) == cls),
                         key=lambda pair: (-pair[1], pair[0]))
        detail = ", ".join(f"{r}×{n}" for r, n in reasons)
        parts.append(f"{cls}×{count}" + (f" ({detail})" if reasons != [(cls, count)] else ""))
    return ", ".join(parts)


def classify_errors(errors: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for reason, count in (errors or {}).items():
        key = failure_class(reason)
        out[key] = out.get(key, 0) + int(count)
    return out


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
    attempts = session.execute(
        select(RunTarget, PatrolRun).join(PatrolRun, PatrolRun.id == RunTarget.run_id)
        .where(RunTarget.target_id == store_id, PatrolRun.status != "running")
        .order_by(PatrolRun.id.desc())
    ).all()
    success = next(((rt, run) for rt, run in attempts if rt.pages > 0), None)
    last = attempts[0] if attempts else None
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
        "runs": len(attempts),
    }


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
