"""The CLI before any patrol (its version, read commands on a state DB that does not exist, an
empty schedule) and how `hits`, `runs` and `search` present a state DB written directly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

from smtp_fixtures import finding, store_hits, verdict

from crawler.alerts.config import DEFAULT_UNITS
from crawler.config import load_config
from crawler.store.db import StateDB
from crawler.store.models import PatrolRun, TargetRow
from tests.conftest import cli, json_lines

CONFIG = """\
state_dir: patrolled-nowhere
targets:
  - id: local
    name: 本地测试
    business: p2p
    urls: ["http://127.0.0.1:9/"]
"""


def test_a_mistyped_state_dir_is_named_not_answered_with_no_hits(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    for command in (("hits",), ("search", "保本保息"), ("runs",), ("show", "1"), ("alerts", "list")):
        result = cli(*command, "--config", str(config))
        assert result.returncode == 1, command
        assert "no state DB at" in result.stderr and "patrolled-nowhere" in result.stderr, command
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "patrolled-nowhere").exists(), "a read command must not create the state DB"
    listed = cli("schedule", "list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert "no scheduled jobs" in listed.stdout and "schedules:" in listed.stdout, "not an empty table"
    assert "┃ job" not in listed.stdout


def test_version_is_the_installed_package_version():
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"finpatrol {version('finpatrol')}"


def test_check_config_warns_of_start_urls_the_guard_will_refuse(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    result = cli("check-config", "--config", str(config))
    assert result.returncode == 0 and "OK, 1 target(s)" in result.stdout
    assert "warning: targets[0].urls[0]: 127.0.0.1 is a loopback or private address" in result.stderr
    config.write_text(CONFIG + "    allow_private_networks: true\n", encoding="utf-8")
    assert "loopback" not in cli("check-config", "--config", str(config)).stderr
    config.write_text("targets:\n", encoding="utf-8")
    assert "warning: no targets yet" in cli("check-config", "--config", str(config)).stderr


def test_check_config_warns_of_alert_units_without_an_address(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG + "    allow_private_networks: true\n", encoding="utf-8")
    warned = cli("check-config", "--config", str(config)).stderr
    assert "warning: routing.units: no e-mail address for opinion, office, operator, cbrc, finance_office" in warned
    assert "outbox/unaddressed" in warned
    units = "".join(f"    {u}: {{emails: [{u}@duty.test]}}\n" for u in DEFAULT_UNITS)
    config.write_text("routing:\n  units:\n" + units + CONFIG + "    allow_private_networks: true\n", encoding="utf-8")
    assert "warning" not in cli("check-config", "--config", str(config)).stderr


T1 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def claim(name: str) -> tuple:
    text = f"{name}理财产品保本保息，稳赚不赔"
    return ("local", f"http://127.0.0.1:9/{name}.html", text, verdict([finding("guaranteed_return", "保本保息", text)]))


def test_hits_come_newest_first_by_last_seen_and_limit_keeps_the_newest(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        store_hits(db, [claim("a"), claim("b")], when=T1)  # hits 1 and 2
        store_hits(db, [claim("a"), claim("c")], when=T1 + timedelta(hours=1))  # a seen again; hit 3 new
    # Hit 1 was first seen with hit 2 but seen again since: it comes before 2; hit 3 ties with 1, larger id first.
    assert [h["id"] for h in json_lines(cli("hits", "--config", str(config), "--json").stdout)] == [3, 1, 2]
    assert [h["id"] for h in json_lines(cli("hits", "--config", str(config), "--json", "--limit", "2").stdout)] == [3, 1]
    rows = [line.split("│")[1].strip() for line in cli("hits", "--config", str(config)).stdout.splitlines()
            if line.startswith("│ ")]
    assert rows == ["3", "1", "2"]


def test_hits_since_and_until_a_date_mean_that_day_in_the_offices_time_zone(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        store_hits(db, [claim("early")], when=datetime(2026, 11, 26, 20, 0, tzinfo=UTC))  # 11-27 04:00 in Beijing
        store_hits(db, [claim("late")], when=datetime(2026, 11, 27, 17, 0, tzinfo=UTC))  # 11-28 01:00 in Beijing
    day = cli("hits", "--config", str(config), "--json", "--since", "2026-11-27", "--until", "2026-11-27")
    assert [h["url"] for h in json_lines(day.stdout)] == [claim("early")[1]], "the Beijing day 11-27, whole"
    utc = cli("hits", "--config", str(config), "--json", "--since", "2026-11-27T00:00+00:00",
              "--until", "2026-11-28T00:00+00:00")
    assert [h["url"] for h in json_lines(utc.stdout)] == [claim("late")[1]], "an offset given is kept"
    assert json_lines(utc.stdout)[0]["last_seen"] == "2026-11-27T17:00:00+00:00", "JSON keeps UTC for programs"
    table = cli("hits", "--config", str(config), "--since", "2026-11-28").stdout
    assert "2026-11-28 01:00" in table and "times in Asia/Shanghai" in table, "tables show the office's time"
    (late_id,) = [h["id"] for h in json_lines(utc.stdout)]
    shown = cli("show", str(late_id), "--config", str(config)).stdout
    assert "first seen 2026-11-28 01:00" in shown and "Asia/Shanghai" in shown


def test_runs_show_when_each_run_started_and_how_long_it_took(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        done = store_hits(db, [claim("a")], when=T1)
        running = store_hits(db, [claim("b")], when=T1 + timedelta(hours=2), finish=False)
        with db.new_session() as session, session.begin():
            session.get(PatrolRun, done).finished_at = T1 + timedelta(minutes=3, seconds=25)
    text = cli("runs", "--config", str(config)).stdout
    assert f"patrol run {done}: ok (finished), started 2026-11-27 10:00 (Asia/Shanghai), took 3 min 25 s" in text
    assert f"patrol run {running}: running, started 2026-11-27 12:00 (Asia/Shanghai), not finished" in text


def test_every_limit_option_says_which_rows_it_keeps():
    for command in (("hits",), ("search",), ("runs",), ("alerts", "list")):
        help_text = cli(*command, "--help").stdout
        limit = help_text[help_text.index("--limit"):].split("\n  -")[0]
        assert "first" in limit, (command, limit)


def test_coverage_and_schedule_list_before_the_first_patrol_leave_no_state_db_behind(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text("schedules:\n  jobs: [{id: hourly, interval: 3600}]\n" + CONFIG, encoding="utf-8")
    (row,) = json_lines(cli("coverage", "--config", str(config), "--json").stdout)
    assert row["id"] == "local" and row["status"] == "never" and row["next_scheduled"], row
    listed = cli("schedule", "list", "--config", str(config), "--json")
    assert listed.returncode == 0, listed.stderr
    (job,) = json_lines(listed.stdout)
    assert job["state"] == "not stored: serve not started" and job["next_run"]
    assert not (tmp_path / "patrolled-nowhere").exists(), "coverage and schedule list made a state DB"
    for command in (("hits",), ("evidence", "verify")):  # so these still name the mistyped state_dir
        result = cli(*command, "--config", str(config))
        assert result.returncode == 1 and "no state DB at" in result.stderr, (command, result.stdout)


CHANNEL_CONFIG = CONFIG + """\
channels:
  - id: sousuo
    url: "http://127.0.0.1:9/s?q={keyword}"
    selectors: {item: div, link: a}
