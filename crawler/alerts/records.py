"""Writing alerts: dedup marks, alert rows and their per-unit deliveries.

Callers pass an open session so an alert, its deliveries and the dedup mark
that suppresses its repeats commit together or not at all.
Setting: ``alerts.renotify_after``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from crawler.alerts.config import risk_rank
from crawler.alerts.models import Alert, AlertMark, Delivery
from crawler.store.db import as_utc
from crawler.store.models import Hit

logger = logging.getLogger(__name__)


def text_fingerprint(category: str, findings: list[dict]) -> str:
    """SHA-256 over the category and the normalised words that matched it (live findings only).

    The same wording on another page of the same institution, or on the same page in
    the next patrol, has the same fingerprint; changed wording has a new one.
    """
    words = sorted(
        {
            unicodedata.normalize("NFKC", f.get("text", "")).strip().lower()
            for f in findings
            if f.get("category") == category and not f.get("negated")
        }
    )
    blob = json.dumps([category, words], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def get_mark(session, target_id: str, category: str, fingerprint: str) -> AlertMark | None:
    return session.scalar(
        select(AlertMark).where(
            AlertMark.target_id == target_id,
            AlertMark.category == category,
            AlertMark.fingerprint == fingerprint,
        )
    )


def mark_holds(session, target_id: str, category: str, fingerprint: str, since: datetime) -> bool:
    """True when the same key alerted since ``since`` (now less ``renotify_after``, or later:
    when the claim came back after it was rectified, a telling before that told of its first time)."""
    mark = get_mark(session, target_id, category, fingerprint)
    return mark is not None and as_utc(mark.last_alerted) > since


def claim_mark(
    session, target_id: str, category: str, fingerprint: str, now: datetime, renotify_after: float
) -> bool:
    """True (and the mark set to ``now``) unless the same key alerted within ``renotify_after``."""
    mark = get_mark(session, target_id, category, fingerprint)
    if mark is not None and now - as_utc(mark.last_alerted) < timedelta(seconds=renotify_after):
        return False
    if mark is None:
        mark = AlertMark(target_id=target_id, category=category, fingerprint=fingerprint, count=0)
        session.add(mark)
    mark.last_alerted = now
    session.flush()
    return True


def hold_mark(session, target_id: str, category: str, fingerprint: str, at: datetime) -> None:
    """Set the mark of a key to ``at`` (when its words were told), unless it was set later: its
    ``renotify_after`` runs from that telling. ``at`` is earlier than now when they were told under
    another key (see :func:`units_told_of_page`), as it would have had the alert been filed under this key."""
    mark = get_mark(session, target_id, category, fingerprint)
    if mark is None:
        mark = AlertMark(target_id=target_id, category=category, fingerprint=fingerprint, count=0)
        session.add(mark)
    elif as_utc(mark.last_alerted) >= as_utc(at):
        return
    mark.last_alerted = at
    session.flush()


def add_alert(
    session,
    *,
    kind: str,
    target_id: str | None,
    hit_id: int | None,
    category: str,
    risk: str,
    action: str,
    urgent: bool,
    fingerprint: str,
    payload: dict,
    units: list[str],
    now: datetime,
) -> Alert:
    alert = Alert(
        kind=kind, target_id=target_id, hit_id=hit_id, category=category, risk=risk,
        action=action, urgent=urgent, fingerprint=fingerprint, payload=payload, created_at=now,
    )
    session.add(alert)
    session.flush()
    state = "pending" if action == "immediate" else "digest"
    session.add_all(Delivery(alert_id=alert.id, unit=unit, state=state) for unit in units)
    logger.info("alert %s: %s %s %s → %s (%s)", alert.id, kind, target_id, category, ",".join(units), action)
    return alert


ACTION_RANK = {"digest": 1, "immediate": 2}


def _level(action: str, risk: str) -> int:
    """How loudly a unit was told, kept in a post mark's ``count``: action rank × 10 + risk rank."""
    return ACTION_RANK[action] * 10 + risk_rank(risk)


def _as_loud(told: int, level: int) -> bool:
    """True when a unit told at ``told`` (a :func:`_level`) was told at least as urgently and of as high a risk."""
    return told // 10 >= level // 10 and told % 10 >= level % 10


REWORDED = "r"
"""Prefix of a post mark's ``fingerprint`` (``r`` + page id) recording that the page told a rewording."""


def units_told_of_post(session, post: str, category: str, page_id: int, units: list[str], action: str,
                       risk: str, since: datetime, reworded_at: datetime | None = None) -> set[str]:
    """The ``units`` another record of this post (another target's page of it, its listed
    snippet) already alerted about ``category`` since ``since``, at this action and risk or above.

    One mark per (post, unit, category, page): a page with new wording is the same
    record and alerts again; a listed snippet queued for the digest does not stand
    for its page's urgent alert.

    ``reworded_at``: this record replaced its earlier claim with new words, found then.
    A unit told of the post before that was told of the old words, so the rewording is
    news to it; what stands for it is another record telling it since ``reworded_at``,
    or another record telling it a rewording (the same rewording found another way).
    """
    keys = {_post_key(post, unit): unit for unit in units}
    own = [str(page_id), f"{REWORDED}{page_id}"]
    marks = session.scalars(select(AlertMark).where(
        AlertMark.target_id.in_(list(keys)), AlertMark.category == category, AlertMark.fingerprint.not_in(own),
    ))
    level = _level(action, risk)

    def stands(mark: AlertMark) -> bool:
        at = as_utc(mark.last_alerted)
        if reworded_at is not None and not mark.fingerprint.startswith(REWORDED) and at < as_utc(reworded_at):
            return False
        return at >= since and _as_loud(mark.count, level)

    return {keys[m.target_id] for m in marks if stands(m)}


