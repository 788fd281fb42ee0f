"""Public-opinion early warning: sliding-window counts, own baseline, first mass incident."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest
import yaml
from smtp_fixtures import finding, store_hits, verdict

from crawler.alerts.models import Alert
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.store.db import StateDB

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
    for day in range(1, 8):  # three posts every day: a noisy but steady institution
        store_hits(db, [post(n := n + 1), post(n := n + 1), post(n := n + 1)], when=NOW - timedelta(days=day))
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
