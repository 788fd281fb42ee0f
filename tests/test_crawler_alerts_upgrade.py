"""Upgrading a state DB whose alerts were filed under the target a hit was found on.

Until 018bde5 a hit alerted as the target it was found on: a forum's post about 鑫盈宝
went to the forum's units (``other``: office) and its dedup mark was keyed by the forum,
though the attribute pipeline had already stored that it concerns 鑫盈宝. Now it alerts
as 鑫盈宝's, keyed by 鑫盈宝. Patrolling such a state DB again with the unchanged pages
must not tell a unit again what it was told (the old key's mark does not hold the new
key back, and the per-post marks leave a page's own repeats to the mark); a unit the
routing adds now (鑫盈宝's lead unit cbrc) is told once. New wording and new posts still
alert as before.

The state as the old code left it is written by ``evaluate_as_30e1f76``, that version's
``_hit_alerts`` (routing and mark by the found-on target), with the records functions it
called; then the current ``deliver`` patrols on. Mail goes to a real aiosmtpd server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sqlalchemy import select
from smtp_fixtures import finding, store_hits, verdict

from crawler.alerts.evaluate import Concern, hit_payload, institution
from crawler.alerts.models import Alert, AlertMark, AlertRun, Delivery, ensure_schema
from crawler.alerts.records import (add_alert, claim_mark, mark_post_told, text_fingerprint, units_told_of_page,
                                    units_told_of_post)
from crawler.alerts.routing import units_for_hit
from crawler.alerts.rules import decide, is_urgent
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.discovery.models import HitAttribution
from crawler.items import post_url
from crawler.store.db import StateDB
from crawler.store.models import Base, Hit

UNITS = ("cbrc", "finance_office", "pboc", "market_regulator", "police", "opinion", "office", "housing", "operator")
TARGETS = [
    {"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"], "business": "p2p"},
    {"id": "kft", "name": "重庆快付通信息技术有限公司", "aliases": ["快付通"], "business": "payment"},
    {"id": "forum", "name": "江津生活论坛", "business": "other", "kind": "forum"},
]
BEFORE = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # the old finpatrol's last patrol
AFTER = BEFORE + timedelta(days=1)  # the upgraded one's first, within renotify_after (7 days)
FORUM = "http://127.0.0.1:9/forum/"
BOARD = "http://127.0.0.1:9/fenlei/"  # a classifieds channel's results
RUN_DOWN = "鑫盈宝提现困难，平台跑路"


def post(target: str, url: str, text: str, category: str, words: list[str]) -> tuple:
    return (target, url, text, verdict([finding(category, w, text) for w in words]))


COLLAPSE = post("forum", FORUM + "thread-1.html", RUN_DOWN, "collapse_signal", ["提现困难", "平台跑路"])
PROMISE = post("forum", FORUM + "thread-2.html", "鑫盈宝新手标承诺保本保息", "guaranteed_return", ["保本保息"])
ECHO = post("forum", FORUM + "thread-3.html", "楼上说得对，" + RUN_DOWN, "collapse_signal", ["提现困难", "平台跑路"])
AGENT = post("channel:fenlei", BOARD + "info-1.html", "快付通POS机代理，一清机秒到", "payment_violation", ["一清机"])
AGENT_AGAIN = post("channel:fenlei", BOARD + "info-2.html", "快付通代理招募，一清机", "payment_violation", ["一清机"])
ABOUT = {COLLAPSE[1]: "xyb", PROMISE[1]: "xyb", ECHO[1]: "xyb", AGENT[1]: "kft", AGENT_AGAIN[1]: "kft"}
PAGES = [COLLAPSE, PROMISE, ECHO, AGENT, AGENT_AGAIN]


@pytest.fixture
def setup(tmp_path, sink):
    document = {
        "state_dir": "state",
        "alerts": {"quiet_hours": None, "opinion": {"threshold": 99, "first_mass_incident": False}},
        "routing": {"units": {u: {"name": f"unit {u}", "emails": [f"{u}@duty.test"]} for u in UNITS}},
        "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
        "targets": [t | {"urls": [f"http://127.0.0.1:9/{t['id']}/"]} for t in TARGETS],
    }
    path = tmp_path / "patrol.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    db = StateDB(config.db_url)
    Base.metadata.create_all(db.engine, tables=[HitAttribution.__table__])
    ensure_schema(db)
    yield config, db
    db.close()


def attribute(db, at: datetime, about: dict[str, str] = ABOUT) -> None:
    """The attribute pipeline's rows: each post and ad (URL →) concerns the institution it names."""
    with db.new_session() as session, session.begin():
        for hit in session.scalars(select(Hit).where(Hit.url.in_(list(about)))):
            session.merge(HitAttribution(hit_id=hit.id, page_id=hit.page_id, target_id=about[hit.url], reason="name",
                                         detail="", origin="site", origin_id=hit.target_id, at=at))


