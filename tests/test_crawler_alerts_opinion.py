"""Public-opinion early warning: sliding-window counts, own baseline, first mass incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from hashlib import sha256
from zoneinfo import ZoneInfo

import pytest
import yaml
from smtp_fixtures import finding, store_hits, verdict

from crawler.alerts.models import Alert
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.discovery.attribution import Attributor
from crawler.items import PageItem
from crawler.pipelines.attribute import AttributePipeline
from crawler.reports.data import institution_hits, opinion_posts
from crawler.store.db import StateDB
from crawler.store.pages import save_pages
from crawler.store.runs import finish_run, start_run

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def env(tmp_path):
    document = {
        "state_dir": "state",
        "alerts": {"quiet_hours": None, "rules": [{"categories": ["*"], "action": "ignore"}],
                   "opinion": {"threshold": 6, "min_count": 3, "spike_factor": 3}},
        "targets": [
            {"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"], "business": "p2p",
             "urls": ["http://127.0.0.1:9/x/"]},
            {"id": "forum", "name": "江津生活论坛", "business": "other", "urls": ["http://127.0.0.1:9/f/"]},
        ],
    }
    path = tmp_path / "patrol.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    return config, StateDB(config.db_url)


def post(n: int, word: str = "提现困难", category: str = "collapse_signal", about: str = "鑫盈宝"):
    text = f"{about}{word}，大家怎么办？帖子{n}"
    return ("forum", f"http://127.0.0.1:9/f/t{n}", text, verdict([finding(category, word, text)], "medium"))


def opinion_alerts(db) -> list[Alert]:
    with db.new_session() as session:
        return list(session.query(Alert).filter(Alert.kind == "opinion").order_by(Alert.id))


def test_spike_against_own_baseline_is_attributed_to_the_institution_named(env):
    config, db = env
    for day in range(1, 8):  # a quiet week: about one post every other day
        if day % 2 == 0:
            store_hits(db, [post(100 + day)], when=NOW - timedelta(days=day, hours=2))
    deliver(config, db, now=NOW - timedelta(days=1))
    assert opinion_alerts(db) == []
    store_hits(db, [post(1), post(2)], when=NOW - timedelta(hours=3))
    deliver(config, db, now=NOW - timedelta(hours=3))
    assert opinion_alerts(db) == [], "two posts are below min_count"
    store_hits(db, [post(3)], when=NOW)
    result = deliver(config, db, now=NOW)
    (alert,) = opinion_alerts(db)
    assert alert.target_id == "xyb", "the forum post names 鑫盈宝"
    assert alert.payload["reason"] == "spike" and alert.payload["count"] == 3
    assert alert.payload["baseline_mean"] < 1
    assert result.queued, "opinion alerts go out at once"
    # the same wave does not alert again, a doubled one does
    store_hits(db, [post(4), post(5)], when=NOW + timedelta(hours=1))
    deliver(config, db, now=NOW + timedelta(hours=1))
    assert len(opinion_alerts(db)) == 1
    store_hits(db, [post(6)], when=NOW + timedelta(hours=2))
    deliver(config, db, now=NOW + timedelta(hours=2))
    assert len(opinion_alerts(db)) == 2 and opinion_alerts(db)[-1].payload["count"] == 6


def test_no_spike_when_the_count_is_usual_for_this_institution(env):
    config, db = env
    n = 0
    for day in range(1, 8):  # three posts every day (an hour before each window): a noisy but steady institution
        store_hits(db, [post(n := n + 1), post(n := n + 1), post(n := n + 1)], when=NOW - timedelta(days=day, hours=1))
    deliver(config, db, now=NOW - timedelta(hours=25))
    before = len(opinion_alerts(db))
    store_hits(db, [post(n + 1), post(n + 2), post(n + 3), post(n + 4)], when=NOW)
    deliver(config, db, now=NOW)
    assert len(opinion_alerts(db)) == before, "4 posts against a mean of 3 is no spike, and below threshold 6"


def test_threshold_alerts_even_with_a_high_baseline(env):
    config, db = env
    for day in range(1, 8):
        store_hits(db, [post(100 + day * 10 + i) for i in range(3)], when=NOW - timedelta(days=day))
    deliver(config, db, now=NOW - timedelta(hours=25))
    store_hits(db, [post(i) for i in range(6)], when=NOW)
    deliver(config, db, now=NOW)
    assert opinion_alerts(db)[-1].payload["reason"] == "threshold"


def test_first_mass_incident_alerts_at_once_and_only_once(env):
    config, db = env
    store_hits(db, [post(1, "拉横幅", "mass_incident")], when=NOW)
    deliver(config, db, now=NOW)
    (alert,) = opinion_alerts(db)
    assert alert.payload["reason"] == "first_mass_incident" and alert.target_id == "xyb" and alert.urgent
    store_hits(db, [post(2, "维权群", "mass_incident")], when=NOW + timedelta(hours=1))
    deliver(config, db, now=NOW + timedelta(hours=1))
    assert len(opinion_alerts(db)) == 1


def found_three_ways(n: int) -> list[tuple]:
    """One forum post as the forum's own page, as an opinion source's page and as a listed snippet."""
    _, url, text, v = post(n)
    return [("forum", url, text, v), ("source:board", url, text, v), ("source:board", f"{url}#listed", text, v)]


def test_a_post_found_three_ways_is_one_signal(env):
    config, db = env
    store_hits(db, [page for n in range(1, 6) for page in found_three_ways(n)], when=NOW)
    deliver(config, db, now=NOW)
    (alert,) = opinion_alerts(db)
    assert alert.payload["count"] == 5, "15 hits, 5 posts: the threshold of 6 is not reached"
    assert alert.payload["reason"] == "spike"
    signals = alert.payload["signals"]
    assert sorted(s["url"] for s in signals) == sorted(post(n)[1] for n in range(1, 6))
    assert all(s["found_on"] == ["forum", "source:board"] and len(s["hit_ids"]) == 3 for s in signals), signals
    mails = [message_from_bytes(f.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
             for f in (config.state_dir / "outbox").rglob("*.eml")]
    assert any("（同一帖文见于 江津生活论坛、source:board）" in m for m in mails), "where it was found, by name"


def test_a_post_listed_long_ago_is_not_a_new_signal_when_its_page_is_fetched(env):
    config, db = env
    listed = [("source:board", f"{url}#listed", text, v) for _, url, text, v in map(post, range(1, 4))]
    store_hits(db, listed, when=NOW - timedelta(days=30))
    deliver(config, db, now=NOW - timedelta(days=30))
    before = len(opinion_alerts(db))
    store_hits(db, [post(n) for n in range(1, 4)], when=NOW)  # the same three posts, now as pages
    deliver(config, db, now=NOW)
    assert len(opinion_alerts(db)) == before, "three old posts are no spike"


def test_an_old_post_found_again_is_no_first_mass_incident(env):
    config, db = env
    _, url, text, v = post(1, "维权群", "mass_incident")
    store_hits(db, [("source:board", f"{url}#listed", text, v)], when=NOW - timedelta(days=30))
    deliver(config, db, now=NOW - timedelta(days=30))
    before = [a.payload["reason"] for a in opinion_alerts(db)]
    assert before == ["first_mass_incident"]
    store_hits(db, [post(1, "维权群", "mass_incident")], when=NOW)  # its page, fetched a month later
    deliver(config, db, now=NOW)
    assert [a.payload["reason"] for a in opinion_alerts(db)] == before


# Publish dates and attribution: the posts as a patrol stores them (the store, then the
# attribute pipeline for a source's results), the forum also configured as a target.

FORUM_HEADER = "江津生活论坛\n江津人自己的网上家园\n论坛首页 > 投资理财\n"


def page_item(target_id: str, url: str, text: str, v: dict, when: datetime, **fields) -> PageItem:
    body = text.encode()
    return PageItem(target_id=target_id, url=url, final_url=url.split("#")[0], status=200, headers={}, body=body,
                    encoding="utf-8", fetched_at=when.astimezone(UTC).isoformat(), sha256=sha256(body).hexdigest(),
                    title=text.split("\n")[-1][:30], text=text, text_fingerprint=sha256(body).hexdigest(), verdict=v,
                    **fields)


class Stats:
    def inc_value(self, key, count=1, start=0):
        pass


def patrol(config, db, items: list[PageItem], when: datetime) -> None:
    """One run storing ``items``, then the attribute pipeline over those found through a source."""
    run_id = start_run(db, "opinion", when.astimezone(UTC))
    for item, saved in zip(items, save_pages(db, items, run_id), strict=True):
        item.page_id, item.hit_id = saved.page_id, saved.hit_id
    attribute = AttributePipeline(config, Stats())
    attribute.db, attribute.attributor = db, Attributor(config.targets)
    attribute.hosts = {"source:board": "127.0.0.1:9"}  # the board is on the forum's host
    for item in items:
        attribute.process_item(item)
    finish_run(db, run_id, "finished", {}, {t: {"pages": 1, "failed": 0, "hits": 1, "new_hits": 1, "errors": {}}
                                          for t in {i.target_id for i in items}})


def thread(n: int, when: datetime, posted_at: str | None = None, page_published: str | None = None,
           word: str = "提现困难", category: str = "collapse_signal", text: str = "") -> list[PageItem]:
    """A thread of the forum read through the board (source:board): its listed row and its page."""
    url = f"http://127.0.0.1:9/f/thread-{n}.html"
    text = text or f"鑫盈宝{word}，已经三天没到账了。帖子{n}"
    v = verdict([finding(category, word, text)], "medium")
    listed = dict(origin="source", origin_id="board", kind="forum", list_url="http://127.0.0.1:9/f/board.html",
                  author="渝江散户", posted_at=posted_at)
    return [page_item("source:board", f"{url}#listed", text, v, when, slot_only=True, slot_title=text,
                      published=posted_at[:10] if posted_at else None, **listed),
            page_item("source:board", url, FORUM_HEADER + text, v, when, published=page_published, **listed)]


def mail_texts(config) -> list[str]:
    return [message_from_bytes(f.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
            for f in sorted((config.state_dir / "outbox").rglob("*.eml"))]


def test_posts_published_long_ago_and_first_seen_now_are_no_spike_nor_first_mass_incident(env):
    config, db = env
    # the forum's first patrol: seven threads of 2016 and a 维权 thread, each page dating itself
    old = [page_item("forum", f"http://127.0.0.1:9/f/t{n}", f"鑫盈宝提现困难，帖子{n}", verdict(
        [finding("collapse_signal", "提现困难")], "medium"), NOW, published=f"2016-10-{10 + n}") for n in range(7)]
    old.append(page_item("forum", "http://127.0.0.1:9/f/t9", "鑫盈宝受害人维权群，明天集体报案", verdict(
        [finding("mass_incident", "维权群")], "high"), NOW, published="2016-10-20"))
    patrol(config, db, old, NOW)
    deliver(config, db, now=NOW)
    assert opinion_alerts(db) == [], "eight posts of 2016 seen for the first time are no 24-hour spike"
    # three threads published yesterday and today (a day's slack for time zones) and one with no date
    recent = [page_item("forum", f"http://127.0.0.1:9/f/n{n}", f"鑫盈宝提现困难，新帖{n}", verdict(
        [finding("collapse_signal", "提现困难")], "medium"), NOW + timedelta(hours=1), published=date)
        for n, date in enumerate(["2026-11-26", "2026-11-27", None])]
    patrol(config, db, recent, NOW + timedelta(hours=1))
    deliver(config, db, now=NOW + timedelta(hours=1))
    (alert,) = opinion_alerts(db)
    assert (alert.target_id, alert.payload["reason"], alert.payload["count"]) == ("xyb", "spike", 3)
    assert [s["published"] for s in alert.payload["signals"]] == ["2026-11-26", "2026-11-27", None]
    mail = next(m for m in mail_texts(config) if "风险信号 3 条" in m)
    assert "http://127.0.0.1:9/f/n0（发布于 2026-11-26）" in mail and "http://127.0.0.1:9/f/n2\n" in mail


def test_a_listed_publish_time_makes_an_old_post_no_new_signal(env):
    config, db = env
    items = [item for n in range(6) for item in thread(n, NOW, posted_at=f"2016-10-{12 + n}T20:31:00+08:00")]
    items += thread(9, NOW, posted_at="2016-10-20T21:15:00+08:00", word="维权群", category="mass_incident")
    patrol(config, db, items, NOW)
    deliver(config, db, now=NOW)
    assert opinion_alerts(db) == [], "the board dates each thread in 2016: no spike, no first mass incident"
    fresh = [item for n in range(20, 23) for item in thread(n, NOW, posted_at="2026-11-27T09:30:00+08:00")]
    patrol(config, db, fresh, NOW + timedelta(minutes=5))
    deliver(config, db, now=NOW + timedelta(minutes=5))
    (alert,) = opinion_alerts(db)
    assert alert.payload["count"] == 3 and alert.payload["reason"] == "spike"
    assert any("（发布于 2026-11-27 09:30）" in m for m in mail_texts(config)), "in the alerts' time zone"


def test_a_forum_page_about_an_institution_counts_for_it_not_for_the_forum(env):
    config, db = env
    # the forum patrolled as a target: its board page carries the forum's name in its header
    board = FORUM_HEADER + "鑫盈宝受害人维权群，明天上午集体报案\n鑫盈宝提现困难"
    store_hits(db, [("forum", "http://127.0.0.1:9/f/board.html", board,
                     verdict([finding("mass_incident", "维权群", board)], "high"))], when=NOW)
    deliver(config, db, now=NOW)
    assert [(a.target_id, a.payload["reason"]) for a in opinion_alerts(db)] == [("xyb", "first_mass_incident")], \
        "a forum's own header does not name the forum"
    # a page of the forum about the forum itself still counts for it
    closing = FORUM_HEADER + "江津生活论坛要关了？论坛里的理财群都提现困难"
    store_hits(db, [("forum", "http://127.0.0.1:9/f/notice.html", closing,
                     verdict([finding("mass_incident", "理财群", closing)], "high"))], when=NOW + timedelta(hours=1))
    deliver(config, db, now=NOW + timedelta(hours=1))
    assert [a.target_id for a in opinion_alerts(db)] == ["xyb", "forum"]


def test_the_spike_counts_the_posts_the_dossier_attributes(env):
    config, db = env
    # threads of the forum read through its board, and the same threads on the forum's own patrol
    items = [item for n in range(4) for item in thread(n, NOW)]
    own = [page_item("forum", f"http://127.0.0.1:9/f/thread-{n}.html", FORUM_HEADER + f"鑫盈宝提现困难，帖子{n}",
                     verdict([finding("collapse_signal", "提现困难")], "medium"), NOW) for n in range(4)]
    patrol(config, db, items + own, NOW)
    deliver(config, db, now=NOW)
    assert [a.target_id for a in opinion_alerts(db)] == ["xyb"], "not for the forum whose header they carry"
    (alert,) = opinion_alerts(db)
    dossier = opinion_posts(institution_hits(db, "xyb"))
    assert alert.target_id == "xyb" and alert.payload["count"] == len(dossier) == 4
    assert sorted(s["url"] for s in alert.payload["signals"]) == sorted(p["url"] for p in dossier)


def test_an_institutions_own_notice_counts_for_it_and_a_post_naming_two_equally_for_both(tmp_path):
    document = {
        "state_dir": "state",
        "alerts": {"quiet_hours": None, "rules": [{"categories": ["*"], "action": "ignore"}]},
        "targets": [
            {"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"], "business": "p2p",
             "urls": ["http://127.0.0.1:9/x/"]},
            {"id": "jnh", "name": "重庆金牛汇投资管理有限公司", "aliases": ["金牛汇"], "business": "asset_management",
             "urls": ["http://127.0.0.1:9/j/"]},
            {"id": "bank", "name": "江津农商银行", "business": "other", "urls": ["http://127.0.0.1:9/b/"]},
            {"id": "forum", "name": "江津生活论坛", "business": "other", "urls": ["http://127.0.0.1:9/f/"]},
        ],
    }
    path = tmp_path / "patrol.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    db = StateDB(config.db_url)
    # 鑫盈宝's own notice names its depository bank once: still 鑫盈宝's
    notice = "鑫盈宝关于延期兑付的公告\n鑫盈宝部分标的逾期，鑫盈宝资金存管于江津农商银行，请出借人到鑫盈宝办公室集体登记"
    store_hits(db, [("xyb", "http://127.0.0.1:9/x/notice.html", notice,
                     verdict([finding("mass_incident", "集体登记", notice)], "high"))], when=NOW)
    deliver(config, db, now=NOW)
    assert [a.target_id for a in opinion_alerts(db)] == ["xyb"], "its own site naming it is no reason to drop it"
    # a forum thread naming two platforms as often as each other counts for both
    both = FORUM_HEADER + "金牛汇和鑫盈宝都跑路了，受害人维权群集合"
    store_hits(db, [("forum", "http://127.0.0.1:9/f/t1.html", both,
                     verdict([finding("mass_incident", "维权群", both)], "high"))], when=NOW + timedelta(hours=1))
    deliver(config, db, now=NOW + timedelta(hours=1))
    assert sorted(a.target_id for a in opinion_alerts(db)[1:]) == ["jnh"], "金牛汇's first; 鑫盈宝 had one already"


def test_a_new_reply_in_an_old_thread_is_a_new_signal(env):
    """The thread's publish date (2016) dates its first post, not a 维权 reply added now."""
    config, db = env
    url = "http://127.0.0.1:9/f/t1"
    quiet = "鑫盈宝提现经验分享，帖子1"
    patrol(config, db, [page_item("forum", url, quiet, verdict([], "none"), NOW - timedelta(days=30),
                                  published="2016-10-12")], NOW - timedelta(days=30))
    deliver(config, db, now=NOW - timedelta(days=30))
    reply = quiet + "\n回复：鑫盈宝受害人维权群已建，明天集体报案"
    patrol(config, db, [page_item("forum", url, reply, verdict([finding("mass_incident", "维权群", reply)], "high"),
                                  NOW, published="2016-10-12")], NOW)
    deliver(config, db, now=NOW)
    assert [(a.target_id, a.payload["reason"]) for a in opinion_alerts(db)] == [("xyb", "first_mass_incident")]