def mark_post_told(session, post: str, category: str, page_id: int, units: list[str], action: str, risk: str,
                   now: datetime, reworded: bool = False) -> None:
    """Record that this record of ``post`` alerted ``units`` (see :func:`units_told_of_post`);
    ``reworded``: of a rewording of its earlier claim."""
    level = _level(action, risk)
    fingerprints = [str(page_id)] + ([f"{REWORDED}{page_id}"] if reworded else [])
    for unit in units:
        key = _post_key(post, unit)
        for fingerprint in fingerprints:
            mark = get_mark(session, key, category, fingerprint)
            if mark is None:
                mark = AlertMark(target_id=key, category=category, fingerprint=fingerprint, count=0)
                session.add(mark)
            mark.last_alerted, mark.count = now, level
    session.flush()


NEVER_MAILED = ("superseded", "withdrawn", "recovered")
"""Delivery states of a unit that was never told (:class:`crawler.alerts.models.Delivery`)."""


def units_told_of_page(session, page_id: int, category: str, fingerprint: str, units: list[str], action: str,
                       risk: str, since: datetime) -> dict[str, datetime]:
    """The ``units`` a hit alert of this page already told of these words (``fingerprint``) in
    ``category`` since ``since``, at this action and risk or above → when it was last created.

    Whatever target the alert was filed under: the dedup mark (:func:`claim_mark`) is keyed by
    the institution a hit concerns, and that key changes when the hit's attribution does: a
    state DB of a finpatrol that filed a forum's post about 鑫盈宝 under the forum (before
    hits alerted as the institution they concern), a post attributed to another institution
    since. The old key's mark does not hold the new one back, and :func:`units_told_of_post`
    leaves the page's own telling to the mark; so without this a unit told of the page's
    unchanged words would be told again. Under an unchanged key this holds back nothing the
    mark does not (the mark was set when the alert was made). A unit whose delivery was never
    mailed (``superseded``, ``withdrawn``) was not told, nor was one told since that the alert
    is withdrawn (:func:`untell`).
    """
    level = _level(action, risk)
    rows = session.execute(
        select(Alert.id, Delivery.unit, Alert.created_at, Alert.action, Alert.risk)
        .join(Alert, Alert.id == Delivery.alert_id).join(Hit, Hit.id == Alert.hit_id)
        .where(Hit.page_id == page_id, Alert.kind == "hit", Alert.category == category,
               Alert.fingerprint == fingerprint, Delivery.unit.in_(units), Delivery.state.not_in(NEVER_MAILED))).all()
    withdrawn = set(session.scalars(select(Alert.fingerprint).where(
        Alert.kind == "withdrawal", Alert.fingerprint.in_({withdrawal_key(row.id) for row in rows}))))
    told: dict[str, datetime] = {}
    for alert_id, unit, created_at, told_action, told_risk in rows:
        at, was = as_utc(created_at), _level(told_action, told_risk)
        if at >= since and _as_loud(was, level) and withdrawal_key(alert_id) not in withdrawn:
            told[unit] = max(at, told.get(unit, at))
    return told


def withdrawal_key(alert_id: int) -> str:
    """The ``fingerprint`` of the withdrawal notice of hit alert ``alert_id`` (one per alert)."""
    return f"withdrawal:{alert_id}"


def untell(session, alert: Alert, page_id: int, post: str, units: list[str]) -> None:
    """Forget that ``units`` were told of ``alert``, as they are told it is withdrawn: when the
    rules find the claim again (the office takes its rule change back), that is news to them,
    not a repeat to hold back until ``renotify_after``. Lifts the alert's dedup mark and the
    marks this page set for the post (:func:`mark_post_told`); :func:`units_told_of_page`
    skips an alert with a withdrawal notice."""
    session.execute(delete(AlertMark).where(
        AlertMark.target_id == alert.target_id, AlertMark.category == alert.category,
        AlertMark.fingerprint == alert.fingerprint))
    session.execute(delete(AlertMark).where(
        AlertMark.target_id.in_([_post_key(post, unit) for unit in units]), AlertMark.category == alert.category,
        AlertMark.fingerprint.in_([str(page_id), f"{REWORDED}{page_id}"])))


def _post_key(post: str, unit: str) -> str:
    """A mark's ``target_id`` for (post, unit): ``post:`` and 59 hex digits of SHA-256."""
    return "post:" + hashlib.sha256(f"{post}\n{unit}".encode("utf-8", "surrogatepass")).hexdigest()[:59]
