"""A registered platform whose site stops answering alerts its lead unit (失联), once per outage.

The first test patrols a real site on 127.0.0.1 with the real CLI, stops the server and
patrols again; mail goes to a real aiosmtpd server. The others write patrol outcomes as a
patrol records them (``start_run``/``finish_run``) to walk through thresholds and outages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml
from smtp_fixtures import finding, store_hits, verdict
from sqlalchemy import select

from conftest import cli
from crawler.alerts.models import Alert
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.demo.server import SiteServer, routes
from crawler.store.db import StateDB
from crawler.store.runs import finish_run, start_run

UNITS = ("cbrc", "finance_office", "pboc", "market_regulator", "police", "opinion", "office", "housing", "operator")
XYB = "重庆鑫盈宝网络科技有限公司"
HOME = "<html><head><title>鑫盈宝</title></head><body><p>鑫盈宝新手标，承诺保本保息，欢迎投资。</p></body></html>"


def write_config(tmp_path, url: str, smtp_port: int, site_down: dict | None = None):
    path = tmp_path / "patrol.yaml"
    path.write_text(yaml.safe_dump({
        "state_dir": "state", "allow_private_networks": True, "download_timeout": 3,
        "alerts": {"quiet_hours": None, "site_down": site_down or {"after": 0, "min_patrols": 2}},
        "routing": {"units": {u: {"name": f"unit {u}", "emails": [f"{u}@duty.test"]} for u in UNITS}},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        "targets": [{"id": "xyb", "name": XYB, "aliases": ["鑫盈宝"], "business": "p2p", "urls": [url]}],
    }, allow_unicode=True), encoding="utf-8")
    return path


def test_a_platform_whose_site_stops_answering_alerts_its_lead_unit_once(tmp_path, sink):
    with SiteServer(routes({"/": HOME})) as site:
        url = site.url("/")
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
        down = [m for m in sink.wait_for(7) if "网站无法访问" in m["Subject"]]  # and the high_yield digest
        assert sorted(m["X-Finpatrol-Unit"] for m in down) == ["cbrc", "cbrc", "office", "office", "opinion", "opinion"]
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
