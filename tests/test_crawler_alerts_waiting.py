"""``finpatrol alerts list --waiting``: alerts not composed yet, what they wait for and when they go out.

Through the real CLI, on a real state DB with hits stored as a patrol stores them, and mail to a
real aiosmtpd server. The config's quiet hours and digest time are set around the time the test
runs (the command reads the clock), so that one alert waits for quiet hours to end and one for
the digest; the forecast is then checked against what the composer sends at those times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import yaml
from smtp_fixtures import finding, store_hits, verdict

from conftest import cli, json_lines
from crawler.alerts.evaluate import evaluate
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.store.db import StateDB, iso

CST = ZoneInfo("Asia/Shanghai")
UNITS = ("cbrc", "finance_office", "pboc", "market_regulator", "police", "opinion", "office", "housing", "operator")
KEYS = {"alert_id", "kind", "target", "institution", "category", "category_zh", "risk", "urgent", "hit_id", "units",
        "waits", "send_at", "created_at", "summary"}


def page(path: str, text: str, category: str, word: str, risk: str):
    return ("xyb", f"http://127.0.0.1:9/{path}", text, verdict([finding(category, word, text)], risk=risk))


def test_alerts_waiting_for_quiet_hours_and_the_digest_are_listed_with_when_they_go_out(tmp_path, sink):
    here = datetime.now(CST).replace(second=0, microsecond=0)
    quiet_end, digest_at = here + timedelta(hours=2), here + timedelta(hours=5)
    path = tmp_path / "patrol.yaml"
    path.write_text(yaml.safe_dump({
        "state_dir": "state",
        "alerts": {"quiet_hours": {"start": (here - timedelta(hours=1)).strftime("%H:%M"),
                                   "end": quiet_end.strftime("%H:%M")},
                   "digest_time": digest_at.strftime("%H:%M")},
        "routing": {"units": {u: {"name": f"unit {u}", "emails": [f"{u}@duty.test"]} for u in UNITS}},
        "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
        "targets": [{"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "business": "p2p",
                     "urls": ["http://127.0.0.1:9/"]}],
    }, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    db = StateDB(config.db_url)
    try:
        store_hits(db, [page("a", "本平台承诺保本保息", "guaranteed_return", "承诺保本保息", "high"),
                        page("b", "年化收益18%", "high_yield", "年化收益18%", "medium"),
                        page("c", "即日起暂停提现", "collapse_signal", "暂停提现", "medium")])
        deliver(config, db)
        assert len(sink.wait_for(1)) == 1, "the urgent one goes out through quiet hours"
        store_hits(db, [page("d", "本平台保证本金安全", "guaranteed_return", "保证本金安全", "high")])
        evaluate(db, config)  # decided, not composed yet: the next alert pass sends it

        rows = json_lines(cli("alerts", "list", "--waiting", "--json", "--config", str(path)).stdout)
        assert all(set(row) == KEYS for row in rows), rows
        assert [(r["kind"], r["category"], r["waits"]) for r in rows] == [
            ("hit", "guaranteed_return", "next_pass"), ("hit", "collapse_signal", "quiet_hours"),
            ("hit", "high_yield", "digest")], rows
        due, quiet, digest = rows
        assert due["urgent"] and due["units"] == ["cbrc"] and due["summary"].startswith("【高风险】")
        assert quiet["send_at"] == iso(quiet_end) and quiet["units"] == ["cbrc", "office", "opinion"], quiet
        assert digest["send_at"] == iso(digest_at) and digest["risk"] == "medium", digest
        assert digest["institution"] == "重庆鑫盈宝网络科技有限公司" and digest["target"] == "xyb"

        table = cli("alerts", "list", "--waiting", "--config", str(path))
        assert table.returncode == 0, table.stderr
        for text in ("daily digest", "quiet hours", "next alert pass", quiet_end.strftime("%Y-%m-%d %H:%M"),
                     "平台风险事件", "cbrc, office, opinion"):
            assert text in table.stdout, (text, table.stdout)
        outbox = cli("alerts", "list", "--config", str(path)).stdout
        assert (f"3 alert(s) not composed yet: 1 for the next alert pass; 1 for quiet hours to end at "
                f"{quiet_end:%Y-%m-%d %H:%M}; 1 for the daily digest at {digest_at:%Y-%m-%d %H:%M}") in outbox, outbox
        both = cli("alerts", "list", "--waiting", "--status", "pending", "--config", str(path))
        assert both.returncode == 2 and "--status filters outbox messages" in both.stderr, both.stderr

        deliver(config, db, now=quiet_end.astimezone(UTC))
        subjects = sorted((m["X-Finpatrol-Unit"], m["Subject"]) for m in sink.wait_for(5)[1:])
        assert subjects == [("cbrc", "【中风险】平台风险事件 - 重庆鑫盈宝网络科技有限公司"),
                            ("cbrc", "【高风险】承诺保本保息/刚性兑付 - 重庆鑫盈宝网络科技有限公司"),
                            ("office", "【中风险】平台风险事件 - 重庆鑫盈宝网络科技有限公司"),
                            ("opinion", "【中风险】平台风险事件 - 重庆鑫盈宝网络科技有限公司")], subjects
        (left,) = json_lines(cli("alerts", "list", "--waiting", "--json", "--config", str(path)).stdout)
        assert left["waits"] == "digest" and left["alert_id"] == digest["alert_id"]
        deliver(config, db, now=digest_at.astimezone(UTC))
        assert sink.wait_for(6)[5]["Subject"].startswith("【每日汇总】unit cbrc")
        assert cli("alerts", "list", "--waiting", "--json", "--config", str(path)).stdout == ""
        assert "not composed yet" not in cli("alerts", "list", "--config", str(path)).stdout
    finally:
        db.close()
