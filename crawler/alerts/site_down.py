"""Tell the lead unit when a registered institution's site stops answering (失联, 三(六)).

A platform about to collapse often goes dark first: its site stops answering, or its
domain lapses. A target is down when every patrol of it since the last one in which its
site answered fetched no page and failed as ``offline`` or ``domain_gone``
(``crawler.store.failures``: no server answered, its name no longer resolves; a site that
answers but refuses us, or answers 404, is up), at least ``alerts.site_down.min_patrols``
patrols in a row over at least ``alerts.site_down.after``. Then its business's units and those of collapse signals
(``routing``) get one alert (kind ``site_down``, category ``collapse_signal``), high risk
when it still has open hits, once per outage: a site that comes back and goes down again
alerts again. A site that never answered is not "down" (a wrong URL is the operator's, shown by
``finpatrol coverage``). Evaluated with the hit alerts of each patrol run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from crawler.alerts.config import risk_rank
from crawler.alerts.models import Alert
from crawler.alerts.records import add_alert
from crawler.alerts.routing import units_for_hit
from crawler.alerts.rules import is_urgent
from crawler.alerts.taxonomy import category_text
from crawler.config import PatrolConfig
from crawler.store.db import as_utc, in_chunks, iso
from crawler.store.failures import classify_errors, describe_failures
from crawler.store.models import Hit, PatrolRun, RunTarget

logger = logging.getLogger(__name__)
DOWN = frozenset({"offline", "domain_gone"})


def site_down_alerts(session, config: PatrolConfig, run_ids: list[int], now: datetime) -> list[int]:
    """Queue an alert for every target these runs found down (see the module doc), once per outage."""
    settings = config.alerts.site_down
    if not settings.enabled:
        return []
    patrolled = {t for some in in_chunks(run_ids) for t in session.scalars(
        select(RunTarget.target_id).where(RunTarget.run_id.in_(some)))}
    ids = []
    for target in config.targets:
        if target.id not in patrolled:
            continue
        outage = _outage(session, target.id)
        if outage is None:
            continue
        last_answered, failed = outage
        down_for = as_utc(failed[0][1].started_at) - as_utc(last_answered.started_at)  # patrol starts: in run order
        if len(failed) < settings.min_patrols or down_for < timedelta(seconds=settings.after):
            continue
        fingerprint = f"site_down:{last_answered.id}"  # one outage: the same last patrol it answered
        if session.scalar(select(Alert.id).where(Alert.kind == "site_down", Alert.target_id == target.id,
                                                 Alert.fingerprint == fingerprint)):
            continue
        open_hits = session.execute(select(Hit.risk, func.count()).where(
            Hit.target_id == target.id, Hit.removed_at.is_(None)).group_by(Hit.risk)).all()
        risk = "high" if open_hits else "medium"
        latest_run, latest_errors = failed[0][1], failed[0][0].errors or {}
        text = category_text("collapse_signal")
        payload = {  # "risk" too: the message shows it as hit alerts show their hit's
            "institution": target.name, "target": target.id, "business": target.business, "risk": risk,
            "category": "collapse_signal", "category_zh": text.name_zh, "seed_section": text.seed_section,
            "urls": list(target.urls), "last_answered": iso(last_answered.started_at),
            "last_answered_run": last_answered.id, "down_since": iso(failed[-1][1].started_at), "patrols": len(failed),
            "latest": iso(latest_run.started_at), "latest_run": latest_run.id,
            "failures": describe_failures(latest_errors), "failure_classes": classify_errors(latest_errors),
            "open_hits": {hit_risk: count for hit_risk, count in sorted(open_hits, key=lambda row: -risk_rank(row[0]))},
        }
        units = units_for_hit(config.routing, target.business, "collapse_signal", risk)
        alert = add_alert(session, kind="site_down", target_id=target.id, hit_id=None, category="collapse_signal",
                          risk=risk, action="immediate", urgent=is_urgent(config.alerts, risk),
                          fingerprint=fingerprint, payload=payload, units=units, now=now)
        ids.append(alert.id)
    return ids


def _outage(session, target_id: str) -> tuple[PatrolRun, list[tuple[RunTarget, PatrolRun]]] | None:
    """(the last patrol in which its site answered, the patrols since, newest first) when none
    of those answered; None when the latest one did, or it never answered. It answered when
    pages were fetched, or a failure other than offline/domain_gone shows a server (a 403, a 404)."""
    failed = []
    attempts = session.execute(
        select(RunTarget, PatrolRun).join(PatrolRun, PatrolRun.id == RunTarget.run_id)
        .where(RunTarget.target_id == target_id, PatrolRun.status != "running").order_by(PatrolRun.id.desc()))
    for run_target, run in attempts:
        classes = set(classify_errors(run_target.errors))
        if run_target.pages > 0 or not classes or not classes <= DOWN:
            return (run, failed) if failed else None
        failed.append((run_target, run))
    return None