def evaluate_as_30e1f76(db, config, run_id: int, now: datetime) -> None:
    """What finpatrol 30e1f76's ``_hit_alerts`` wrote for a run (its rewording branch aside): every
    hit routed by the business of the target it was found on, its alert and its dedup mark
    (``claim_mark``) keyed by that target, the per-post marks as now."""
    alerts = config.alerts
    since = now - timedelta(seconds=alerts.renotify_after)
    with db.new_session() as session, session.begin():
        hits = session.scalars(select(Hit).where(Hit.last_run_id == run_id).order_by(Hit.id)).all()
        for hit in sorted(hits, key=lambda h: (post_url(h.url) != h.url, h.id)):
            name, business = institution(session, config, hit.target_id)
            post = post_url(hit.url)
            for category in hit.labels:
                action = decide(alerts, hit.target_id, category, hit.risk)
                fingerprint = text_fingerprint(category, hit.findings)
                units = units_for_hit(config.routing, business, category, hit.risk)
                told = units_told_of_post(session, post, category, hit.page_id, units, action, hit.risk, since)
                units = [unit for unit in units if unit not in told]
                if not units or not claim_mark(session, hit.target_id, category, fingerprint, now,
                                               alerts.renotify_after):
                    continue
                mark_post_told(session, post, category, hit.page_id, units, action, hit.risk, now)
                add_alert(session, kind="hit", target_id=hit.target_id, hit_id=hit.id, category=category,
                          risk=hit.risk, action=action, urgent=is_urgent(alerts, hit.risk), fingerprint=fingerprint,
                          payload=hit_payload(session, hit, category, Concern(hit.target_id, name, business)),
                          units=units, now=now)
        session.add(AlertRun(run_id=run_id, evaluated_at=now))


def told(db, since: datetime = BEFORE, until: datetime | None = None) -> dict[tuple[str, str], list[str]]:
    """(URL, category) → units of every hit alert created from ``since`` (and before ``until``)."""
    out: dict[tuple[str, str], list[str]] = {}
    with db.new_session() as session:
        for alert in session.scalars(select(Alert).where(Alert.kind == "hit").order_by(Alert.id)):
            at = alert.created_at.replace(tzinfo=UTC)
            if at >= since and (until is None or at < until):
                units = session.scalars(select(Delivery.unit).where(Delivery.alert_id == alert.id))
                out.setdefault((alert.payload["hit"]["url"], alert.category), []).extend(sorted(units))
    return out


def mailed(sink, start: int, end: int | None = None) -> list[tuple[str, str]]:
    """(unit, URL of the post it tells) of each message received from the ``start``-th on (to ``end``), sorted."""
    urls = [p[1] for p in PAGES]
    return sorted((m["X-Finpatrol-Unit"], next(u for u in urls if u in m.get_body(("plain",)).get_content()))
                  for m in sink.messages[start:end])