"""


def test_a_misspelt_category_is_a_usage_error_naming_the_category_meant(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        store_hits(db, [claim("a")], when=T1)
    for command in (("hits",), ("search", "保本保息")):
        result = cli(*command, "--config", str(config), "--category", "guaranted_return")
        assert result.returncode == 2, (command, result.stdout)
        assert "unknown category 'guaranted_return': did you mean 'guaranteed_return'?" in result.stderr, result.stderr
        far = cli(*command, "--config", str(config), "--category", "scam")
        assert "unknown category 'scam'; known: guaranteed_return, high_yield" in far.stderr, far.stderr


def test_an_unknown_target_id_is_a_usage_error_that_says_what_it_may_be(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CHANNEL_CONFIG, encoding="utf-8")
    ad = ("channel:sousuo", "http://127.0.0.1:9/ad.html", *claim("ad")[2:])
    removed = ("retired", "http://127.0.0.1:9/retired.html", *claim("retired")[2:])  # since removed from the config
    with StateDB(load_config(config).db_url) as db:
        store_hits(db, [claim("a"), ad, removed], when=T1)
    for command in (("hits",), ("search", "保本保息"), ("changes",)):
        for given, meant in (("nosuch", None), ("locl", "'local'"), ("channel:sousou", "'channel:sousuo'")):
            result = cli(*command, "--config", str(config), "--target", given)
            assert result.returncode == 2, (command, given, result.stdout)
            assert f"Invalid value for '--target': unknown id '{given}'" in result.stderr, result.stderr
            assert (f"(did you mean {meant}?)" in result.stderr) if meant else ("did you mean" not in result.stderr)
            assert "channel:sousuo" in result.stderr and "Traceback" not in result.stderr
    def urls(given: str) -> list[str]:
        return [h["url"] for h in json_lines(cli("hits", "--config", str(config), "--json", "--target", given).stdout)]

    assert urls("local") == [claim("a")[1]] and urls("retired") == [removed[1]], "a removed target's hits stay listed"
    assert urls("sousuo") == urls("channel:sousuo") == [ad[1]], "a channel by its id, or as its hits are stored"
    changed = json_lines(cli("changes", "--config", str(config), "--json", "--target", "sousuo").stdout)
    assert {c["url"] for c in changed} == {ad[1]}, "a channel's changes by its bare id too"


def test_an_output_path_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG + "  - {id: quiet, name: 无命中, business: p2p, urls: ['http://127.0.0.1:9/q']}\n",
                      encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        store_hits(db, [claim("a")], when=T1)
    assert cli("alerts", "send", "--config", str(config)).returncode == 0
    message = json_lines(cli("alerts", "list", "--config", str(config), "--json").stdout)[0]["id"]
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    missing, under_a_file = tmp_path / "nonexistent" / "a.eml", a_file / "x.html"
    for command, expected in (
        (("alerts", "preview", str(message), "--eml", str(missing)), f"cannot write {missing}: No such file"),
        (("report", "--out", str(under_a_file)), f"cannot write {under_a_file}: "),
        (("dossier", "quiet", "--out", str(under_a_file)), f"cannot write {under_a_file}: "),
        (("dossier", "local", "--format", "json", "--out", str(missing.with_suffix(".json"))),
         f"cannot write {missing.with_suffix('.json')}: No such file"),
    ):
        result = cli(*command, "--config", str(config))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, (command, result.stderr)
        assert lines[0].startswith("Error: " + expected), lines


def test_alerts_list_cut_at_its_limit_says_so_as_hits_does(tmp_path):
    from crawler.alerts.models import OutboxMessage, ensure_schema

    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        ensure_schema(db)
        with db.new_session() as session, session.begin():
            session.add_all(OutboxMessage(message_id=f"<{i}@finpatrol.test>", kind="immediate", unit="cbrc",
                                          recipients=["duty@cbrc.test"], subject=f"预警 {i}", raw=b"", status="sent",
                                          next_attempt_at=T1, created_at=T1) for i in range(3))
    cut = cli("alerts", "list", "--config", str(config), "--limit", "2")
    assert cut.returncode == 0, cut.stderr
    assert "the first 2 shown; more may match (--limit N)" in cut.stderr, "the wording of `hits` and `search`"
    assert "预警 2" in cut.stdout and "预警 0" not in cut.stdout, "newest first"
    assert "2026-11-27 10:00" in cut.stdout and "times in Asia/Shanghai" in cut.stdout, "created, in the office's time"
    for whole in (("--limit", "3"), ()):
        listed = cli("alerts", "list", "--config", str(config), *whole)
        assert listed.returncode == 0 and "预警 0" in listed.stdout
        assert "more may match" not in listed.stderr, "all shown: no hint"
    as_json = cli("alerts", "list", "--config", str(config), "--limit", "2", "--json")
    assert [m["subject"] for m in json_lines(as_json.stdout)] == ["预警 2", "预警 1"]


SOURCE_CONFIG = CHANNEL_CONFIG + """\
sources:
  - id: luntan
    kind: forum
    url: "http://127.0.0.1:9/forum/{page}"
    selectors: {item: div, link: a}
