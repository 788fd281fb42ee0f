"""Tell a registered institution's units when its site stops answering (失联, 三(六)), and when it answers again.

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

When a patrol evaluated now finds the site of the latest outage answering again, the units
of its ``site_down`` alert get one notice (kind ``site_up``, not urgent: it waits out quiet
hours): what answered, when the site was down, how many patrols failed, and that a site
back up is no sign the risk is gone. A unit whose ``site_down`` alert was still queued is not
told the site is down after it came back: that delivery is dropped (state ``recovered``) and
the notice tells it the whole outage; likewise a queued ``site_up`` notice is dropped
(``superseded``) for the units of a new outage's alert, which says when the site last answered.
Recoveries are told even with ``alerts.site_down.enabled`` off: they follow alerts already queued.
"""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import datetime, timedelta

from sqlalchemy import func, select

from crawler.alerts.config import risk_rank
from crawler.alerts.models import Alert, Delivery
from crawler.alerts.records import add_alert
from crawler.alerts.routing import units_for_hit
from crawler.alerts.rules import is_urgent
from crawler.alerts.taxonomy import category_text
from crawler.config import PatrolConfig, Target
from crawler.store.db import as_utc, in_chunks, iso
from crawler.store.failures import classify_errors, describe_failures
from crawler.store.models import Hit, Page, PatrolRun, RunTarget

logger = logging.getLogger(__name__)
DOWN = frozenset({"offline", "domain_gone"})
QUEUED = ("pending", "digest")
"""Delivery states of a unit not told yet (:class:`crawler.alerts.models.Delivery`)."""
MAX_PAGES_SHOWN = 5
STREAM = 20
"""A target's patrols read at a time, walking back to the last one its site answered in."""


def site_down_alerts(session, config: PatrolConfig, run_ids: list[int], now: datetime) -> list[int]:
    """Queue a notice for every outage these runs found over, then an alert for every target
    they found down (see the module doc), once per outage."""
    patrolled = {t for some in in_chunks(run_ids) for t in session.scalars(
        select(RunTarget.target_id).where(RunTarget.run_id.in_(some)))}
    targets = [target for target in config.targets if target.id in patrolled]
    ids = [alert_id for target in targets if (alert_id := _site_up(session, target, set(run_ids), now))]
    settings = config.alerts.site_down
    if not settings.enabled:
        return ids
    for target in targets:
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
        payload = {  # "risk" too: the message shows it as hit alerts show their hit's
            **_about(target), "risk": risk,
            "last_answered": iso(last_answered.started_at),
            "last_answered_run": last_answered.id, "down_since": iso(failed[-1][1].started_at), "patrols": len(failed),
            "latest": iso(latest_run.started_at), "latest_run": latest_run.id,
            "failures": describe_failures(latest_errors), "failure_classes": classify_errors(latest_errors),
            "open_hits": {hit_risk: count for hit_risk, count in sorted(open_hits, key=lambda row: -risk_rank(row[0]))},
        }
        units = units_for_hit(config.routing, target.business, "collapse_signal", risk)
        alert = add_alert(session, kind="site_down", target_id=target.id, hit_id=None, category="collapse_signal",
                          risk=risk, action="immediate", urgent=is_urgent(config.alerts, risk),
                          fingerprint=fingerprint, payload=payload, units=units, now=now)
        _drop_queued(session, select(Alert.id).where(Alert.kind == "site_up", Alert.target_id == target.id),
                     units, "superseded", f"the site went down again (alert {alert.id})")
        ids.append(alert.id)
    return ids


def _about(target: Target) -> dict:
    """What both kinds say of the institution and its site."""
    text = category_text("collapse_signal")
    return {"institution": target.name, "target": target.id, "business": target.business,
            "category": "collapse_signal", "category_zh": text.name_zh, "seed_section": text.seed_section,
            "urls": list(target.urls)}


def _answered(run_target: RunTarget) -> bool:
    """Pages were fetched, or a failure other than offline/domain_gone shows a server (a 403, a 404)."""
    classes = set(classify_errors(run_target.errors))
    return run_target.pages > 0 or not classes or not classes <= DOWN


