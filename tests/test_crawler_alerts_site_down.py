"""A registered platform whose site stops answering alerts its lead unit (失联), once per outage,
and the units told are told once when it answers again (网站恢复访问).

The first test patrols a real site on 127.0.0.1 with the real CLI, stops the server, patrols
again, and starts it again on the same port; mail goes to a real aiosmtpd server. The others
write patrol outcomes as a patrol records them (``start_run``/``finish_run``) to walk through
thresholds, outages and alerts still queued in quiet hours when the site comes back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml
from smtp_fixtures import finding, store_hits, verdict
from sqlalchemy import select

from conftest import cli
from crawler.alerts.models import Alert, Delivery
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.demo.server import SiteServer, routes
from crawler.store.db import StateDB
from crawler.store.runs import finish_run, start_run

UNITS = ("cbrc", "finance_office", "pboc", "market_regulator", "police", "opinion", "office", "housing", "operator")
XYB = "重庆鑫盈宝网络科技有限公司"
HOME = "<html><head><title>鑫盈宝</title></head><body><p>鑫盈宝新手标，承诺保本保息，欢迎投资。</p></body></html>"


def write_config(tmp_path, url: str, smtp_port: int, site_down: dict | None = None, quiet_hours: dict | None = None):
    path = tmp_path / "patrol.yaml"
    path.write_text(yaml.safe_dump({
        "state_dir": "state", "allow_private_networks": True, "download_timeout": 3,
        "alerts": {"quiet_hours": quiet_hours, "site_down": site_down or {"after": 0, "min_patrols": 2}},
        "routing": {"units": {u: {"name": f"unit {u}", "emails": [f"{u}@duty.test"]} for u in UNITS}},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        "targets": [{"id": "xyb", "name": XYB, "aliases": ["鑫盈宝"], "business": "p2p", "urls": [url]}],
    }, allow_unicode=True), encoding="utf-8")
    return path


def test_a_platform_whose_site_stops_answering_alerts_its_lead_unit_once_and_once_when_it_is_back(tmp_path, sink):
    with SiteServer(routes({"/": HOME})) as site:
        url, port = site.url("/"), site.port
        config = write_config(tmp_path, url, sink.port)
        assert cli("patrol", "--config", str(config)).returncode == 0
    loaded = load_config(config)
    db = StateDB(loaded.db_url)
    try:
        deliver(loaded, db)
        (hit_alert,) = sink.wait_for(1)
        assert hit_alert["Subject"].startswith("【高风险】承诺保本保息")

        assert cli("patrol", "--config", str(config)).returncode == 1, "every target failed"
        assert deliver(loaded, db).sent == [], "one failed patrol is not yet an outage (min_patrols: 2)"
        assert cli("patrol", "--config", str(config)).returncode == 1
        deliver(loaded, db)
        told = {m["X-Finpatrol-Unit"]: m for m in sink.wait_for(4)[1:]}
        assert set(told) == {"cbrc", "opinion", "office"}, "the P2P lead unit, and those of collapse signals"
        down = told["cbrc"]
        assert down["Subject"] == f"【高风险】网站无法访问（疑似失联）- {XYB}", down["Subject"]
        body = down.get_body(("plain",)).get_content()
        assert f"网址：{url}" in body and "此后连续 2 次巡查无法访问" in body and "无法访问×" in body, body
        assert "未整改命中：高风险 1 条" in body and "平台风险事件 [collapse_signal]" in body, body
        assert "连续 2 次巡查无法访问" in down.get_body(("html",)).get_content()

        assert cli("patrol", "--config", str(config)).returncode == 1
        assert deliver(loaded, db).sent == [], "one alert per outage"

        with SiteServer(routes({"/": HOME}), port=port) as site:  # the same site, back on the same address
            assert site.port == port
            assert cli("patrol", "--config", str(config)).returncode == 0
            deliver(loaded, db)
            back = {m["X-Finpatrol-Unit"]: m for m in sink.wait_for(7)[4:]}
            assert set(back) == set(told), "the units told it was down"
            up = back["cbrc"]
            assert up["Subject"] == f"【网站恢复访问】{XYB}（此前连续3次巡查无法访问）", up["Subject"]
            body = up.get_body(("plain",)).get_content()
            assert "网站重新有应答：抓取到 1 个页面" in body and f"- 鑫盈宝 {url}" in body, body
            assert "连续 3 次巡查无法访问" in body and "此前已发出失联预警" in body, body
            assert "恢复访问不代表风险消除" in body, body
            assert "恢复访问不代表风险消除" in up.get_body(("html",)).get_content()
            assert cli("patrol", "--config", str(config)).returncode == 0
            assert deliver(loaded, db).sent == [], "told once per outage"
        assert len(sink.messages) == 7
    finally:
        db.close()


def outcome(db, target: str, when: datetime, pages: int, errors: dict | None = None) -> int:
    """One finished patrol of ``target`` as the patrol records it: ``pages`` fetched, ``errors`` by reason."""
    run = start_run(db, "site_patrol", when, [target])
    counts = {"pages": pages, "failed": sum((errors or {}).values()), "hits": 0, "new_hits": 0, "errors": errors or {}}
    finish_run(db, run, "finished", {}, {target: counts})
    return run


def site_down_alerts(db) -> list[Alert]:
    with db.new_session() as session:
        return list(session.scalars(select(Alert).where(Alert.kind == "site_down").order_by(Alert.id)))


def test_down_for_long_enough_in_patrols_in_a_row_and_again_after_it_came_back(tmp_path, sink):
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9/", sink.port,
                                      {"after": "24h", "min_patrols": 2}))
    db = StateDB(config.db_url)
    start = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    try:
        store_hits(db, [("xyb", "http://127.0.0.1:9/", "鑫盈宝年化收益18%",
                         verdict([finding("high_yield", "年化收益18%", "鑫盈宝年化收益18%")], risk="medium"))],
                   when=start)
        outcome(db, "xyb", start + timedelta(hours=6), 0, {"refused": 2})
        outcome(db, "xyb", start + timedelta(hours=12), 0, {"timeout": 1, "host_unresponsive": 3})
        deliver(config, db, now=start + timedelta(hours=12))
        assert site_down_alerts(db) == [], "two patrols in a row, but only 12 hours"
        outcome(db, "xyb", start + timedelta(hours=30), 0, {"dns": 1, "host_unresolved": 2})
        deliver(config, db, now=start + timedelta(hours=30))
        (first,) = site_down_alerts(db)
        assert first.risk == "high" and first.payload["patrols"] == 3 and first.payload["open_hits"] == {"medium": 1}
        assert first.payload["failure_classes"] == {"domain_gone": 3}

        outcome(db, "xyb", start + timedelta(hours=36), 3)  # back
        answered = outcome(db, "xyb", start + timedelta(hours=40), 0, {"http_403": 2})  # refusing us, but there
        outcome(db, "xyb", start + timedelta(hours=80), 0, {"refused": 1})
        deliver(config, db, now=start + timedelta(hours=80))
        assert len(site_down_alerts(db)) == 1, "one patrol since it last answered"
        outcome(db, "xyb", start + timedelta(hours=90), 0, {"refused": 1})
        deliver(config, db, now=start + timedelta(hours=90))
        second = site_down_alerts(db)[1]
        assert second.payload["last_answered_run"] == answered, "a new outage, from when a server last answered"
        down = [m for m in sink.wait_for(10) if "网站无法访问" in m["Subject"]]  # and the high_yield digest
        assert sorted(m["X-Finpatrol-Unit"] for m in down) == ["cbrc", "cbrc", "office", "office", "opinion", "opinion"]
        up = [m for m in sink.messages if m["Subject"].startswith("【网站恢复访问】")]
        assert sorted(m["X-Finpatrol-Unit"] for m in up) == ["cbrc", "office", "opinion"], "the first outage ended"
        assert "（此前连续3次巡查无法访问）" in up[0]["Subject"], up[0]["Subject"]
    finally:
        db.close()


def test_a_site_never_reached_is_not_down(tmp_path, sink):
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9/", sink.port))
    db = StateDB(config.db_url)
    try:
        start = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
        for n in range(3):
            outcome(db, "xyb", start + timedelta(days=n), 0, {"refused": 2})
        deliver(config, db, now=start + timedelta(days=3))
        assert site_down_alerts(db) == [], "a wrong URL is the operator's (finpatrol coverage)"
    finally:
        db.close()


QUIET = {"start": "22:00", "end": "07:00"}  # Asia/Shanghai: 14:00 to 23:00 UTC
NIGHT = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)  # 21:00 there
MORNING = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)  # 07:30 there


def down_overnight(tmp_path, sink):
    """A site with no open hits (a medium, not urgent, site_down alert) down from 23:00 and
    alerted at 01:00, inside quiet hours: the alert waits for the morning."""
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9/", sink.port, quiet_hours=QUIET))
    db = StateDB(config.db_url)
    outcome(db, "xyb", NIGHT, 2)
    outcome(db, "xyb", NIGHT + timedelta(hours=2), 0, {"refused": 2})
    outcome(db, "xyb", NIGHT + timedelta(hours=4), 0, {"timeout": 1, "host_unresponsive": 3})
    assert deliver(config, db, now=NIGHT + timedelta(hours=4)).sent == [], "quiet hours: not urgent"
    (down,) = site_down_alerts(db)
    assert down.risk == "medium" and not down.urgent
    return config, db, down


def states(db, alert_id: int) -> set[str]:
    with db.new_session() as session:
        return set(session.scalars(select(Delivery.state).where(Delivery.alert_id == alert_id)))


def test_a_site_back_before_its_queued_alert_went_out_is_told_once_as_back(tmp_path, sink):
    config, db, down = down_overnight(tmp_path, sink)
    try:
        outcome(db, "xyb", NIGHT + timedelta(hours=6), 3)  # 03:00: back
        assert deliver(config, db, now=NIGHT + timedelta(hours=6)).sent == [], "the notice is not urgent either"
        assert states(db, down.id) == {"recovered"}, "never mailed, and why is kept"
        deliver(config, db, now=MORNING)
        told = sink.wait_for(3)
        assert sorted(m["X-Finpatrol-Unit"] for m in told) == ["cbrc", "office", "opinion"]
        assert all(m["Subject"].startswith("【网站恢复访问】") for m in told), [m["Subject"] for m in told]
        body = told[0].get_body(("plain",)).get_content()
        assert f"此前的失联预警（预警 #{down.id}）发出前网站已恢复访问，不再单独发送" in body, body
        assert "连续 2 次巡查无法访问" in body and "网站重新有应答：抓取到 3 个页面" in body, body
        outcome(db, "xyb", MORNING + timedelta(hours=1), 3)
        assert deliver(config, db, now=MORNING + timedelta(hours=1)).sent == [] and len(sink.messages) == 3
    finally:
        db.close()


def test_a_site_down_again_before_its_queued_back_notice_went_out_is_told_down_once(tmp_path, sink):
    config, db, _first = down_overnight(tmp_path, sink)
    try:
        back = outcome(db, "xyb", NIGHT + timedelta(hours=6), 3)  # 03:00: back ...
        deliver(config, db, now=NIGHT + timedelta(hours=6))
        outcome(db, "xyb", NIGHT + timedelta(hours=7), 0, {"refused": 1})  # ... and down again by 05:00
        outcome(db, "xyb", NIGHT + timedelta(hours=8), 0, {"refused": 1})
        deliver(config, db, now=NIGHT + timedelta(hours=8))
        with db.new_session() as session:
            (up,) = session.scalars(select(Alert).where(Alert.kind == "site_up"))
        assert states(db, up.id) == {"superseded"}
        deliver(config, db, now=MORNING)
        told = sink.wait_for(3)
        assert all(m["Subject"].startswith("【中风险】网站无法访问") for m in told), [m["Subject"] for m in told]
        body = told[0].get_body(("plain",)).get_content()
        assert f"（巡查 #{back}）" in body and "此后连续 2 次巡查无法访问" in body, "it says when it last answered"
        assert len(sink.messages) == 3
    finally:
        db.close()


def test_a_patrol_that_finishes_after_the_one_that_found_the_site_back_does_not_tell_again(tmp_path, sink):
    config, db, _down = down_overnight(tmp_path, sink)
    try:
        slow = start_run(db, "site_patrol", NIGHT + timedelta(hours=5), ["xyb"])  # still running ...
        outcome(db, "xyb", NIGHT + timedelta(hours=6), 3)  # ... when a later patrol finds the site back
        deliver(config, db, now=NIGHT + timedelta(hours=6))
        finish_run(db, slow, "finished", {}, {"xyb": {"pages": 1, "failed": 0, "hits": 0, "new_hits": 0, "errors": {}}})
        deliver(config, db, now=MORNING)
        assert len(sink.wait_for(3)) == 3, "one notice per outage, whichever patrol found it back first"
        with db.new_session() as session:
            assert len(session.scalars(select(Alert).where(Alert.kind == "site_up")).all()) == 1
    finally:
        db.close()
