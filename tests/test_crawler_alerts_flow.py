"""Alert flows against a real aiosmtpd server: immediate, digest, routing, dedup, throttle, escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select
from smtp_fixtures import SmtpSink, finding, store_hits, verdict

from classifiers import CATEGORIES
from crawler.alerts.compose import compose
from crawler.alerts.models import Alert, Delivery, OutboxMessage
from crawler.alerts.dispatch import dispatch
from crawler.alerts.evaluate import evaluate
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.store.db import StateDB, as_utc
from crawler.store.models import Hit, Page

CST = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 27, 10, 0, tzinfo=CST)
UNITS = ("cbrc", "finance_office", "pboc", "market_regulator", "police", "opinion", "office", "housing", "operator")
TARGETS = [
    {"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"], "business": "p2p"},
    {"id": "zct", "name": "重庆众筹通股权投资有限公司", "business": "crowdfunding"},
    {"id": "kft", "name": "重庆快付通信息技术有限公司", "business": "payment"},
    {"id": "forum", "name": "江津生活论坛", "business": "other"},
]


@pytest.fixture
def setup(tmp_path, sink):
    """Write a config whose units each have their own mailbox, sending to ``sink``; open its DB."""

    def make(alerts: dict | None = None, port: int | None = None):
        document = {
            "state_dir": "state",
            "alerts": {"quiet_hours": None} | (alerts or {}),
            "routing": {"units": {u: {"name": f"unit {u}", "emails": [f"{u}@duty.test"]} for u in UNITS}},
            "smtp": {"host": "127.0.0.1", "port": port or sink.port, "security": "none",
                     "retry_base": 60, "retry_max": 600},
            "targets": [t | {"urls": [f"http://127.0.0.1:9/{t['id']}/"]} for t in TARGETS],
        }
        path = tmp_path / "patrol.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        config = load_config(path)
        return config, StateDB(config.db_url)

    return make


def ad(target: str, path: str, word: str, category: str = "guaranteed_return", risk: str = "high",
       snippet: str | None = None):
    return (target, f"http://127.0.0.1:9/{target}/{path}", snippet or f"本平台{word}，欢迎投资",
            verdict([finding(category, word, snippet)], risk=risk))


def rcpts(sink) -> list[set[str]]:
    return [set(r) for _f, r, _raw in sink.received]


def test_immediate_alert_reaches_lead_unit_with_legal_basis_and_highlight(setup, sink):
    config, db = setup()
    store_hits(db, [ad("xyb", "a.html", "保本保息")], when=MORNING)
    result = deliver(config, db, now=MORNING)
    assert result.sent and not result.failed
    (msg,) = sink.wait_for(1)
    assert msg["Subject"] == f"【高风险】{CATEGORIES['guaranteed_return'].name_zh} - 重庆鑫盈宝网络科技有限公司"
    assert rcpts(sink) == [{"cbrc@duty.test"}]
    assert msg.is_multipart() and msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert '<mark style="background:#ffe08a">保本保息</mark>' in html
    assert "【保本保息】" in text
    assert "二(一)1" in html and "二(一)1" in text
    assert "http://127.0.0.1:9/xyb/a.html" in text
    assert "机构：重庆鑫盈宝网络科技有限公司（P2P网络借贷，编号 xyb）" in text, "the business named in Chinese"
    assert "风险：高风险" in text and "（P2P网络借贷，编号 xyb）" in html
    # nothing more to send
    assert deliver(config, db, now=MORNING + timedelta(minutes=5)).sent == []
    assert len(sink.received) == 1


def test_a_page_breaking_two_rules_is_shown_once_under_both_categories(setup, sink):
    config, db = setup()
    text = "本平台保本保息，年化收益18%，欢迎投资"
    both = verdict([finding("guaranteed_return", "保本保息", text), finding("high_yield", "年化收益18%", text)])
    store_hits(db, [("xyb", "http://127.0.0.1:9/xyb/a.html", text, both)], when=MORNING)
    deliver(config, db, now=MORNING)
    (msg,) = sink.wait_for(1)
    body = msg.get_body(("plain",)).get_content()
    names = [CATEGORIES[c].name_zh for c in ("guaranteed_return", "high_yield")]
    assert f"* {names[0]} [guaranteed_return]；{names[1]} [high_yield]" in body or \
        f"* {names[1]} [high_yield]；{names[0]} [guaranteed_return]" in body, body
    assert body.count("http://127.0.0.1:9/xyb/a.html") == 1 and body.count("【保本保息】") == 1, "the page once"
    assert msg["Subject"] == f"【高风险】{names[0]}、{names[1]} - 重庆鑫盈宝网络科技有限公司", "two categories, not 另1项"
    html = msg.get_body(("html",)).get_content()
    assert html.count('<mark style="background:#ffe08a">保本保息</mark>') == 1
    bases = "；".join(f"{CATEGORIES[c].name_zh} {CATEGORIES[c].seed_section}" for c in ("guaranteed_return", "high_yield"))
    assert f"依据：江津府办发〔2016〕52号 {bases}" in body, "each category with its own legal basis"


def test_low_risk_goes_to_daily_digest_grouped_by_institution(setup, sink):
    config, db = setup({"digest_time": "08:30"})
    deliver(config, db, now=MORNING - timedelta(hours=1))  # running since after today's digest
    text = "本平台保本保息，年化收益18%"
    two_rules = verdict([finding("guaranteed_return", "保本保息", text), finding("high_yield", "年化收益18%", text)],
                        risk="low")
    store_hits(db, [("xyb", "http://127.0.0.1:9/xyb/a.html", text, two_rules),  # one page, two categories: one entry
                    ad("xyb", "b.html", "稳赚不赔", "guaranteed_return", "low"),
                    ad("forum", "c.html", "日息0.5%", "high_yield", "low")], when=MORNING)
    at_ten = deliver(config, db, now=MORNING)
    assert at_ten.alerts and at_ten.sent == [], "digest material waits for the digest time"
    next_morning = MORNING.replace(hour=8, minute=31) + timedelta(days=1)
    sent = deliver(config, db, now=next_morning).sent
    assert len(sent) == 2  # cbrc (xyb is p2p) and office (forum is other)
    by_unit = {m["X-Finpatrol-Unit"]: m for m in sink.wait_for(2)}
    digest = by_unit["cbrc"]
    assert digest["Subject"].startswith("【每日汇总】unit cbrc 2026-11-28：2条巡查发现，涉及1家机构")
    html = digest.get_body(("html",)).get_content()
    assert "重庆鑫盈宝网络科技有限公司（2 条）" in html and "稳赚不赔" in html
    assert deliver(config, db, now=next_morning + timedelta(hours=1)).sent == [], "one digest a day"


@pytest.mark.parametrize(
    "page, expected",
    [
        (ad("xyb", "1", "保本保息"), {"cbrc"}),
        (ad("zct", "1", "保本保息"), {"finance_office"}),
        (ad("kft", "1", "保本保息"), {"pboc"}),
        (ad("xyb", "1", "银行担保", "false_advertising"), {"cbrc", "market_regulator"}),
        (ad("zct", "1", "原始股认购", "illegal_fundraising", "high"), {"finance_office", "police"}),
        (ad("forum", "1", "跑路", "collapse_signal", "high"), {"office", "opinion"}),
    ],
)
def test_routing_by_business_and_category(setup, sink, page, expected):
    config, db = setup()
    store_hits(db, [page], when=MORNING)
    deliver(config, db, now=MORNING)
    got = set().union(*rcpts(sink))
    assert got == {f"{u}@duty.test" for u in expected}


def test_medium_illegal_fundraising_does_not_go_to_police(setup, sink):
    config, db = setup({"rules": [{"categories": ["*"], "action": "immediate"}]})
    store_hits(db, [ad("zct", "1", "内部认购", "illegal_fundraising", "medium")], when=MORNING)
    deliver(config, db, now=MORNING)
    assert set().union(*rcpts(sink)) == {"finance_office@duty.test"}


def test_same_wording_alerts_once_across_patrols_and_pages_until_it_changes(setup, sink):
    config, db = setup({"renotify_after": "7d"})
    store_hits(db, [ad("xyb", "a.html", "保本保息")], when=MORNING)
    deliver(config, db, now=MORNING)
    store_hits(db, [ad("xyb", "a.html", "保本保息")], when=MORNING + timedelta(hours=2))
    store_hits(db, [ad("xyb", "b.html", "保本保息", snippet="另一页也写着保本保息")], when=MORNING + timedelta(hours=3))
    deliver(config, db, now=MORNING + timedelta(hours=3))
    assert len(sink.received) == 1, "same institution + category + wording"
    store_hits(db, [ad("xyb", "a.html", "100%本息保障")], when=MORNING + timedelta(hours=4))
    deliver(config, db, now=MORNING + timedelta(hours=4))
    assert len(sink.wait_for(2)) == 2, "changed wording alerts again"
    later = MORNING + timedelta(days=8)
    store_hits(db, [ad("xyb", "a.html", "保本保息")], when=later)
    deliver(config, db, now=later)
    assert len(sink.wait_for(3)) == 3, "and so does the same wording after renotify_after"


def test_a_post_found_three_ways_alerts_each_unit_once_with_its_page(setup, sink):
    config, db = setup({"opinion": {"threshold": 99, "first_mass_incident": False}})
    url = "http://127.0.0.1:9/forum/thread-7.html"
    post = lambda target, at, word: (target, at, f"鑫盈宝{word}，大家怎么办", verdict(
        [finding("collapse_signal", word)], risk="high"))
    found = [post("source:board", url + "#listed", "提现困难"),  # the board lists it first
             post("forum", url, "提现困难，平台跑路"), post("source:board", url, "平台跑路")]
    store_hits(db, found, when=MORNING)
    deliver(config, db, now=MORNING)
    messages = sink.wait_for(2)
    assert sorted(map(sorted, rcpts(sink))) == [["office@duty.test"], ["opinion@duty.test"]], "one mail per unit"
    assert all(url in m.get_body(("plain",)).get_content() for m in messages)
    assert not any("#listed" in m.get_body(("plain",)).get_content() for m in messages), "the page, not its listing"
    store_hits(db, [post("forum", url, "暂停兑付")], when=MORNING + timedelta(hours=1))
    deliver(config, db, now=MORNING + timedelta(hours=1))
    assert len(sink.wait_for(4)) == 4, "new wording on the same page alerts again"


def alerted_units(db) -> list[tuple[int, str, list[str]]]:
    """(hit id, action, units) of every hit alert, in order."""
    with db.new_session() as session:
        return [(a.hit_id, a.action, sorted(session.scalars(select(Delivery.unit).where(Delivery.alert_id == a.id))))
                for a in session.scalars(select(Alert).where(Alert.kind == "hit").order_by(Alert.id))]


def test_a_riskier_record_of_a_post_alerts_though_its_listing_went_to_the_digest(setup, sink):
    config, db = setup({"opinion": {"threshold": 99, "first_mass_incident": False}})
    url = "http://127.0.0.1:9/forum/thread-9.html"
    store_hits(db, [("forum", url + "#listed", "鑫盈宝保本保息", verdict([finding("guaranteed_return", "保本保息")],
                                                                    risk="low"))], when=MORNING)
    deliver(config, db, now=MORNING)
    store_hits(db, [("forum", url, "鑫盈宝保本保息，稳赚不赔", verdict([finding("guaranteed_return", "稳赚不赔")],
                                                                risk="high"))], when=MORNING + timedelta(hours=1))
    deliver(config, db, now=MORNING + timedelta(hours=1))
    assert [action for _, action, _ in alerted_units(db)] == ["digest", "immediate"]
    assert len(sink.wait_for(1)) == 1, "the high-risk page goes out now, not in tomorrow's digest"


def test_a_unit_already_told_of_a_post_is_left_out_of_its_next_record(setup, sink):
    config, db = setup({"opinion": {"threshold": 99, "first_mass_incident": False}})
    url = "http://127.0.0.1:9/forum/thread-9.html"
    claim = lambda target, at: (target, at, "鑫盈宝银行担保，国资背景", verdict([finding("false_advertising", "银行担保")]))
    store_hits(db, [claim("forum", url + "#listed")], when=MORNING)
    deliver(config, db, now=MORNING)
    store_hits(db, [claim("xyb", url)], when=MORNING + timedelta(hours=1))  # the same post, on the platform's site
    deliver(config, db, now=MORNING + timedelta(hours=1))
    units = [u for _, _, u in alerted_units(db)]
    assert units == [["market_regulator", "office"], ["cbrc"]], "market_regulator was told already"


def told_of(db) -> list[tuple[str, list[str]]]:
    """(URL of the hit, units) of every hit alert, in order."""
    return [(url, units) for url, (_id, _action, units) in zip(
        [a.payload["hit"]["url"] for a in _hit_alert_rows(db)], alerted_units(db), strict=True)]


def _hit_alert_rows(db) -> list[Alert]:
    with db.new_session() as session:
        return list(session.scalars(select(Alert).where(Alert.kind == "hit").order_by(Alert.id)))


SENT_AT = MORNING.astimezone(UTC)
POST_URL = "http://127.0.0.1:9/forum/thread-11.html"
LISTED = ("source:board", POST_URL + "#listed", "鑫盈宝提现困难",
          verdict([finding("collapse_signal", "提现困难")]))  # the board's list of threads
ON_FORUM = ("forum", POST_URL, "鑫盈宝提现困难，平台跑路",
            verdict([finding("collapse_signal", "提现困难，平台跑路")]))
ON_BOARD = ("source:board", POST_URL, "鑫盈宝平台跑路", verdict([finding("collapse_signal", "平台跑路")]))
POST_UNITS = ["office", "opinion"]  # forum and board are 'other' businesses; collapse_signal adds opinion


def test_after_renotify_after_a_post_still_online_is_told_again_once_per_unit_with_its_page(setup, sink):
    config, db = setup({"renotify_after": "7d", "opinion": {"threshold": 99, "first_mass_incident": False}})
    store_hits(db, [LISTED], when=SENT_AT)  # the board lists the thread before any page of it is fetched
    deliver(config, db, now=SENT_AT)
    sink.wait_for(2)
    assert told_of(db) == [(POST_URL + "#listed", POST_UNITS)]
    week = SENT_AT + timedelta(days=7, hours=1)  # past renotify_after; the post is still up, found all three ways
    store_hits(db, [LISTED, ON_FORUM, ON_BOARD], when=week)
    deliver(config, db, now=week)
    messages = sink.wait_for(4)[2:]
    assert told_of(db)[1:] == [(POST_URL, POST_UNITS)], "told again, once, with the page rather than its listing"
    assert sorted(m["X-Finpatrol-Unit"] for m in messages) == POST_UNITS, "one message per unit"
    assert all(POST_URL in m.get_body(("plain",)).get_content() for m in messages)
    assert not any("#listed" in m.get_body(("plain",)).get_content() for m in messages)
    fortnight = week + timedelta(days=7, hours=1)  # and again a window later
    store_hits(db, [LISTED, ON_FORUM, ON_BOARD], when=fortnight)
    deliver(config, db, now=fortnight)
    assert sorted(m["X-Finpatrol-Unit"] for m in sink.wait_for(6)[4:]) == POST_UNITS
    assert told_of(db)[2:] == [(POST_URL, POST_UNITS)]
    deliver(config, db, now=fortnight + timedelta(hours=1))
    assert len(sink.received) == 6


def test_within_renotify_after_later_records_of_a_told_post_do_not_tell_its_units_again(setup, sink):
    config, db = setup({"renotify_after": "7d", "opinion": {"threshold": 99, "first_mass_incident": False}})
    store_hits(db, [ON_FORUM], when=SENT_AT)
    deliver(config, db, now=SENT_AT)
    sink.wait_for(2)
    for later, records in [(timedelta(hours=2), [LISTED]),  # the board's listing, a patrol later
                           (timedelta(days=3), [ON_BOARD]),  # the board's copy of the page
                           (timedelta(days=7, minutes=-1), [LISTED, ON_BOARD])]:  # the window's last minute
        store_hits(db, records, when=SENT_AT + later)
        deliver(config, db, now=SENT_AT + later)
        assert told_of(db) == [(POST_URL, POST_UNITS)], f"told again {later} later"
    assert len(sink.received) == 2


def test_a_record_left_out_because_its_post_was_told_does_not_hold_back_the_next_telling(setup, sink):
    """Only the board is patrolled after the forum page alerted: its listing, left out while the
    page's alert stands, tells the units again as soon as renotify_after has passed since then."""
    config, db = setup({"renotify_after": "7d", "opinion": {"threshold": 99, "first_mass_incident": False}})
    store_hits(db, [ON_FORUM], when=SENT_AT)
    deliver(config, db, now=SENT_AT)
    sink.wait_for(2)
    store_hits(db, [LISTED], when=SENT_AT + timedelta(days=6))
    deliver(config, db, now=SENT_AT + timedelta(days=6))
    assert told_of(db) == [(POST_URL, POST_UNITS)], "the units were told six days ago"
    week = SENT_AT + timedelta(days=7, hours=1)
    store_hits(db, [LISTED], when=week)
    deliver(config, db, now=week)
    assert told_of(db)[1:] == [(POST_URL + "#listed", POST_UNITS)], "a week after the last telling"
    assert sorted(m["X-Finpatrol-Unit"] for m in sink.wait_for(4)[2:]) == POST_UNITS


