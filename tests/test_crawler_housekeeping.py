"""`finpatrol prune` and serve's daily housekeeping on a real state dir: old crawl logs of good
crawls go, recent ones and those of crawls that went wrong stay, old runs' stats are cut to a
summary, evidence is never touched, a dry run deletes nothing, a bad retention block is named."""

from __future__ import annotations

import pprint
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smtp_fixtures import finding, store_hits, verdict

from crawler.config import load_config
from crawler.demo.server import SiteServer, routes
from crawler.housekeeping import THINNED, daily, last_prune
from crawler.schedule.runner import Runner
from crawler.store.db import StateDB
from crawler.store.models import Hit, PageVersion, PatrolRun
from crawler.store.runs import finish_run, start_run
from conftest import cli, json_lines

NOW = datetime.now(UTC)
STATS = {"finish_reason": "finished", "item_scraped_count": 3, "downloader/request_count": 4,
         "patrol/target/xyb/pages": 3, "playwright/page_count": 2, "scheduler/enqueued": 4}


def crawl_run(db: StateDB, days_ago: float, outcome: str = "ok") -> int:
    """A finished run started ``days_ago`` with Scrapy stats: ``ok``, ``partial`` (a target fetched
    nothing) or ``failed`` (the crawl broke)."""
    run_id = start_run(db, "site_patrol", NOW - timedelta(days=days_ago))
    fetched = {"pages": 3, "failed": 0, "hits": 0, "new_hits": 0, "errors": {}}
    nothing = {"pages": 0, "failed": 2, "hits": 0, "new_hits": 0, "errors": {"offline": 2}}
    per_target = {"xyb": nothing if outcome == "failed" else fetched} | ({"zct": nothing} if outcome == "partial" else {})
    assert finish_run(db, run_id, "finished", STATS | {"patrol/run_id": run_id}, per_target) == outcome
    return run_id


def crawl_logs(state: Path, job: str, days_ago: float, run_id: int | None, stderr: str = "") -> str:
    """The two files the runner writes for a crawl: the log ending in Scrapy's stats dump, and stderr."""
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    name = f"crawl-{job}-{NOW - timedelta(days=days_ago):%Y%m%dT%H%M%S}"
    dump = pprint.pformat(STATS | ({"patrol/run_id": run_id} if run_id is not None else {}))
    (logs / f"{name}.log").write_text("2026-01-01 08:00:00 [scrapy.utils.log] INFO: Scrapy started\n"
                                      + (f"2026-01-01 08:00:09 [scrapy.statscollectors] INFO: Dumping Scrapy "
                                         f"stats:\n{dump}\n" if run_id is not None else ""), encoding="utf-8")
    (logs / f"{name}.err").write_text(stderr, encoding="utf-8")
    return name


def write_config(tmp_path: Path, retention: str = "") -> Path:
    config = tmp_path / "patrol.yaml"
    config.write_text("state_dir: state\ntargets:\n  - {id: xyb, name: 鑫盈宝, business: p2p, "
                      "urls: ['http://127.0.0.1:9/']}\n" + retention, encoding="utf-8")
    return config


def stats_of(db: StateDB, run_id: int) -> dict:
    with db.new_session() as session:
        return session.get(PatrolRun, run_id).stats


