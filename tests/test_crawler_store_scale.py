"""A state DB with years of history: serve's periodic work and the investigator's reads use indexes.

The plans are those SQLite gives the statements the product really runs (captured while it
runs them), so a query rewritten, or an index missing from a state DB made by an older
finpatrol, shows as a full scan of a history table. benchmarks/history_scale.py measures
what that costs; these tests never time anything.
"""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from smtp_fixtures import finding, store_hits, verdict
from sqlalchemy import create_engine, event, text

from crawler.alerts.models import ensure_schema
from crawler.alerts.service import deliver
from crawler.config import load_config
from crawler.reports.coverage import coverage_rows
from crawler.reports.data import period_report
from crawler.store.change_report import list_changes
from crawler.store.db import StateDB
from crawler.store.models import Hit, RunTarget
from crawler.store.queries import get_hit
from crawler.store.removal import history as removal_history
from crawler.store.runs import finish_run, start_run

HISTORY = ("hits", "page_changes", "run_targets", "outbox", "pages", "page_versions", "alerts")
"""Tables that grow with every patrol: no periodic or per-hit read may scan one whole."""
NEW_INDEXES = ("ix_hits_last_run_id", "ix_hits_removed_at", "ix_hits_removed_run_id", "ix_hits_replaced_by",
               "ix_page_changes_at", "ix_page_changes_old_hit_id", "ix_page_changes_new_hit_id",
               "ix_run_targets_target_run", "ix_patrol_runs_started_at", "ix_outbox_created_at",
               "ix_alerts_kind_fingerprint")
START = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def history(tmp_path):
    """A config of two targets and a state DB with a few days of their hits, reworded and rectified."""
    document = {"state_dir": "state", "alerts": {"quiet_hours": None},
                "targets": [{"id": t, "name": f"重庆{t}网络科技有限公司", "business": "p2p",
                             "urls": [f"http://{t}.example/"]} for t in ("xyb", "zct")]}
    path = tmp_path / "patrol.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    db = StateDB(config.db_url)
    says = {"保本保息": "guaranteed_return", "保本保收益": "guaranteed_return", "稳赚不赔": "guaranteed_return"}
    for day, word in enumerate([*says, None]):  # a claim, reworded twice, then rectified
        when = START + timedelta(days=day)
        pages = [("xyb", "http://xyb.example/a.html", f"本平台{word or '理财有风险'}，欢迎投资",
                  verdict([finding(says[word], word)]) if word else verdict([])),
                 ("zct", "http://zct.example/b.html", "本平台保本保息", verdict([finding("guaranteed_return", "保本保息")]))]
        store_hits(db, pages, when=when)
        deliver(config, db, now=when + timedelta(hours=1))
    run_id = start_run(db, "site_patrol", START + timedelta(days=5), targets=["xyb", "zct"])
    finish_run(db, run_id, "finished", {}, {"xyb": {"pages": 0, "failed": 2, "hits": 0, "new_hits": 0,
                                                    "errors": {"refused": 2}}})
    yield config, db
    db.close()


def scans(db: StateDB, action, tables: tuple[str, ...] = HISTORY, sorted_: tuple[str, ...] = ("run_targets",)) -> list[str]:
    """The full scans of a history table in SQLite's plans of the statements ``action`` runs, and
    the statements over a table of ``sorted_`` that sort what they read (so read it all before the first row)."""
    statements = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert statements, "the action ran no query"
    found = []
    with db.engine.connect() as conn:
        for statement, parameters in statements:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            found += [f"{row[-1]}  ← {statement[:160]}" for row in plan
                      if re.fullmatch(rf"SCAN ({'|'.join(tables)})( .*)?", row[-1])
                      and "COVERING INDEX" not in row[-1]]
            if re.search(rf"\bFROM ({'|'.join(sorted_)})\b", statement):
                found += [f"{row[-1]}  ← {statement[:160]}" for row in plan if "TEMP B-TREE FOR ORDER BY" in row[-1]]
    return found