def test_renotify_after_counts_from_the_alert_whatever_zone_now_is_given_in(setup, sink):
    """A ``now`` in Asia/Shanghai is stored as UTC: the window is not 8 hours longer than configured."""
    config, db = setup({"renotify_after": "7d"})
    for later in (timedelta(0), timedelta(days=7, hours=-1), timedelta(days=7, hours=1)):
        store_hits(db, [ad("xyb", "a.html", "保本保息")], when=MORNING + later)
        deliver(config, db, now=MORNING + later)
    assert len(sink.wait_for(1)) == 2, "once at first, not an hour before the week is up, again an hour after"
    with db.new_session() as session:
        created = [as_utc(m.created_at) for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert created == [MORNING.astimezone(UTC), (MORNING + timedelta(days=7, hours=1)).astimezone(UTC)], \
        "the outbox keeps the instant, not Beijing's wall clock read as UTC"


THREAD = "http://127.0.0.1:9/forum/thread-21.html"
OLD_WORDS, NEW_WORDS = ["保本保息", "稳赚不赔", "刚性兑付"], ["本金安全有保障", "投资零风险"]


def claim(target: str, url: str, words: list[str]) -> tuple:
    """A record of a thread promising returns in ``words`` (guaranteed_return, high risk)."""
    return (target, url, "鑫盈宝" + "，".join(words), verdict([finding("guaranteed_return", w) for w in words]))


def hit_ids(db, url: str) -> list[int]:
    with db.new_session() as session:
        return list(session.scalars(select(Hit.id).where(Hit.url == url).order_by(Hit.id)))


def test_a_claim_reworded_on_its_page_alerts_again_naming_the_earlier_hit(setup, sink):
    """The board listed the thread first, so its page was left out as told; then the page
    changed its words. The unit was told of the old words only: the rewording is news."""
    config, db = setup({"renotify_after": "7d", "opinion": {"threshold": 99, "first_mass_incident": False}})
    store_hits(db, [claim("source:board", THREAD + "#listed", OLD_WORDS)], when=SENT_AT)
    deliver(config, db, now=SENT_AT)
    store_hits(db, [claim("forum", THREAD, OLD_WORDS)], when=SENT_AT + timedelta(hours=2))
    deliver(config, db, now=SENT_AT + timedelta(hours=2))
    assert told_of(db) == [(THREAD + "#listed", ["office"])], "the page is the post already told"
    reworded = SENT_AT + timedelta(days=1)  # well inside renotify_after
    store_hits(db, [claim("forum", THREAD, NEW_WORDS)], when=reworded)
    assert deliver(config, db, now=reworded).alerts, "a rewording alerts"
    assert told_of(db)[1:] == [(THREAD, ["office"])]
    earlier, _now = hit_ids(db, THREAD)
    msg = sink.wait_for(2)[1]
    assert msg["Subject"].endswith("（改写后仍违规） - 江津生活论坛")
    said = f"改写后仍违规：同一页面此前的命中 #{earlier}（首次发现 2026-11-27 12:00，原表述：保本保息、稳赚不赔、刚性兑付）"
    assert said in msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert f"同一页面此前的命中 #{earlier}" in html and "原表述：保本保息、稳赚不赔、刚性兑付" in html


def test_a_rewording_found_several_ways_is_told_once_and_a_second_rewording_again(setup, sink):
    """The forum's page and the board's copy of it are two records of one post: the board
    finding the same rewording a patrol later tells nobody again, nor does the listing."""
    config, db = setup({"renotify_after": "7d", "opinion": {"threshold": 99, "first_mass_incident": False}})
    store_hits(db, [claim("forum", THREAD, OLD_WORDS)], when=SENT_AT)
    deliver(config, db, now=SENT_AT)
    store_hits(db, [claim("source:board", THREAD, OLD_WORDS)], when=SENT_AT + timedelta(hours=1))
    deliver(config, db, now=SENT_AT + timedelta(hours=1))
    day = SENT_AT + timedelta(days=1)
    for at, record in [(day, claim("forum", THREAD, NEW_WORDS)),
                       (day + timedelta(hours=1), claim("source:board", THREAD, NEW_WORDS)),
                       (day + timedelta(hours=2), claim("source:board", THREAD + "#listed", NEW_WORDS))]:
        store_hits(db, [record], when=at)
        deliver(config, db, now=at)
    assert told_of(db) == [(THREAD, ["office"]), (THREAD, ["office"])], "the old words, then the rewording once"
    assert [bool(a.payload.get("reworded_from")) for a in _hit_alert_rows(db)] == [False, True]
    again = SENT_AT + timedelta(days=2)
    store_hits(db, [claim("forum", THREAD, ["100%本息保障"])], when=again)
    deliver(config, db, now=again)
    assert told_of(db)[2:] == [(THREAD, ["office"])], "a second rewording within the window is news too"
    assert _hit_alert_rows(db)[2].payload["reworded_from"]["words"] == NEW_WORDS
    assert len(sink.wait_for(3)) == 3


def test_a_rewording_that_keeps_a_categorys_words_does_not_repeat_that_category(setup, sink):
    config, db = setup({"renotify_after": "7d"})
    url = "http://127.0.0.1:9/xyb/security.html"
    page = lambda promise: ("xyb", url, f"银行担保，{promise}", verdict(
        [finding("false_advertising", "银行担保"), finding("guaranteed_return", promise)]))
    store_hits(db, [page("保本保息")], when=MORNING)
    deliver(config, db, now=MORNING)
    store_hits(db, [page("100%本息保障")], when=MORNING + timedelta(hours=1))
    deliver(config, db, now=MORNING + timedelta(hours=1))
    assert [(a.category, bool(a.payload.get("reworded_from"))) for a in _hit_alert_rows(db)] == [
        ("false_advertising", False), ("guaranteed_return", False), ("guaranteed_return", True)]
    msg = sink.wait_for(3)[2]  # after the first page's mails to cbrc and market_regulator
    assert msg["Subject"] == f"【高风险】{CATEGORIES['guaranteed_return'].name_zh}（改写后仍违规） - 重庆鑫盈宝网络科技有限公司"


NEXT_DIGEST = MORNING.replace(hour=8, minute=30) + timedelta(days=1)


def take_down(db, url: str, when: datetime) -> None:
    """What the store records when a patrol finds ``url`` answering 404: the page gone, its hit removed."""
    with db.new_session() as session, session.begin():
        page = session.scalar(select(Page).where(Page.url == url))
        hit = session.get(Hit, page.current_hit_id)
        page.gone_at = hit.removed_at = when.astimezone(UTC)


def test_a_digest_sets_apart_what_was_rectified_or_taken_down_before_it_went_out(setup, sink):
    config, db = setup({"digest_time": "08:30"})
    deliver(config, db, now=MORNING - timedelta(hours=1))
    store_hits(db, [ad("zct", f"project-100{n}.html", word, "equity_crowdfunding", "medium")
                    for n, word in ((1, "保底回购"), (2, "固定分红"), (3, "溢价回购"))], when=MORNING)
    deliver(config, db, now=MORNING)
    later = MORNING + timedelta(hours=2)
    store_hits(db, [("zct", "http://127.0.0.1:9/zct/project-1002.html", "本项目介绍", verdict([], risk="none"))],
               when=later)  # the claim deleted from its page
    take_down(db, "http://127.0.0.1:9/zct/project-1003.html", later)
    deliver(config, db, now=NEXT_DIGEST)
    (digest,) = sink.wait_for(1)
    assert digest["Subject"] == "【每日汇总】unit finance_office 2026-11-28：1条巡查发现，涉及1家机构；另2条已整改或已下线"
    body = digest.get_body(("plain",)).get_content()
    current, _, past = body.partition("== 已整改或已下线（2 条")
    assert "project-1001.html" in current and "现状" not in current
    assert "project-1002.html" in past and "project-1003.html" in past, "kept on record, apart from current findings"
    assert "现状：已整改：页面已删去以下违规表述（2026-11-27 12:00 巡查发现）" in past
    assert "现状：已下线：页面已删除（2026-11-27 12:00 巡查发现），以下是删除前的内容" in past
    html = digest.get_body(("html",)).get_content()
    assert html.count("现状：") == 2 and "已下线</b>" in html and "已整改</b>" in html


def test_a_digest_tells_a_reworded_claim_once_with_its_new_words(setup, sink):
    """a.html is reworded (its new words alert, naming the old hit: the old entry goes);
    b.html takes the words c.html alerted with already (no new alert: the old entry stays, marked)."""
    config, db = setup({"digest_time": "08:30"})
    deliver(config, db, now=MORNING - timedelta(hours=1))
    store_hits(db, [ad("xyb", "a.html", "保本保息", risk="low"), ad("xyb", "b.html", "零风险", risk="low"),
                    ad("xyb", "c.html", "刚性兑付", risk="low")], when=MORNING)
    deliver(config, db, now=MORNING)
    store_hits(db, [ad("xyb", "a.html", "稳赚不赔", risk="low"), ad("xyb", "b.html", "刚性兑付", risk="low")],
               when=MORNING + timedelta(hours=1))
    deliver(config, db, now=MORNING + timedelta(hours=1))
    deliver(config, db, now=NEXT_DIGEST)
    (digest,) = sink.wait_for(1)
    (old_a, new_a), (old_b, new_b) = hit_ids(db, "http://127.0.0.1:9/xyb/a.html"), hit_ids(db, "http://127.0.0.1:9/xyb/b.html")
    body = digest.get_body(("plain",)).get_content()
    assert "3条巡查发现" in digest["Subject"], "a.html, b.html and c.html: each page once"
    assert f"命中 #{old_a}；" not in body and f"命中 #{new_a}；" in body
    assert f"改写后仍违规：同一页面此前的命中 #{old_a}" in body
    assert f"命中 #{old_b}；" in body and f"现状：表述已改写，仍违规：现为命中 #{new_b}，以下是改写前的表述" in body
    with db.new_session() as session:
        states = dict(session.execute(select(Alert.hit_id, Delivery.state).join(Delivery)).all())
    assert states[old_a] == "superseded" and states[old_b] == "mailed"


def test_a_claim_reworded_before_alerts_ran_is_told_once_as_the_rewording(setup, sink):
    """Two patrols before the alerts run (as ``finpatrol demo`` does): the old words are not mailed as current."""
    config, db = setup()
    store_hits(db, [ad("xyb", "a.html", "保本保息")], when=MORNING)
    store_hits(db, [ad("xyb", "a.html", "稳赚不赔")], when=MORNING + timedelta(hours=1))
    deliver(config, db, now=MORNING + timedelta(hours=1))
    (msg,) = sink.wait_for(1)
    old, new = hit_ids(db, "http://127.0.0.1:9/xyb/a.html")
    body = msg.get_body(("plain",)).get_content()
    assert f"命中 #{new}；" in body and f"改写后仍违规：同一页面此前的命中 #{old}" in body
    assert deliver(config, db, now=MORNING + timedelta(hours=2)).sent == [] and len(sink.received) == 1


def test_hourly_cap_rolls_excess_into_next_digest(setup, sink):
    config, db = setup({"max_per_recipient_per_hour": 2})
    deliver(config, db, now=MORNING - timedelta(hours=1))
    words = ["保本保息", "稳赚不赔", "零风险", "刚性兑付", "本息全额保障"]
    store_hits(db, [ad("xyb", f"{i}.html", w) for i, w in enumerate(words)], when=MORNING)
    deliver(config, db, now=MORNING)
    assert len(sink.wait_for(2)) == 2
    deliver(config, db, now=MORNING + timedelta(minutes=30))
    assert len(sink.received) == 2, "still within the hour"
    deliver(config, db, now=MORNING.replace(hour=8, minute=30) + timedelta(days=1))
    digest = sink.wait_for(3)[2]
    assert digest["Subject"].startswith("【每日汇总】unit cbrc")
    body = digest.get_body(("plain",)).get_content()
    assert sum(f"【{w}】" in body for w in words) == 3, body


def test_quiet_hours_hold_non_urgent_but_not_urgent_mail(setup, sink):
    config, db = setup({
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "rules": [{"categories": ["*"], "action": "immediate"}],
    })
    night = datetime(2026, 11, 27, 23, 0, tzinfo=CST)
    store_hits(db, [ad("xyb", "a.html", "年化收益18%", "high_yield", "medium"),
                    ad("kft", "b.html", "保本保息", "guaranteed_return", "high")], when=night)
    deliver(config, db, now=night)
    (urgent,) = sink.wait_for(1)
    assert "快付通" in urgent["Subject"]
    deliver(config, db, now=night + timedelta(hours=8, minutes=1))
    assert "鑫盈宝" in sink.wait_for(2)[1]["Subject"]


def test_crawled_html_and_script_arrive_escaped(setup, sink):
    config, db = setup()
    evil = '保本保息<script>alert("x")</script><img src=x onerror=alert(1)>'
    page = ("xyb", "javascript:alert(1)", evil, verdict([finding("guaranteed_return", "保本保息", evil)]))
    store_hits(db, [page], when=MORNING)
    deliver(config, db, now=MORNING)
    html = sink.wait_for(1)[0].get_body(("html",)).get_content()
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript:' not in html and 'href="#"' in html


def test_smtp_down_for_hours_then_up_delivers_every_alert_exactly_once(setup, sink):
    port = sink.port
    sink.stop()
    config, db = setup(port=port)
    store_hits(db, [ad("xyb", "a.html", "保本保息"), ad("zct", "b.html", "刚性兑付")], when=MORNING)
    first = deliver(config, db, now=MORNING)
    assert first.sent == [] and len(first.failed) == 2
    for hours in (1, 2, 3):
        assert deliver(config, db, now=MORNING + timedelta(hours=hours)).sent == []
    with SmtpSink(port=port) as up:
        result = deliver(config, db, now=MORNING + timedelta(hours=4))
        assert len(result.sent) == 2
        assert deliver(config, db, now=MORNING + timedelta(hours=5)).sent == []
        messages = up.wait_for(2)
        assert sorted(m["X-Finpatrol-Unit"] for m in messages) == ["cbrc", "finance_office"]
        assert len(up.received) == 2


def test_crash_between_send_and_mark_resends_the_same_message(setup, sink):
    """A stale claim is retried with identical bytes and Message-ID, so clients see one message."""
    config, db = setup()
    store_hits(db, [ad("xyb", "a.html", "保本保息")], when=MORNING)
    evaluate(db, config, MORNING)
    (row_id,) = compose(db, config, MORNING)
    dispatch(db, config, MORNING)
    # the crash: the server took it, but neither the status nor delivered_to were written
    db.execute("UPDATE outbox SET status='sending', claimed_at=:t, delivered_to=NULL WHERE id=:i",
               t=(MORNING - timedelta(hours=1)).replace(tzinfo=None), i=row_id)
    assert dispatch(db, config, MORNING).sent == [row_id]
    first, second = sink.wait_for(2)
    assert first["Message-ID"] == second["Message-ID"]
    assert sink.received[0][2] == sink.received[1][2]
    assert dispatch(db, config, MORNING + timedelta(hours=1)).sent == []


def test_screenshot_is_inline_in_the_html_part(setup):
    from crawler.alerts.message import build

    config, _db = setup()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    payload = {
        "kind": "hit", "institution": "重庆鑫盈宝网络科技有限公司", "target": "xyb", "business": "p2p",
        "category": "guaranteed_return", "category_zh": "承诺保本保息", "seed_section": "二(一)1",
        "hit": {"id": 7, "url": "http://127.0.0.1:9/x", "final_url": "http://127.0.0.1:9/x", "title": "t",
                "risk": "high", "score": 0.9, "labels": ["guaranteed_return"], "context": "",
                "findings": [finding("guaranteed_return", "保本保息")], "yields": [],
                "first_seen": MORNING.isoformat(), "fetched_at": MORNING.isoformat()},
        "evidence": {"sha256": "ab" * 32, "warc_file": "2026/11/a.warc.gz", "warc_record_id": "<urn:uuid:1>"},
        "screenshot_png": png,
    }
    msg = build(config, "cbrc", subject="s", message_id="<m@test>", groups=[{"title": "", "alerts": [payload]}],
                now=MORNING)
    html_part = msg.get_payload()[1]
    assert html_part.get_content_type() == "multipart/related"
    image = [p for p in html_part.iter_parts() if p.get_content_type() == "image/png"][0]
    assert image.get_content() == png
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in msg.get_body(("html",)).get_content()
    assert "WARC 2026/11/a.warc.gz" in msg.get_body(("plain",)).get_content()


def test_a_digest_drops_a_claim_the_new_rules_withdrew_and_keeps_one_they_judged_again(setup, sink):
    """Between the patrol and the digest the office changes its rules; the pages do not change."""
    config, db = setup()
    yields = "鑫盈宝月月盈，年化收益18%，期限灵活"
    pool = "鑫盈宝活期宝，资金池运作，随存随取，年化收益16%"
    yield_url, pool_url = "http://127.0.0.1:9/xyb/yield.html", "http://127.0.0.1:9/xyb/pool.html"
    store_hits(db, [("xyb", yield_url, yields, verdict([finding("high_yield", "年化收益18%", yields)], "medium")),
                    ("xyb", pool_url, pool, verdict([finding("fund_pool", "资金池", pool),
                                                     finding("high_yield", "年化收益16%", pool)], "medium"))],
               when=MORNING, verdict_by="rules-1")
    assert deliver(config, db, now=MORNING).sent == [], "medium risk waits for the digest"

    judged_again = verdict([finding("fund_pool", "资金池", pool), finding("fund_pool", "随存随取", pool)], "medium")
    store_hits(db, [("xyb", yield_url, yields, verdict([])), ("xyb", pool_url, pool, judged_again)],
               when=MORNING + timedelta(hours=1), verdict_by="rules-2")
    old_pool, new_pool = hit_ids(db, pool_url)
    deliver(config, db, now=MORNING.replace(hour=8, minute=30) + timedelta(days=1))
    (digest,) = sink.wait_for(1)
    body = digest.get_body(("plain",)).get_content()
    assert yield_url not in body, "withdrawn by the new rules: not told"
    assert body.count(pool_url) == 1 and f"命中 #{old_pool}；" in body, "judged again, same words: told once"
    assert "现状" not in body and "改写" not in body, body
    assert f"{CATEGORIES['high_yield'].name_zh} [high_yield]" not in body, "no longer told as a high yield"
    with db.new_session() as session:
        states = {(hit, category): state for hit, category, state in session.execute(
            select(Alert.hit_id, Alert.category, Delivery.state).join(Delivery))}
    (yield_hit,) = hit_ids(db, yield_url)
    assert states == {(yield_hit, "high_yield"): "withdrawn", (old_pool, "fund_pool"): "mailed",
                      (old_pool, "high_yield"): "withdrawn"}, "the new pool hit alerts no one"


def test_a_unit_mailed_about_a_claim_the_new_rules_withdraw_is_told_once(setup, sink):
    """The notice goes out at once, in quiet hours as the urgent alert did, also while the withdrawing
    patrol is still running and evaluated twice."""
    from crawler.store.runs import finish_run

    config, db = setup({"quiet_hours": {"start": "22:00", "end": "07:00"}})
    night = datetime(2026, 11, 27, 23, 0, tzinfo=CST)
    text = "鑫盈宝新手标，保本保息，欢迎投资"
    url = "http://127.0.0.1:9/xyb/new.html"
    store_hits(db, [("xyb", url, text, verdict([finding("guaranteed_return", "保本保息", text)]))],
               when=night, verdict_by="rules-1")
    deliver(config, db, now=night)
    (first,) = sink.wait_for(1)
    (hit_id,) = hit_ids(db, url)

    later = night + timedelta(hours=1)
    run = store_hits(db, [("xyb", url, text, verdict([]))], when=later, finish=False, verdict_by="rules-2")
    evaluate(db, config, later)
    evaluate(db, config, later + timedelta(minutes=1))
    finish_run(db, run, "finished", {}, {"xyb": {"pages": 1, "failed": 0, "hits": 0, "new_hits": 0, "errors": {}}})
    deliver(config, db, now=later + timedelta(minutes=2))
    notice = sink.wait_for(2)[1]
    assert notice["Subject"] == f"【撤销通报】{CATEGORIES['guaranteed_return'].name_zh}（命中 #{hit_id}）- 重庆鑫盈宝网络科技有限公司"
    assert rcpts(sink) == [{"cbrc@duty.test"}, {"cbrc@duty.test"}] and first["Subject"].startswith("【高风险】")
    body = notice.get_body(("plain",)).get_content()
    assert f"原通报：命中 #{hit_id}" in body and "页面表述未变" in body and "不再认定为" in body, body
    assert body.count("* 撤销通报：") == 1, body
    assert deliver(config, db, now=later + timedelta(hours=1)).sent == [] and len(sink.received) == 2


def test_a_claim_judged_again_then_withdrawn_is_withdrawn_for_the_unit_told_of_it_first(setup, sink):
    config, db = setup()
    text = "鑫盈宝新手标，保本保息，稳赚不赔"
    url = "http://127.0.0.1:9/xyb/new.html"
    store_hits(db, [("xyb", url, text, verdict([finding("guaranteed_return", "保本保息", text)]))],
               when=MORNING, verdict_by="rules-1")
    deliver(config, db, now=MORNING)
    sink.wait_for(1)
    again = verdict([finding("guaranteed_return", "保本保息", text), finding("guaranteed_return", "稳赚不赔", text)])
    store_hits(db, [("xyb", url, text, again)], when=MORNING + timedelta(hours=1), verdict_by="rules-2")
    assert deliver(config, db, now=MORNING + timedelta(hours=1)).sent == [], "judged again, same words: not news"
    store_hits(db, [("xyb", url, text, verdict([]))], when=MORNING + timedelta(hours=2), verdict_by="rules-3")
    deliver(config, db, now=MORNING + timedelta(hours=2))
    first, judged = hit_ids(db, url)
    notice = sink.wait_for(2)[1]
    body = notice.get_body(("plain",)).get_content()
    assert f"原通报：命中 #{first}，2026-11-27 10:00 发出" in body and f"#{judged}" not in body, body


def test_a_claim_the_rules_withdrew_and_a_later_change_restores_is_told_again(setup, sink):
    """The unit was told to take no action; when the office takes the rule change back, the
    claim is a violation again and the unit must hear so, not wait out ``renotify_after``."""
    config, db = setup({"renotify_after": "7d"})
    text = "鑫盈宝新手标，保本保息，欢迎投资"
    url = "http://127.0.0.1:9/xyb/new.html"
    guaranteed = verdict([finding("guaranteed_return", "保本保息", text)])
    store_hits(db, [("xyb", url, text, guaranteed)], when=MORNING, verdict_by="rules-1")
    deliver(config, db, now=MORNING)
    store_hits(db, [("xyb", url, text, verdict([]))], when=MORNING + timedelta(hours=1), verdict_by="rules-2")
    deliver(config, db, now=MORNING + timedelta(hours=1))
    first, notice = sink.wait_for(2)
    assert notice["Subject"].startswith("【撤销通报】"), notice["Subject"]

    store_hits(db, [("xyb", url, text, guaranteed)], when=MORNING + timedelta(hours=2), verdict_by="rules-1")
    deliver(config, db, now=MORNING + timedelta(hours=2))
    again = sink.wait_for(3)[2]
    (hit_id,) = hit_ids(db, url)
    assert again["Subject"] == first["Subject"].replace(" - ", "（规则调整后重新认定） - "), again["Subject"]
    body = again.get_body(("plain",)).get_content()
    assert f"命中 #{hit_id}" in body and "曾因巡查规则调整撤销通报" in body and "再次认定为违规" in body, body
    assert "再次认定为违规" not in first.get_body(("plain",)).get_content()
    assert "再次认定为违规" in again.get_body(("html",)).get_content()
    assert rcpts(sink) == [{"cbrc@duty.test"}] * 3
    store_hits(db, [("xyb", url, text, guaranteed)], when=MORNING + timedelta(hours=3), verdict_by="rules-1")
    assert deliver(config, db, now=MORNING + timedelta(hours=3)).sent == [], "told again once, then deduplicated"


def test_a_digest_files_a_forum_post_about_an_institution_under_it_and_says_where_it_was_seen(setup, sink):
    """A low-risk post on the forum that names 鑫盈宝 goes to 鑫盈宝's lead unit in the same group as
    鑫盈宝's own page, saying where it was seen; the forum's unit hears only of the post naming no one."""
    from crawler.discovery.models import HitAttribution
    from crawler.store.models import Base

    config, db = setup({"digest_time": "08:30"})
    Base.metadata.create_all(db.engine, tables=[HitAttribution.__table__])
    deliver(config, db, now=MORNING - timedelta(hours=1))  # running since after today's digest
    store_hits(db, [ad("xyb", "a.html", "稳赚不赔", "guaranteed_return", "low"),
                    ad("forum", "t-1.html", "年化收益18%", "high_yield", "low", snippet="鑫盈宝新手标年化收益18%"),
                    ad("forum", "t-2.html", "日息0.5%", "high_yield", "low")], when=MORNING)
    about_xyb = "http://127.0.0.1:9/forum/t-1.html"
    with db.new_session() as session, session.begin():
        hit = session.scalar(select(Hit).where(Hit.url == about_xyb))
        session.add(HitAttribution(hit_id=hit.id, page_id=hit.page_id, target_id="xyb", reason="name",
                                   detail="鑫盈宝×1", origin="site", origin_id="forum", at=MORNING))
    assert deliver(config, db, now=MORNING).sent == []
    deliver(config, db, now=MORNING.replace(hour=8, minute=31) + timedelta(days=1))
    by_unit = {m["X-Finpatrol-Unit"]: m for m in sink.wait_for(2)}
    assert set(by_unit) == {"cbrc", "office"}, set(by_unit)
    digest = by_unit["cbrc"]
    assert digest["Subject"].startswith("【每日汇总】unit cbrc 2026-11-28：2条巡查发现，涉及1家机构"), digest["Subject"]
    body = digest.get_body(("plain",)).get_content()
    assert about_xyb in body and "见于：江津生活论坛（编号 forum），按名称提及归属：鑫盈宝×1" in body, body
    assert "t-2.html" not in body
    html = digest.get_body(("html",)).get_content()
    assert "重庆鑫盈宝网络科技有限公司（2 条）" in html and "见于 <b>江津生活论坛</b>" in html, html
    office = by_unit["office"].get_body(("plain",)).get_content()
    assert "t-2.html" in office and about_xyb not in office, office


def test_a_claim_back_after_it_was_rectified_is_told_again_at_once_as_such(setup, sink):
    """整改后复现: the unit saw the claim go; its return within renotify_after is news, told once."""
    config, db = setup({"renotify_after": "7d"})
    url = "http://127.0.0.1:9/xyb/new.html"
    claim, removed = "鑫盈宝新手标，保本保息，欢迎投资", "鑫盈宝新手标，欢迎投资"
    guaranteed = verdict([finding("guaranteed_return", "保本保息", claim)])
    store_hits(db, [("xyb", url, claim, guaranteed)], when=MORNING)
    deliver(config, db, now=MORNING)
    (first,) = sink.wait_for(1)
    store_hits(db, [("xyb", url, removed, verdict([]))], when=MORNING + timedelta(hours=1))
    assert deliver(config, db, now=MORNING + timedelta(hours=1)).sent == [], "a rectification is not mailed at once"

    store_hits(db, [("xyb", url, claim, guaranteed)], when=MORNING + timedelta(hours=2))
    deliver(config, db, now=MORNING + timedelta(hours=2))
    again = sink.wait_for(2)[1]
    (hit_id,) = hit_ids(db, url)
    assert again["Subject"] == first["Subject"].replace(" - ", "（整改后复现） - "), again["Subject"]
    body = again.get_body(("plain",)).get_content()
    assert f"命中 #{hit_id}" in body and "整改后复现：2026-11-27 12:00" in body, body
    assert "整改后复现" not in first.get_body(("plain",)).get_content()
    assert rcpts(sink) == [{"cbrc@duty.test"}] * 2
    store_hits(db, [("xyb", url, claim, guaranteed)], when=MORNING + timedelta(hours=3))
    assert deliver(config, db, now=MORNING + timedelta(hours=3)).sent == [], "told of the return once"


def test_a_subject_separates_category_names_that_hold_slashes():
    from crawler.alerts.compose import category_names

    names = [{"category_zh": CATEGORIES[c].name_zh} for c in ("fund_pool", "guaranteed_return", "high_yield",
                                                                "false_advertising")]
    assert category_names(names[:3]) == "资金池/期限错配/期限拆分、承诺保本保息/刚性兑付、显失合理的超高回报"
    assert category_names(names) == "资金池/期限错配/期限拆分、承诺保本保息/刚性兑付等4类"


def test_a_collapse_notice_taken_down_before_its_alert_went_out_is_no_rectification(setup, sink):
    """Held by quiet hours, the 暂停提现 notice is deleted before morning: the unit still hears of
    it, as a current finding marked 已撤下, never as 已整改 needing no action."""
    config, db = setup({"quiet_hours": {"start": "22:00", "end": "07:00"}})
    night, url = datetime(2026, 11, 27, 23, 0, tzinfo=CST), "http://127.0.0.1:9/xyb/notice.html"
    text = "鑫盈宝公告：因系统升级，暂停提现，恢复时间另行通知"
    store_hits(db, [("xyb", url, text, verdict([finding("collapse_signal", "暂停提现", text)], risk="medium"))],
               when=night)
    assert deliver(config, db, now=night).sent == [], "medium risk waits out the quiet hours"
    store_hits(db, [("xyb", url, "鑫盈宝公告：系统升级完成", verdict([]))], when=night + timedelta(hours=2))
    deliver(config, db, now=night + timedelta(hours=8, minutes=30))
    told = {m["X-Finpatrol-Unit"]: m for m in sink.wait_for(3)}
    msg = told["cbrc"]
    assert msg["Subject"].endswith("（已撤下） - 重庆鑫盈宝网络科技有限公司"), msg["Subject"]
    body = msg.get_body(("plain",)).get_content()
    assert "现状：已撤下：以下风险信息已从网上删去（2026-11-28 01:00 巡查发现），撤下不代表风险消除" in body, body
    assert "已整改" not in body and "已撤下</b>" in msg.get_body(("html",)).get_content()