def _outage(session, target_id: str) -> tuple[PatrolRun, list[tuple[RunTarget, PatrolRun]]] | None:
    """(the last patrol in which its site answered, the patrols since, newest first) when none
    of those answered; None when the latest one did, or it never answered."""
    failed = []
    attempts = session.execute(  # streamed newest first from the index: read back to the last answer only
        select(RunTarget, PatrolRun).join(PatrolRun, PatrolRun.id == RunTarget.run_id)
        .where(RunTarget.target_id == target_id, PatrolRun.status != "running").order_by(RunTarget.run_id.desc())
        .execution_options(yield_per=STREAM))
    with closing(attempts):
        for run_target, run in attempts:
            if _answered(run_target):
                return (run, failed) if failed else None
            failed.append((run_target, run))
    return None


def _site_up(session, target: Target, run_ids: set[int], now: datetime) -> int | None:
    """The notice that the latest outage of ``target`` is over, when a run evaluated now is the
    first since its alert in which the site answered; None otherwise or when it was queued already."""
    down = session.scalar(select(Alert).where(Alert.kind == "site_down", Alert.target_id == target.id)
                          .order_by(Alert.id.desc()).limit(1))
    if down is None:
        return None
    since = down.payload["last_answered_run"]
    fingerprint = f"site_up:{since}"  # the outage's key, as its site_down alert's
    if session.scalar(select(Alert.id).where(Alert.kind == "site_up", Alert.target_id == target.id,
                                             Alert.fingerprint == fingerprint)):
        return None
    back, failed = _back(session, target.id, since)
    if back is None or not failed or back[1].id not in run_ids:  # one found over before is told or history
        return None
    units = list(session.scalars(select(Delivery.unit).where(Delivery.alert_id == down.id).order_by(Delivery.unit)))
    unsent = _drop_queued(session, select(Alert.id).where(Alert.id == down.id), units, "recovered",
                          f"the site answered again (patrol {back[1].id})")
    (back_target, back_run), last_failed = back, failed[-1][1]
    payload = {
        **_about(target), "risk": down.risk, "down_alert": down.id, "down_alert_unsent": unsent,
        "last_answered": down.payload["last_answered"], "last_answered_run": since,
        "down_since": iso(failed[0][1].started_at), "patrols": len(failed),
        "last_failed": iso(last_failed.started_at), "last_failed_run": last_failed.id,
        "back_at": iso(back_run.started_at), "back_run": back_run.id, "pages": back_target.pages,
        "failures": describe_failures(back_target.errors or {}),
        "shown": [{"url": url, "title": title} for url, title in session.execute(
            select(Page.url, Page.title).where(Page.target_id == target.id, Page.last_run_id == back_run.id)
            .order_by(Page.id).limit(MAX_PAGES_SHOWN))],
    }
    alert = add_alert(session, kind="site_up", target_id=target.id, hit_id=None, category="collapse_signal",
                      risk=down.risk, action="immediate", urgent=False, fingerprint=fingerprint,
                      payload=payload, units=units, now=now)
    return alert.id


def _back(session, target_id: str, since: int):
    """((run target, run) of the first patrol after run ``since`` in which the site answered, or
    None; the patrols before it that failed, oldest first)."""
    failed = []
    attempts = session.execute(
        select(RunTarget, PatrolRun).join(PatrolRun, PatrolRun.id == RunTarget.run_id)
        .where(RunTarget.target_id == target_id, RunTarget.run_id > since, PatrolRun.status != "running")
        .order_by(RunTarget.run_id).execution_options(yield_per=STREAM))
    with closing(attempts):
        for run_target, run in attempts:
            if _answered(run_target):
                return (run_target, run), failed
            failed.append((run_target, run))
    return None, failed


def _drop_queued(session, alert_ids, units: list[str], state: str, why: str) -> list[str]:
    """Never mail the queued deliveries of ``alert_ids`` (a select) to ``units``: a later alert
    tells them the newer state. Their state says why; returns the units dropped."""
    rows = session.scalars(select(Delivery).where(Delivery.alert_id.in_(alert_ids), Delivery.unit.in_(units),
                                                  Delivery.state.in_(QUEUED)).order_by(Delivery.unit)).all()
    for delivery in rows:
        delivery.state = state
        logger.info("alert %s to %s: not mailed (%s): %s", delivery.alert_id, delivery.unit, state, why)
    return [delivery.unit for delivery in rows]