"""


def test_patrol_given_an_id_of_another_kind_names_the_flag_that_patrols_it(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(SOURCE_CONFIG, encoding="utf-8")
    for flags, given, said in (
        (("--sources",), "local", "local is a target, not a source: targets are patrolled with --sites (or no spider flag)"),
        (("--channels", "--sources"), "local", "local is a target, not a channel or source: targets are patrolled "
                                               "with --sites"),
        ((), "sousuo", "sousuo is a channel, not a target: channels are patrolled with --channels"),
        (("--sites",), "luntan", "luntan is a source, not a target: sources are patrolled with --sources"),
        (("--channels",), "channel:sousuo", "give the channel as --target sousuo (with --channels)"),
        (("--sources",), "nosuch", "unknown id nosuch: not a configured target, channel or source"),
    ):
        result = cli("patrol", "--config", str(config), *flags, "--target", given)
        assert result.returncode == 1, (flags, given, result.stdout)
        assert said in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "patrolled-nowhere").exists(), "refused before the patrol starts"


def test_a_renamed_target_is_named_by_check_config_and_keeps_its_dossier(tmp_path):
    from crawler.store.runs import sync_targets

    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG + "    allow_private_networks: true\n", encoding="utf-8")
    ad = ("channel:sousuo", "http://127.0.0.1:9/ad.html", *claim("ad")[2:])
    with StateDB(load_config(config).db_url) as db:
        sync_targets(db, load_config(config).targets)
        with db.new_session() as session, session.begin():  # as the listing spiders keep their channels
            session.add(TargetRow(id="channel:sousuo", name="渠道 搜索", business="other", urls=[], updated_at=T1))
        store_hits(db, [claim("a"), claim("b"), ad], when=T1)
    assert "no longer configured" not in cli("check-config", "--config", str(config)).stderr
    config.write_text(CONFIG.replace("id: local", "id: local_p2p") + "    allow_private_networks: true\n",
                      encoding="utf-8")
    checked = cli("check-config", "--config", str(config))
    assert checked.returncode == 0, checked.stderr
    assert "the state DB holds 2 open hit(s) of target 'local' (本地测试), which is no longer configured" \
        in checked.stderr, checked.stderr
    shown = cli("dossier", "local", "--config", str(config), "--format", "md")
    assert shown.returncode == 0, shown.stderr
    assert "已不在巡查配置中" in shown.stdout and "本地测试" in shown.stdout and "a理财产品保本保息" in shown.stdout
    data = json.loads(cli("dossier", "local", "--config", str(config), "--format", "json").stdout)
    assert data["identity"]["configured"] is False and len(data["hits"]) == 2
    assert json.loads(cli("dossier", "local_p2p", "--config", str(config), "--format", "json").stdout
                      )["identity"]["configured"] is True
    typo = cli("dossier", "locl", "--config", str(config))
    assert typo.returncode == 1 and "unknown target id 'locl': did you mean 'local'?" in typo.stderr, typo.stderr
    assert "channel:sousuo" not in checked.stderr, "a channel is no target removed from the config"
    channel = cli("dossier", "channel:sousuo", "--config", str(config))
    assert channel.returncode == 1 and "unknown target id 'channel:sousuo'" in channel.stderr, channel.stderr
    assert "Traceback" not in channel.stderr


def test_changes_of_a_run_that_does_not_exist_is_an_error_not_an_empty_answer(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        run_id = store_hits(db, [claim("a")], when=T1)
    assert cli("changes", "--config", str(config), "--run", str(run_id)).returncode == 0
    missing = cli("changes", "--config", str(config), "--run", str(run_id + 98))
    assert missing.returncode == 1, missing.stdout
    assert f"no patrol run {run_id + 98} in" in missing.stderr and "finpatrol runs" in missing.stderr


def test_log_lines_carry_their_utc_offset(tmp_path):
    """The server's clock may be UTC while the office reads Beijing time: a log line says which."""
    import re

    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG.replace("patrolled-nowhere", "state"), encoding="utf-8")
    store_hits(StateDB(load_config(config).db_url), [("local", "http://127.0.0.1:9/", "本平台保本保息", verdict([]))])
    for zone, offset in (("Asia/Shanghai", "+08:00"), ("UTC", "+00:00")):
        result = cli("-vv", "reindex", "--config", str(config), env={"TZ": zone})
        assert result.returncode == 0, result.stderr
        lines = [line for line in result.stderr.splitlines() if " DEBUG " in line]
        assert lines and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}" + re.escape(offset) + " DEBUG ", line)
                             for line in lines), result.stderr


def test_a_site_that_is_down_is_counted_not_logged_as_an_error(tmp_path):
    """Its failures are in the summary; Scrapy's robots.txt error (with a traceback) shows with -v only."""
    from conftest import closed_port_url

    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG.replace("http://127.0.0.1:9/", closed_port_url()).replace(
        "state_dir: patrolled-nowhere", "state_dir: state\nallow_private_networks: true"), encoding="utf-8")
    quiet = cli("patrol", "--config", str(config))
    assert quiet.returncode == 1 and "host_unresponsive×1" in quiet.stdout, quiet.stdout
    assert "did not answer 3 times in a row (refused×3)" in quiet.stderr, "the host breaker's one warning"
    assert " ERROR " not in quiet.stderr and "Traceback" not in quiet.stderr, quiet.stderr
    verbose = cli("-v", "patrol", "--config", str(config))
    assert " INFO scrapy.downloadermiddlewares.robotstxt: Error downloading" in verbose.stderr, verbose.stderr