@pytest.fixture
def before_upgrade(setup, sink):
    """A state DB as 30e1f76 left it after a patrol of the forum and the channel, its mail sent."""
    config, db = setup
    run = store_hits(db, PAGES, when=BEFORE)
    attribute(db, BEFORE)  # stored since 776fce8 (forum posts) and before (channel results): only alerts ignored it
    evaluate_as_30e1f76(db, config, run, BEFORE)
    deliver(config, db, now=BEFORE)
    return config, db, len(sink.wait_for(5))


@pytest.fixture
def upgraded(before_upgrade):
    """Then the first patrol of the same unchanged pages by the current code, its mail sent."""
    config, db, before = before_upgrade
    store_hits(db, PAGES, when=AFTER)
    attribute(db, AFTER)
    deliver(config, db, now=AFTER)
    return config, db, before


def test_the_state_is_as_the_old_code_left_it(before_upgrade, sink):
    """The premise: filed and keyed under the forum and the channel, routed by their business;
    the echo and the second ad held back by the same words' mark on the forum and the channel."""
    config, db, before = before_upgrade
    assert told(db) == {
        (COLLAPSE[1], "collapse_signal"): ["office", "opinion"],
        (PROMISE[1], "guaranteed_return"): ["office"],
        (AGENT[1], "payment_violation"): ["office", "pboc"],
    }
    with db.new_session() as session:
        filed = set(session.scalars(select(Alert.target_id)))
        keys = {m.target_id for m in session.scalars(select(AlertMark)) if not m.target_id.startswith("post:")}
    assert filed == keys == {"forum", "channel:fenlei"}
    assert mailed(sink, 0) == sorted([("office", COLLAPSE[1]), ("opinion", COLLAPSE[1]),
                                               ("office", PROMISE[1]), ("office", AGENT[1]), ("pboc", AGENT[1])])


def test_an_upgrade_tells_no_unit_again_and_a_newly_routed_unit_once(upgraded, sink):
    config, db, before = upgraded
    new = told(db, since=AFTER)
    assert new == {(COLLAPSE[1], "collapse_signal"): ["cbrc"], (PROMISE[1], "guaranteed_return"): ["cbrc"]}, \
        "office and opinion were told of the forum's posts, pboc of the ad: only 鑫盈宝's lead unit is new"
    assert mailed(sink, before) == [("cbrc", COLLAPSE[1]), ("cbrc", PROMISE[1])]
    with db.new_session() as session:
        filed = session.scalars(select(Alert.target_id).where(Alert.created_at >= AFTER.replace(tzinfo=None))).all()
    assert set(filed) == {"xyb"}, "filed under the institution the post concerns"


def test_a_repeat_of_the_same_words_stays_held_back_under_the_new_key(upgraded, sink):
    """The echo (鑫盈宝's words again, on another post of the forum) and the second ad (快付通's
    words again: its units were all told, so no alert claimed 快付通's key) stay held back,
    as they were by the found-on target's mark; the next patrols tell nobody anything until
    ``renotify_after`` has passed since the units were told."""
    config, db, before = upgraded
    assert (ECHO[1], "collapse_signal") not in told(db, since=AFTER)
    assert (AGENT_AGAIN[1], "payment_violation") not in told(db, since=AFTER)
    for hours in (2, 30):
        later = AFTER + timedelta(hours=hours)
        store_hits(db, PAGES, when=later)
        deliver(config, db, now=later)
        assert told(db, since=AFTER + timedelta(hours=1)) == {}, f"{hours} hours later"
    assert len(sink.received) == before + 2
    renotify = BEFORE + timedelta(days=7, hours=1)  # since pboc was told of the ad, not since the upgrade
    store_hits(db, PAGES, when=renotify)
    deliver(config, db, now=renotify)
    assert told(db, since=renotify) == {(AGENT[1], "payment_violation"): ["pboc"]}, \
        "the ad told again as it would have been, once; 鑫盈宝's posts a week after cbrc was told of them"


