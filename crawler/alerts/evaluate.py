"""Turn stored hits into alerts, after each patrol run, from the state DB.

Why here and not in a Scrapy pipeline: the state DB is the source of truth, and
a pipeline that dies between storing a hit and queueing its alert would lose the
alert. Evaluating from the DB instead is lossless and idempotent: every patrol
run (scheduled, ``finpatrol patrol`` or another process) is evaluated until it is
recorded in ``alert_runs`` in the same transaction as its alerts, and repeats are
suppressed by the dedup marks. A run left ``running`` by a process that is gone is
settled first (``crawler.store.runs.settle_abandoned``), so it is evaluated once.
The scheduler calls :func:`evaluate` after every
crawl and on its ``alerts_every`` tick; ``finpatrol alerts send`` calls it too.

Settings: ``alerts.*`` (rules, opinion, renotify_after), ``routing.*``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from crawler.alerts import opinion as op
from crawler.alerts.config import risk_rank
from crawler.alerts.models import AlertRun, ensure_schema
from crawler.alerts.records import (add_alert, claim_mark, hold_mark, mark_holds, mark_post_told, text_fingerprint,
                                     units_told_of_page, units_told_of_post)
from crawler.alerts.routing import units_for_hit, units_for_opinion
from crawler.alerts.rules import decide, is_urgent
from crawler.alerts.site_down import site_down_alerts
from crawler.alerts.taxonomy import category_text
from crawler.alerts.withdrawals import withdrawal_alerts, withdrawn_before
from crawler.config import PatrolConfig
from crawler.evidence.models import Evidence
from crawler.items import post_url
from crawler.store.db import StateDB, as_utc, in_chunks, iso, utcnow
from crawler.store.models import Hit, Page, PatrolRun, TargetRow
from crawler.store.runs import settle_abandoned
from crawler.wording import zh

logger = logging.getLogger(__name__)


def evaluate(db: StateDB, config: PatrolConfig, now: datetime | None = None) -> list[int]:
    """Evaluate the hits of every run not evaluated yet; return the new alert ids."""
    if not config.alerts.enabled:
        return []
    ensure_schema(db)
    settle_abandoned(db)  # a run whose process died would stay running, and be selected again on every pass
    now = as_utc(now or utcnow())  # SQLite keeps wall-clock time: a non-UTC now would be read back shifted
    with db.new_session() as session, session.begin():
        done = select(AlertRun.run_id)
        runs = session.execute(select(PatrolRun.id, PatrolRun.status).where(PatrolRun.id.not_in(done))).all()
        if not runs:
            return []
        run_ids = [r.id for r in runs]
        hits = session.scalars(select(Hit).where(Hit.last_run_id.in_(run_ids)).order_by(Hit.id)).all()
        ids = _hit_alerts(session, config, hits, now)
        ids += _opinion_alerts(session, config, hits, now)
        ids += withdrawal_alerts(session, run_ids, now)
        ids += site_down_alerts(session, config, run_ids, now)
        for run_id, status in runs:
            if status != "running":
                session.add(AlertRun(run_id=run_id, evaluated_at=now))
        return ids


def institution(session, config: PatrolConfig, target_id: str) -> tuple[str, str]:
    """(name, business) of a target from the config, else from the synced targets table."""
    try:
        target = config.target(target_id)
        return target.name, target.business
    except KeyError:
        row = session.get(TargetRow, target_id)
        return (row.name, row.business) if row else (target_id, "other")


@dataclass(frozen=True)
class Concern:
    """The institution a hit concerns: its alerts go to the units of its business, are
    deduplicated and filed under it (the alert's target), and name it."""

    target_id: str
    name: str
    business: str
    found_on: dict | None = None
    """Where it was said, when not on a site patrolled for the institution: a post on a forum
    registered as a target, an ad of a channel, a post of an opinion source (``target``,
    ``name``, and how it was attributed: ``reason``, ``reason_zh``, ``detail``)."""


def concerns(session, config: PatrolConfig, hits: list[Hit]) -> dict[int, Concern]:
    """hit id → the institution it concerns: the one the patrol attributed it to (by domain,
    advertiser or name: ``hit_attributions``, as ``show`` and the dossier file it), else the
    target it was found on. One rule for every hit: a forum's post about 鑫盈宝 is 鑫盈宝's
    as its channel ads and its posts on opinion sources are."""
    attributed = op.attributions(session, [hit.id for hit in hits])
    out = {}
    for hit in hits:
        row = attributed.get(hit.id)
        target_id = row.target_id if row is not None else hit.target_id
        name, business = institution(session, config, target_id)
        found_on = None
        if target_id != hit.target_id:
            found_on = {"target": hit.target_id, "name": institution(session, config, hit.target_id)[0],
                        "reason": row.reason, "reason_zh": zh(row.reason, "attribution"), "detail": row.detail}
        out[hit.id] = Concern(target_id, name, business, found_on)
    return out


def _hit_alerts(session, config: PatrolConfig, hits: list[Hit], now: datetime) -> list[int]:
    """One alert per hit and category, unless the same wording or the same post alerted recently.

    A post found several ways (a target's page, an opinion source's page, its listed
    snippet) alerts each unit once per category, unless a later record of it is more
    urgent or riskier; its page goes before its listing. A hit that replaced its page's
    earlier hit with new words for a category (a rewording: still breaking the rule)
    alerts the units told of the earlier claim again, and its message names the earlier hit.
    A hit that replaced one because the rules changed, the words did not, tells nothing new
    in the categories of the hit it replaced, unless its risk rose (``_judged_again``).
    A unit told of the same words of the same page under another dedup key (the target the
    page was found on, as a state DB from before attributed hits alerted as their institution
    has it; an earlier attribution) is not told again; a unit the routing adds now is, once.
    """
    alerts, ids = config.alerts, []
    since = now - timedelta(seconds=alerts.renotify_after)
    earlier = replaced_hits(session, [hit.id for hit in hits])
    concerned = concerns(session, config, hits)
    for hit in sorted(hits, key=lambda h: (post_url(h.url) != h.url, h.id)):
        about = concerned[hit.id]
        post = post_url(hit.url)
        for category in hit.labels:
            action = decide(alerts, hit.target_id, category, hit.risk)
            if action == "ignore" or _judged_again(earlier.get(hit.id), category, hit.risk):
                continue
            fingerprint = text_fingerprint(category, hit.findings)
            before = _reworded(earlier.get(hit.id), category, fingerprint)
            reworded_at = as_utc(before.removed_at) if before is not None else None
            units = units_for_hit(config.routing, about.business, category, hit.risk)
            # a telling before the claim came back (rectified or gone, then back) told of its first time
            fresh = max(since, as_utc(hit.reopened_at)) if hit.reopened_at is not None else since
            told = units_told_of_post(session, post, category, hit.page_id, units, action, hit.risk, fresh,
                                      reworded_at=reworded_at)
            units = [unit for unit in units if unit not in told]
            # a record left out (its post told) claims no mark: it would hold back the next telling
            if not units or mark_holds(session, about.target_id, category, fingerprint, fresh):
                continue
            # units told of these words of this page under another key: the found-on target,
            # before alerts were filed under the institution a hit concerns, or another institution
            on_page = units_told_of_page(session, hit.page_id, category, fingerprint, units, action, hit.risk, fresh)
            units = [unit for unit in units if unit not in on_page]
            if not units:  # the key holds from that telling on, as it would have had it been this key
                hold_mark(session, about.target_id, category, fingerprint, max(on_page.values()))
                continue
            hold_mark(session, about.target_id, category, fingerprint, now)
            mark_post_told(session, post, category, hit.page_id, units, action, hit.risk, now,
                           reworded=before is not None)
            payload = hit_payload(session, hit, category, about)
            if hit.reopened_at is not None:
                payload["reopened_at"] = iso(hit.reopened_at)
            if before is not None:
                payload["reworded_from"] = reworded_from(before, category)
            if (withdrawn := withdrawn_before(session, hit.id, category)) is not None:
                payload["withdrawn_before"] = withdrawn
            alert = add_alert(
                session, kind="hit", target_id=about.target_id, hit_id=hit.id, category=category,
                risk=hit.risk, action=action, urgent=is_urgent(alerts, hit.risk), fingerprint=fingerprint,
                payload=payload, units=units, now=now,
            )
            ids.append(alert.id)
    return ids


def replaced_hits(session, hit_ids: list[int]) -> dict[int, Hit]:
    """hit id → the earlier hit of its page it replaced (``replaced_by``: reworded, not rectified)."""
    out: dict[int, Hit] = {}
    for some in in_chunks(hit_ids):
        query = select(Hit).where(Hit.replaced_by.in_(some)).order_by(Hit.removed_at)
        out.update((hit.replaced_by, hit) for hit in session.scalars(query))
    return out


def _judged_again(before: Hit | None, category: str, risk: str) -> bool:
    """True when ``before``, the hit this one replaced, broke ``category`` too in the same
    words at a ``risk`` as high: the rules changed, not the page, and the units were told
    of it then (or spared it at that risk)."""
    return (before is not None and bool(before.reclassified) and category in before.labels
            and risk_rank(risk) <= risk_rank(before.risk))


def _reworded(before: Hit | None, category: str, fingerprint: str) -> Hit | None:
    """``before`` when it broke ``category`` too, in other words; else None (a new claim, or the same words)."""
    if before is None or before.removed_at is None or category not in before.labels:
        return None
    return before if text_fingerprint(category, before.findings) != fingerprint else None


def reworded_from(before: Hit, category: str) -> dict:
    """What a rewording alert says of the earlier claim: its hit, when seen, its words for ``category``."""
    words = list(dict.fromkeys(f.get("text", "") for f in before.findings
                               if f.get("category") == category and not f.get("negated")))
    return {"id": before.id, "first_seen": iso(before.first_seen), "removed_at": iso(before.removed_at),
            "words": words}


def hit_payload(session, hit: Hit, category: str, about: Concern) -> dict:
    text = category_text(category)
    page = session.get(Page, hit.page_id)
    evidence = {"sha256": hit.sha256}
    ev = session.scalar(select(Evidence).where(Evidence.hit_id == hit.id).order_by(Evidence.id.desc()).limit(1))
    if ev is not None:
        evidence.update(warc_file=ev.warc_file, warc_record_id=ev.record_id, warc_offset=ev.offset,
                        evidence_id=ev.id, screenshot=bool(ev.screenshot_record_id))
    return {
        "institution": about.name, "target": about.target_id, "business": about.business, "found_on": about.found_on,
        "category": category, "category_zh": text.name_zh, "seed_section": text.seed_section,
        "hit": {
            "id": hit.id, "url": hit.url, "final_url": page.final_url if page else hit.url,
            "title": hit.title, "risk": hit.risk, "score": round(float(hit.score), 4),
            "labels": list(hit.labels), "context": hit.context, "findings": hit.findings,
            "yields": hit.yields, "first_seen": iso(hit.first_seen), "fetched_at": iso(hit.fetched_at),
        },
        "evidence": evidence,
    }


def _opinion_alerts(session, config: PatrolConfig, hits: list[Hit], now: datetime) -> list[int]:
    cats = set(config.alerts.opinion.categories)
    fresh = [h for h in hits if cats & set(h.labels)]
    if not fresh:
        return []
    opinion = config.alerts.opinion
    since = now - timedelta(seconds=opinion.window + opinion.baseline_days * 86400)
    signals = op.signals_between(session, opinion, since, now, config.targets)
    fresh_ids = {h.id for h in fresh}
    new_ids = {h.id for h in fresh if as_utc(h.first_seen) >= now - timedelta(seconds=opinion.window)}
    touched = {i for s in signals if any(r.hit_id in fresh_ids for r in s.records) for i in s.institutions}
    ids = []
    for inst, signal in op.first_mass_incidents(session, config.alerts, signals, new_ids, now):
        ids.append(_opinion_alert(session, config, inst, "first_mass_incident", [signal], 1, 0.0, now))
    for spike in op.spikes(session, config.alerts, signals, touched, now):
        ids.append(_opinion_alert(session, config, spike.target_id, spike.reason, spike.signals,
                                  spike.count, spike.baseline_mean, now))
    return ids


def _opinion_alert(session, config, inst, reason, signals, count, mean, now) -> int:
    name, business = institution(session, config, inst)
    category = "mass_incident" if reason == "first_mass_incident" else "opinion_spike"
    text = category_text(category)
    payload = {
        "institution": name, "target": inst, "business": business, "reason": reason,
        "category": category, "category_zh": text.name_zh, "seed_section": text.seed_section,
        "count": count, "baseline_mean": mean, "window_hours": hours(config.alerts.opinion.window),
        "signals": [op.signal_dict(s) | {"found_on_names": [institution(session, config, t)[0] for t in s.found_on]}
                    for s in signals[-20:]],
    }
    alert = add_alert(
        session, kind="opinion", target_id=inst, hit_id=signals[-1].hit_id if signals else None,
        category=category, risk="high", action="immediate", urgent=True,
        fingerprint=f"{reason}:{count}", payload=payload,
        units=units_for_opinion(config.routing, business), now=now,
    )
    return alert.id


def hours(seconds: int) -> int | float:
    """A window in hours as people write it: 24, 1.5 (not 24.0)."""
    value = round(seconds / 3600, 1)
    return int(value) if value.is_integer() else value


def notify_operator(db: StateDB, config: PatrolConfig, subject: str, details: dict,
                    key: str | None = None, now: datetime | None = None) -> int | None:
    """Queue a notice about a failed, missed or unhealthy crawl for the operator unit.

    Notices with the same ``key`` (e.g. job + status) repeat only after
    ``alerts.operator_renotify``, so a crawl failing every few minutes is one mail.
    """
    if not (config.alerts.enabled and config.alerts.operator_alerts):
        return None
    ensure_schema(db)
    now = as_utc(now or utcnow())  # SQLite keeps wall-clock time: a non-UTC now would be read back shifted
    with db.new_session() as session, session.begin():
        if key and not claim_mark(session, "_operator", "operator", key[:64], now, config.alerts.operator_renotify):
            return None
        alert = add_alert(
            session, kind="operator", target_id=None, hit_id=None, category="operator", risk="medium",
            action="immediate", urgent=False, fingerprint=subject[:64],
            payload={"subject": subject, "details": details, "at": iso(now)},
            units=[config.routing.operator_unit], now=now,
        )
        return alert.id