def test_prune_removes_old_logs_of_good_crawls_and_keeps_recent_unhealthy_and_evidential_things(tmp_path):
    config = write_config(tmp_path)
    state = tmp_path / "state"
    with StateDB(load_config(config).db_url) as db:
        hit_run = store_hits(db, [("xyb", "http://127.0.0.1:9/a", "保本保息，年化 18%",
                                   verdict([finding("guaranteed_return", "保本保息")]))], when=NOW - timedelta(days=900))
        old_ok, old_partial, recent_ok = crawl_run(db, 200), crawl_run(db, 300, "partial"), crawl_run(db, 10)
        ancient_failed = crawl_run(db, 800, "failed")
    gone = {crawl_logs(state, "daily", 200, old_ok), crawl_logs(state, "daily", 800, ancient_failed)}
    kept = {
        crawl_logs(state, "daily", 300, old_partial): f"run {old_partial} partial",
        crawl_logs(state, "daily", 10, recent_ok): None,
        crawl_logs(state, "night", 200, None, stderr="Traceback …\nConfigError: …\n"): "stderr not empty",
        crawl_logs(state, "night", 250, None): "no run recorded in its log",
        crawl_logs(state, "night", 260, 999): "run 999 not in the state DB",
    }
    (state / "logs" / "notes.txt").write_text("the operator's own file", encoding="utf-8")
    warc = state / "evidence" / "2024-01-01" / "finpatrol-20240101000000-1-00001.warc.gz"
    warc.parent.mkdir(parents=True)
    warc.write_bytes(b"WARC evidence of a hit")
    before = sorted(p.name for p in (state / "logs").iterdir())

    dry = cli("prune", "--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(p.name for p in (state / "logs").iterdir()) == before, "a dry run deleted something"
    assert "would remove 4 log file(s) of 2 crawl(s)" in dry.stdout and "stats of 2 run(s)" in dry.stdout
    assert all(name in dry.stdout for name in gone) and not any(name in dry.stdout for name in kept)
    assert "kept the logs of 4 older crawl(s) that went wrong" in dry.stdout
    listed = json_lines(cli("prune", "--config", str(config), "--dry-run", "--json").stdout)[0]
    assert {c["crawl"] for c in listed["logs"]} == gone and listed["dry_run"] is True
    assert {c["crawl"]: c["why"] for c in listed["kept_unhealthy"]} == {k: v for k, v in kept.items() if v}
    assert sorted(r["run_id"] for r in listed["runs"]) == [old_ok, ancient_failed]
    assert listed["log_bytes"] == sum((state / "logs" / f"{name}{ext}").stat().st_size
                                      for name in gone for ext in (".log", ".err"))
    assert not (state / "last-prune").exists()

    done = cli("prune", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    assert {c["crawl"] for c in json_lines(done.stdout)[0]["logs"]} == gone
    left = {p.name for p in (state / "logs").iterdir()}
    assert left == {f"{name}{ext}" for name in kept for ext in (".log", ".err")} | {"notes.txt"}
    assert warc.read_bytes() == b"WARC evidence of a hit"
    with StateDB(load_config(config).db_url) as db:
        for run_id in (old_ok, ancient_failed):
            stats = stats_of(db, run_id)
            assert THINNED in stats and stats["item_scraped_count"] == 3, stats
            assert "patrol/target/xyb/pages" not in stats and "playwright/page_count" not in stats
        assert stats_of(db, old_partial) == STATS | {"patrol/run_id": old_partial}, "a partial run's stats went"
        assert stats_of(db, recent_ok) == STATS | {"patrol/run_id": recent_ok}
        with db.new_session() as session:
            assert session.query(PatrolRun).count() == 5 and session.query(Hit).count() == 1
            assert session.query(PageVersion).count() == 1
            assert session.get(Hit, 1).first_run_id == hit_run
    again = json_lines(cli("prune", "--config", str(config), "--json").stdout)[0]
    assert again["logs"] == [] and again["runs"] == []


def test_prune_reads_the_run_from_a_real_crawl_log(tmp_path):
    page = "<html><body><p>新客专享，年化收益 18%，保本保息。</p></body></html>"
    with SiteServer(routes({"/": page})) as site:
        config = write_config(tmp_path)
        config.write_text(config.read_text(encoding="utf-8").replace("http://127.0.0.1:9/", site.url("/"))
                          + "allow_private_networks: true\n", encoding="utf-8")
        outcome = Runner(stop_grace=10).run(load_config(config), "daily", ("xyb",), timeout=120)
    assert outcome.status == "ok", Path(outcome.err_file).read_text(errors="replace")
    log, err = Path(outcome.log_file), Path(outcome.err_file)
    aged = NOW - timedelta(days=181)  # as the files and the run look half a year later
    for path in (log, err):
        path.rename(path.with_name(f"crawl-daily-{aged:%Y%m%dT%H%M%S}{path.suffix}"))
    with StateDB(load_config(config).db_url) as db:
        db.execute("UPDATE patrol_runs SET started_at = :t WHERE id = :id",
                   t=aged.replace(tzinfo=None).isoformat(sep=" "), id=outcome.run_id)
    result = json_lines(cli("prune", "--config", str(config), "--json").stdout)[0]
    assert [c["why"] for c in result["logs"]] == [f"run {outcome.run_id} ok"], result
    assert [r["run_id"] for r in result["runs"]] == [outcome.run_id]
    assert not any((tmp_path / "state" / "logs").iterdir())


def test_retention_null_keeps_every_log(tmp_path):
    config = write_config(tmp_path, "retention:\n  crawl_logs_days: null\n")
    with StateDB(load_config(config).db_url) as db:
        run_id = crawl_run(db, 3650)
    name = crawl_logs(tmp_path / "state", "daily", 3650, run_id)
    result = cli("prune", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "removed 0 log file(s)" in result.stdout and "crawl logs forever" in result.stdout
    assert (tmp_path / "state" / "logs" / f"{name}.log").exists()


def test_a_bad_retention_block_is_named_with_its_file_line_and_field(tmp_path):
    for block, where, why in (
        ("retention:\n  crawl_logs_days: 0\n", "line 5: retention.crawl_logs_days", "expected a number ≥ 1"),
        ("retention:\n  crawl_logs_days: 200\n  unhealthy_crawl_logs_days: 30\n",
         "line 6: retention.unhealthy_crawl_logs_days", "expected at least crawl_logs_days (200), got 30"),
        ("retention:\n  crawl_logs_days: null\n  unhealthy_crawl_logs_days: 30\n",
         "line 6: retention.unhealthy_crawl_logs_days", "expected null, as crawl_logs_days is"),
        ("retention:\n  logs_days: 30\n", "line 5: retention.logs_days", "unknown setting"),
    ):
        config = write_config(tmp_path, block)
        result = cli("prune", "--config", str(config))
        assert result.returncode == 1 and f"{config}: {where}: {why}" in result.stderr, (block, result.stderr)
        assert "Traceback" not in result.stderr


def test_serve_prunes_once_a_day(tmp_path):
    config = load_config(write_config(tmp_path))
    state = tmp_path / "state"
    with StateDB(config.db_url) as db:
        first = crawl_logs(state, "daily", 200, crawl_run(db, 200))
        assert [c.crawl for c in daily(config, db, NOW).logs] == [first]
        assert last_prune(state) == NOW.replace(microsecond=0)
        second = crawl_logs(state, "daily", 199, crawl_run(db, 199))
        assert daily(config, db, NOW + timedelta(hours=23)) is None, "pruned twice in a day"
        assert (state / "logs" / f"{second}.log").exists()
        assert [c.crawl for c in daily(config, db, NOW + timedelta(hours=25)).logs] == [second]