def test_new_words_and_new_posts_still_alert_every_unit_after_an_upgrade(upgraded, sink):
    config, db, before = upgraded
    later = AFTER + timedelta(hours=2)
    reworded = post("forum", COLLAPSE[1], "鑫盈宝暂停兑付，老板失联", "collapse_signal", ["暂停兑付", "老板失联"])
    fresh = post("forum", FORUM + "thread-4.html", "鑫盈宝逾期了，平台跑路", "collapse_signal", ["逾期", "平台跑路"])
    ad = post("channel:fenlei", BOARD + "info-3.html", "快付通代理，跳码机包过", "payment_violation", ["跳码"])
    store_hits(db, [reworded, fresh, ad], when=later)
    attribute(db, later, ABOUT | {fresh[1]: "xyb", ad[1]: "kft"})
    deliver(config, db, now=later)
    assert told(db, since=later) == {
        (COLLAPSE[1], "collapse_signal"): ["cbrc", "office", "opinion"],  # a rewording is news to all
        (fresh[1], "collapse_signal"): ["cbrc", "office", "opinion"],
        (ad[1], "payment_violation"): ["pboc"],
    }


def test_units_told_of_a_page_are_those_told_its_words_since_at_least_as_loudly(before_upgrade):
    config, db, _ = before_upgrade
    with db.new_session() as session:
        hit = session.scalar(select(Hit).where(Hit.url == COLLAPSE[1]))
        fingerprint = text_fingerprint("collapse_signal", hit.findings)
        week = timedelta(days=7)

        def ask(**given) -> set[str]:
            asked = {"page_id": hit.page_id, "category": "collapse_signal", "fingerprint": fingerprint,
                     "units": ["cbrc", "office", "opinion"], "action": "immediate", "risk": "high",
                     "since": AFTER - week} | given
            return set(units_told_of_page(session, **asked))

        assert ask() == {"office", "opinion"}, "whatever target the alert was filed under (the forum)"
        assert units_told_of_page(session, hit.page_id, "collapse_signal", fingerprint, ["office"], "immediate",
                                  "high", AFTER - week) == {"office": BEFORE}, "when it was told"
        assert ask(since=BEFORE + timedelta(seconds=1)) == set(), "not since renotify_after began"
        assert ask(fingerprint=text_fingerprint("collapse_signal", [finding("collapse_signal", "暂停兑付")])) == set()
        assert ask(category="mass_incident") == set()
        assert ask(units=["office"]) == {"office"}
        assert ask(action="digest", risk="medium") == {"office", "opinion"}, "told more loudly counts"
        promise = session.scalar(select(Hit).where(Hit.url == PROMISE[1]))
        assert ask(page_id=promise.page_id) == set()
    with db.new_session() as session, session.begin():
        first = session.scalar(select(Alert).where(Alert.hit_id == hit.id))
        session.get(Delivery, (first.id, "office")).state = "withdrawn"
    with db.new_session() as session:
        still = units_told_of_page(session, hit.page_id, "collapse_signal", fingerprint, ["office", "opinion"],
                                   "immediate", "high", BEFORE)
        assert set(still) == {"opinion"}, "a delivery never mailed told nobody"


def test_a_unit_told_more_quietly_is_not_told_for_a_louder_alert(before_upgrade):
    """Told of a page's words in the digest at medium risk, a unit still gets the urgent alert of them."""
    config, db, _ = before_upgrade
    with db.new_session() as session, session.begin():
        hit = session.scalar(select(Hit).where(Hit.url == COLLAPSE[1]))
        alert = session.scalar(select(Alert).where(Alert.hit_id == hit.id))
        alert.action, alert.risk = "digest", "medium"
        fingerprint = alert.fingerprint
    with db.new_session() as session:

        def told_quietly(action: str, risk: str) -> set[str]:
            return set(units_told_of_page(session, hit.page_id, "collapse_signal", fingerprint, ["office", "opinion"],
                                          action, risk, BEFORE))

        assert told_quietly("digest", "medium") == {"office", "opinion"}
        assert told_quietly("immediate", "medium") == set()
        assert told_quietly("digest", "high") == set()
