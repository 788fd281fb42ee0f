"""Compose queued alerts into outbox messages: immediate mail and daily digests.

Immediate deliveries of one unit that concern the same hit become one message.
Non-urgent ones wait out ``alerts.quiet_hours``; beyond
``alerts.max_per_recipient_per_hour`` immediate messages to a unit (opinion
alerts excepted) the rest roll into that unit's next digest. A digest per unit
goes out once a day after ``alerts.digest_time``, grouped by institution.
Each message is written to the outbox in the same transaction that marks its
deliveries mailed, with a Message-ID derived from its content's identity.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from email import policy

from sqlalchemy import select

from crawler.alerts import message
from crawler.alerts.config import risk_rank
from crawler.alerts.models import Alert, AlertState, Delivery, OutboxMessage, ensure_schema
from crawler.alerts.rules import digest_due, in_quiet_hours, local
from crawler.alerts.standing import PAST, standings
from crawler.config import PatrolConfig
from crawler.store.db import StateDB, parse_time, utcnow
from crawler.wording import zh

logger = logging.getLogger(__name__)
LAST_DIGEST = "last_digest_at"


def compose(db: StateDB, config: PatrolConfig, now: datetime | None = None, force_digest: bool = False) -> list[int]:
    """Compose everything due now; return the new outbox ids."""
    ensure_schema(db)
    now = now or utcnow()
    return compose_immediate(db, config, now) + compose_digests(db, config, now, force_digest)


def compose_immediate(db: StateDB, config: PatrolConfig, now: datetime) -> list[int]:
    quiet = in_quiet_hours(config.alerts, now)
    out = []
    with db.new_session() as session, session.begin():
        rows = session.execute(
            select(Delivery, Alert).join(Alert, Alert.id == Delivery.alert_id)
            .where(Delivery.state == "pending").order_by(Alert.id)
        ).all()
        groups: dict[tuple, list] = defaultdict(list)
        for delivery, alert in rows:
            if quiet and not alert.urgent:
                continue
            groups[(delivery.unit, alert.hit_id or -alert.id)].append((delivery, alert))
        sent_last_hour = _recent_counts(session, now)
        for (unit, _key), items in groups.items():
            items, standing = _sort_out(session, unit, items)
            if not items:
                continue
            capped = all(a.kind == "hit" for _d, a in items)
            if capped and sent_last_hour[unit] >= config.alerts.max_per_recipient_per_hour:
                for delivery, _a in items:
                    delivery.state = "digest"
                logger.info("unit %s over its hourly cap: %d alert(s) go to the digest", unit, len(items))
                continue
            out.append(_queue(session, config, unit, items, standing, now))
            sent_last_hour[unit] += 1
    return out


def _recent_counts(session, now: datetime) -> dict[str, int]:
    """unit → messages composed for it in the last hour; counted here, not by GROUP BY, which
    SQLite answers by walking every message of the outbox in unit order."""
    return Counter(session.scalars(select(OutboxMessage.unit).where(
        OutboxMessage.created_at >= now - timedelta(hours=1),
        OutboxMessage.kind.in_(("immediate", "opinion")))))


def _sort_out(session, unit: str, items: list) -> tuple[list, dict[int, dict]]:
    """The (delivery, alert) items still worth telling ``unit``, and the standing of those
    whose hit is no longer live (:mod:`crawler.alerts.standing`). A superseded item (the
    unit has an alert for the rewording that replaced it) or a withdrawn one (the rules no
    longer flag its unchanged page) is dropped: its delivery takes that state, never mailed."""
    standing = standings(session, unit, [a for _d, a in items])
    kept = []
    for delivery, alert in items:
        state = standing.get(alert.id, {}).get("state")
        if state == "superseded":
            delivery.state = "superseded"
            logger.info("alert %s to %s: hit %s reworded since, told as hit %s", alert.id, unit, alert.hit_id,
                        standing[alert.id]["latest"])
        elif state == "withdrawn":
            delivery.state = "withdrawn"
            logger.info("alert %s to %s: hit %s withdrawn since (the rules changed, the page did not)",
                        alert.id, unit, alert.hit_id)
        else:
            kept.append((delivery, alert))
    return kept, standing


def _queue(session, config, unit, items: list, standing: dict[int, dict], now) -> int:
    alerts, deliveries = [a for _d, a in items], [d for d, _a in items]
    alerts.sort(key=lambda a: (a.kind != "opinion", a.kind != "hit", -risk_rank(a.risk)))
    kind = "opinion" if alerts[0].kind == "opinion" else ("operator" if alerts[0].kind == "operator" else "immediate")
    ids = "-".join(str(a.id) for a in sorted(alerts, key=lambda a: a.id))
    msg_id = _message_id(config, f"alert-{ids}.{unit}")
    subject = subject_for(alerts, standing)
    groups = [{"title": "", "alerts": [_payload(a, session, config, standing) for a in alerts]}]
    msg = message.build(config, unit, subject=subject, message_id=msg_id, groups=groups, now=now)
    return _add_outbox(session, kind, unit, msg, now, deliveries)


def compose_digests(db: StateDB, config: PatrolConfig, now: datetime, force: bool = False) -> list[int]:
    out = []
    with db.new_session() as session, session.begin():
        state = session.get(AlertState, LAST_DIGEST)
        if state is None and not force:
            # The first digest goes out at the first digest_time after alerts first ran.
            session.add(AlertState(key=LAST_DIGEST, value=now.isoformat()))
            return []
        last = parse_time(state.value) if state else None
        if not force and not digest_due(config.alerts, now, last):
            return []
        rows = session.execute(
            select(Delivery, Alert).join(Alert, Alert.id == Delivery.alert_id)
            .where(Delivery.state == "digest").order_by(Alert.id)
        ).all()
        per_unit: dict[str, list] = defaultdict(list)
        for delivery, alert in rows:
            per_unit[delivery.unit].append((delivery, alert))
        for unit, items in sorted(per_unit.items()):
            outbox_id = _digest(session, config, unit, items, now)
            if outbox_id is not None:
                out.append(outbox_id)
        if state is None:
            state = AlertState(key=LAST_DIGEST, value="")
            session.add(state)
        state.value = now.isoformat()
    return out


def _digest(session, config, unit, items, now) -> int | None:
    """One digest for ``unit``: current findings by institution, highest risk first, then
    those rectified or gone since they were found, apart and marked; None when nothing is left."""
    ids = sorted(a.id for _d, a in items)
    items, standing = _sort_out(session, unit, items)
    if not items:
        return None
    past = {a.id for _d, a in items if standing.get(a.id, {}).get("state") in PAST}
    current = [a for _d, a in items if a.id not in past]
    by_inst: dict[str, list[Alert]] = defaultdict(list)
    for alert in current:
        by_inst[alert.payload.get("institution") or alert.target_id or "—"].append(alert)
    unit_name = config.routing.units[unit].name
    day = local(config.alerts, now).date().isoformat()
    groups = [
        {"title": f"{inst}（{findings(alerts)} 条）", "alerts": [_payload(a, standing=standing) for a in alerts]}
        for inst, alerts in sorted(by_inst.items(), key=lambda kv: -max(risk_rank(a.risk) for a in kv[1]))
    ]
    gone = [a for _d, a in items if a.id in past]
    if gone:
        groups.append({"title": f"已整改或已下线（{findings(gone)} 条，发现后已不在网上，无需处置，留档备查）",
                       "alerts": [_payload(a, standing=standing) for a in gone]})
    subject, intro = _digest_heading(unit_name, day, findings(current), len(by_inst), findings(gone))
    msg_id = _message_id(config, f"digest-{day}-{ids[0]}-{ids[-1]}-{len(ids)}.{unit}")
    msg = message.build(config, unit, subject=subject, message_id=msg_id, groups=groups, now=now,
                        digest=True, intro=intro)
    return _add_outbox(session, "digest", unit, msg, now, [d for d, _a in items])


def _digest_heading(unit_name: str, day: str, current: int, institutions: int, past: int) -> tuple[str, str]:
    """(subject, intro) of a digest: ``current`` findings still online, ``past`` ones no longer."""
    gone = f"；另{past}条已整改或已下线" if past else ""
    if current or not past:
        subject = f"【每日汇总】{unit_name} {day}：{current}条巡查发现，涉及{institutions}家机构{gone}"
    else:
        subject = f"【每日汇总】{unit_name} {day}：{past}条巡查发现均已整改或已下线"
    intro = f"{day} 汇总：{current} 条巡查发现（一个页面违反多项规定计为一条），按机构分组，风险高者在前。"
    if past:
        intro += f"另有 {past} 条在汇总前已整改或已下线，列于末尾，仅供留档。"
    return subject, intro


def _add_outbox(session, kind, unit, msg, now, deliveries) -> int:
    row = OutboxMessage(
        message_id=msg["Message-ID"], kind=kind, unit=unit,
        recipients=[a.addr_spec for a in msg["To"].addresses], subject=str(msg["Subject"]),
        raw=msg.as_bytes(policy=policy.SMTP), status="pending", attempts=0, next_attempt_at=now, created_at=now,
    )
    session.add(row)
    session.flush()
    for delivery in deliveries:
        delivery.state, delivery.outbox_id = "mailed", row.id
    logger.info("outbox %s: %s to %s: %s", row.id, kind, unit, row.subject)
    return row.id


def _payload(alert: Alert, session=None, config: PatrolConfig | None = None, standing: dict | None = None) -> dict:
    payload = {**alert.payload, "kind": alert.kind, "alert_id": alert.id, "standing": (standing or {}).get(alert.id)}
    evidence = payload.get("evidence") or {}
    if session is not None and evidence.get("screenshot") and evidence.get("evidence_id"):
        payload["screenshot_png"] = _screenshot(session, config, evidence["evidence_id"])
    return payload


def _screenshot(session, config: PatrolConfig, evidence_id: int) -> bytes | None:
    """The screenshot PNG of a capture, read back (and verified) from its WARC file."""
    from crawler.evidence.archive import evidence_root
    from crawler.evidence.models import Evidence
    from crawler.evidence.verify import check_capture

    ev = session.get(Evidence, evidence_id)
    if ev is None:
        return None
    problems, loaded = check_capture(evidence_root(config.state_dir), ev)
    if problems:
        logger.warning("evidence %s: %s; screenshot not attached", evidence_id, problems[0].what)
    return loaded.screenshot


def _message_id(config: PatrolConfig, token: str) -> str:
    domain = config.smtp.sender.rpartition("@")[2] or "finpatrol.local"
    digest = hashlib.sha256(f"{config.db_url}|{token}".encode()).hexdigest()[:12]
    return f"<{token}.{digest}@{domain}>"


def findings(alerts: list[Alert]) -> int:
    """Entries a message shows: the hit alerts of one page are one (``message.by_hit``)."""
    return len({("hit", a.hit_id) if a.kind == "hit" else ("alert", a.id) for a in alerts})


def subject_for(alerts: list[Alert], standing: dict[int, dict] | None = None) -> str:
    """The subject of an immediate message; ``alerts[0]`` leads, sorted as :func:`_queue` does.
    ``standing``: alert id → standing of a hit no longer live (:mod:`crawler.alerts.standing`)."""
    alert, p = alerts[0], alerts[0].payload
    others = findings(alerts) - 1
    more = f"（另{others}项）" if others else ""
    if alert.kind == "opinion":
        if p.get("reason") == "first_mass_incident":
            return f"【舆情预警·群体性事件苗头】{p['institution']}{more}"
        return f"【舆情预警】{p['institution']}：{p['window_hours']}小时内风险信号{p['count']}条{more}"
    if alert.kind == "operator":
        return f"【巡查运行异常】{p['subject']}"
    if alert.kind == "site_down":
        return f"【{zh(alert.risk, 'risk')}】网站无法访问（疑似失联）- {p['institution']}{more}"
    if alert.kind == "site_up":
        return f"【网站恢复访问】{p['institution']}（此前连续{p['patrols']}次巡查无法访问）{more}"
    if alert.kind == "withdrawal":
        return f"【撤销通报】{p['category_zh']}（命中 #{p['hit_id']}）- {p['institution']}{more}"
    risk = zh(alert.risk, "risk")
    same_hit = [a.payload for a in alerts if a.kind == "hit" and a.hit_id == alert.hit_id]
    note = "".join(text for text, key in SUBJECT_NOTES if any(payload.get(key) for payload in same_hit))
    state = (standing or {}).get(alert.id, {}).get("state")
    note += {"rectified": "（已整改）", "gone": "（页面已下线）", "taken_down": "（已撤下）"}.get(state, "")
    where = f"（见于{p['found_on']['name']}）" if p.get("found_on") else ""  # not on its own site
    return f"【{risk}】{category_names(same_hit)}{note} - {p['institution']}{where}{more}"


SUBJECT_NOTES = (("（改写后仍违规）", "reworded_from"), ("（整改后复现）", "reopened_at"),
                 ("（规则调整后重新认定）", "withdrawn_before"))
"""What a hit alert's subject adds when one of its categories' payloads has the key."""


def category_names(payloads: list[dict]) -> str:
    """The categories of one page's alert, 、-separated (names such as 资金池/期限错配/期限拆分 hold
    slashes, so "A等3类" read as A's three parts): all of up to three, else two and the count."""
    names = [payload["category_zh"] for payload in payloads]
    return "、".join(names) if len(names) <= 3 else f"{'、'.join(names[:2])}等{len(names)}类"