def test_an_older_state_db_gains_the_indexes_when_opened(history, caplog):
    config, db = history
    for name in NEW_INDEXES:  # the state DB as an older finpatrol left it
        db.execute(f"DROP INDEX {name}")
    db.close()
    with caplog.at_level(logging.WARNING, logger="crawler.store.db"):
        reopened = StateDB(config.db_url)
        ensure_schema(reopened)  # the alert tables' indexes come with the alert code
    upgraded = " ".join(r.getMessage() for r in caplog.records if "state DB upgraded: added indexes" in r.getMessage())
    assert all(name in upgraded for name in NEW_INDEXES), upgraded
    with reopened.engine.connect() as conn:
        names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())
    assert set(NEW_INDEXES) <= names
    assert scans(reopened, lambda: deliver(config, reopened, now=START + timedelta(days=6))) == []
    reopened.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crawler.store.db"):
        StateDB(config.db_url).close()
    assert not [r for r in caplog.records if "upgraded" in r.getMessage()], "only once"


def test_the_alert_code_adds_its_indexes_to_a_state_db_opened_before_it(history):
    """A process that opened the state DB before it imported the alert tables: ``ensure_schema``."""
    config, db = history
    db.execute("DROP INDEX ix_outbox_created_at")
    other = create_engine(config.db_url)  # not a StateDB, which adds it itself
    try:
        ensure_schema(SimpleNamespace(engine=other))
    finally:
        other.dispose()
    assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'ix_outbox_created_at'").scalar() == 1


def test_an_alert_pass_reads_only_what_its_runs_saw(history):
    """Also a target's patrols only back to the last its site answered in (``site_down``)."""
    config, db = history
    store_hits(db, [("xyb", "http://xyb.example/c.html", "本平台保本保息", verdict([finding("guaranteed_return", "保本保息")])),
                    ("zct", "http://zct.example/d.html", "年化收益20%", verdict([finding("high_yield", "年化收益20%")]))],
               when=START + timedelta(days=6))  # words told before, and new words: told of that page before?
    assert scans(db, lambda: deliver(config, db, now=START + timedelta(days=6, hours=1))) == []


def test_a_removed_hit_finds_its_changes_by_index(history):
    """``show`` (why it was removed) and the evidence manifest (every time it went and came back)."""
    _config, db = history
    removed = db.execute("SELECT id FROM hits WHERE removed_at IS NOT NULL AND replaced_by IS NULL").scalar()
    found, events = {}, []

    def life():
        with db.new_session() as session:
            events.extend(removal_history(session, session.get(Hit, removed)))

    assert scans(db, lambda: found.update(get_hit(db, removed))) == []
    assert found["removed_reason"] == "claim_removed" and found["removed_run"] is not None
    assert scans(db, life) == []
    assert [e["event"] for e in events] == ["opened", "removed"] and events[-1]["why"] == "claim_removed"


def test_changes_since_a_day_reads_that_day(history):
    _config, db = history
    rows = []
    assert scans(db, lambda: rows.extend(list_changes(db, since=START + timedelta(days=3)))) == []
    assert [r["kind"] for r in rows] == ["changed"], "the rectification of day 3 only"


def test_coverage_reads_each_target_latest_patrols_only(history):
    config, db = history
    rows, loaded = [], []

    def load(row, _context):
        loaded.append(row.target_id)

    event.listen(RunTarget, "load", load)
    try:
        assert scans(db, lambda: rows.extend(coverage_rows(config, db)), (*HISTORY, "patrol_runs")) == []
    finally:
        event.remove(RunTarget, "load", load)
    assert sorted(loaded) == ["xyb", "xyb", "zct", "zct"], "its last patrol and its last success, not every one"
    by_id = {row["id"]: row for row in rows}
    xyb, zct = by_id["xyb"], by_id["zct"]
    assert xyb["status"] == "offline" and xyb["runs"] == 5 and xyb["last_attempt_run"] == 5
    assert xyb["last_success_run"] == 4 and xyb["last_success_pages"] == 1
    assert zct["status"] == "failed" and zct["runs"] == 5 and zct["last_success_run"] == 4, "no pages in run 5"


def test_period_report_reads_the_removals_and_patrols_of_its_period(history):
    config, db = history
    report = {}
    period = START + timedelta(days=3), START + timedelta(days=4)
    assert scans(db, lambda: report.update(period_report(config, db, *period)), (*HISTORY, "patrol_runs")) == []
    assert report["rectification"]["removed_in_period"] == 1
    assert report["institutions"]["patrolled"] == ["xyb", "zct"]
    earlier = period_report(config, db, START + timedelta(days=1), START + timedelta(days=3))
    assert earlier["rectification"]["removed_in_period"] == 0 and earlier["rectification"]["replaced_in_period"] == 2
    later = period_report(config, db, START + timedelta(days=5), START + timedelta(days=6))
    assert later["institutions"]["patrolled"] == [], "run 5 fetched nothing"
