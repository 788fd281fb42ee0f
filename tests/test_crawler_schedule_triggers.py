"""Schedule computations as pure trigger tests: cron with day names, intervals, time zones, config errors."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from crawler.config import ConfigError, parse_config
from crawler.schedule.config import Job, SchedulesConfig
from crawler.schedule.triggers import build_trigger, describe, next_fire_times, spec_hash

CST = ZoneInfo("Asia/Shanghai")


def test_weekday_cron_skips_the_weekend():
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=CST)  # a Friday
    fires = next_fire_times(Job(id="p2p", cron="30 8 * * mon-fri"), "Asia/Shanghai", friday_evening, 3)
    assert [f.strftime("%a %H:%M") for f in fires] == ["Mon 08:30", "Tue 08:30", "Wed 08:30"]
    assert fires[0].utcoffset().total_seconds() == 8 * 3600


def test_cron_fields_mapping_and_sunday_by_name():
    job = Job(id="weekly", cron={"hour": 3, "day_of_week": "sun"})
    fires = next_fire_times(job, "Asia/Shanghai", datetime(2026, 11, 27, 12, 0, tzinfo=CST), 2)
    assert [(f.strftime("%a"), f.hour, f.minute) for f in fires] == [("Sun", 3, 0), ("Sun", 3, 0)]
    assert (fires[1] - fires[0]).days == 7


def test_numeric_day_of_week_is_rejected_because_apscheduler_0_is_monday():
    with pytest.raises(ConfigError) as e:
        parse_config("schedules:\n  jobs:\n    - {id: a, cron: '0 8 * * 0'}\n")
    assert "line 3" in str(e.value) and "0 means Monday" in str(e.value)
    # a step like */2 is not a day number
    Job(id="ok", cron="0 8 * * */2")


def test_interval_counts_from_start_and_in_the_schedule_time_zone():
    start = datetime(2026, 11, 27, 9, 0, tzinfo=CST)
    fires = next_fire_times(Job(id="i", interval="15m"), "Asia/Shanghai", start, 3)
    assert [f.strftime("%H:%M") for f in fires] == ["09:15", "09:30", "09:45"]


def test_jitter_keeps_fire_times_within_the_jitter():
    job = Job(id="j", cron="0 * * * *", jitter=120)
    trigger = build_trigger(job, "Asia/Shanghai")
    now = datetime(2026, 11, 27, 9, 30, tzinfo=CST)
    for _ in range(20):
        fire = trigger.get_next_fire_time(None, now)
        assert datetime(2026, 11, 27, 10, 0, tzinfo=CST) <= fire <= datetime(2026, 11, 27, 10, 2, tzinfo=CST)


def test_spec_hash_changes_only_with_the_job():
    schedules = SchedulesConfig(jobs=(Job(id="a", cron="0 8 * * *"),))
    same = spec_hash(Job(id="a", cron="0 8 * * *"), schedules)
    assert spec_hash(schedules.jobs[0], schedules) == same
    assert spec_hash(Job(id="a", cron="0 9 * * *"), schedules) != same
    assert spec_hash(Job(id="a", cron="0 8 * * *", targets=("x",)), schedules) != same
    assert describe(schedules.jobs[0]) == "cron 0 8 * * *"


@pytest.mark.parametrize("bad, message", [
    ("{id: a}", "exactly one of 'cron' or 'interval'"),
    ("{id: a, cron: '0 8 * *'}", "expected 5 cron fields"),
    ("{id: a, interval: soon}", "expected a duration"),
    ("{id: A, interval: 1h}", "lower-case"),
    ("{id: a, cron: '99 8 * * *'}", "invalid cron minute '99': the last value (99) is higher than the maximum value (59)"),
    ("{id: a, cron: {hour: 25}}", "invalid cron hour '25'"),
    ("{id: a, cron: '0 8 * * funday'}", "invalid cron day_of_week 'funday'"),
    ("{id: a, cron: '0 8-x * * *'}", "invalid cron hour '8-x'"),
])
def test_config_errors_name_the_field(bad, message):
    with pytest.raises(ConfigError) as e:
        parse_config(f"schedules:\n  jobs:\n    - {bad}\n")
    assert message in str(e.value) and "schedules.jobs[0]" in str(e.value)


def test_jobs_must_name_configured_targets_channels_or_sources():
    text = """\
targets:
  - {id: bank, name: Bank, business: other, urls: ["http://127.0.0.1:8080/"]}
schedules:
  jobs:
    - {id: a, interval: 1h, targets: [bank, nosuch]}
    - {id: b, interval: 1h, spider: opinion, targets: [bank]}
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert "line 5: schedules.jobs[0].targets[1]: unknown target 'nosuch' (known: bank)" in str(e.value)
    assert "line 6: schedules.jobs[1].targets[0]: unknown source 'bank'" in str(e.value)
    assert len(parse_config(text.replace(", nosuch", "").replace("spider: opinion, ", "")).schedules.jobs) == 2
