"""``finpatrol serve`` (the scheduled patrol service) and ``finpatrol schedule list``."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click
from rich.table import Table

from crawler.commands.common import (
    config_option, console, emit_json, json_option, load_or_exit, log_warnings, open_db_or_empty,
)
from crawler.config import ConfigError, PatrolConfig


def started_line(config: PatrolConfig, jobs, now: datetime | None = None) -> str:
    """What ``serve`` says once its jobs are scheduled (and after a reload of its config):
    config, jobs, next run, how to stop.

    ``jobs``: the scheduler's crawl jobs (APScheduler ``Job``: ``id``, ``next_run_time``)."""
    schedules = config.schedules
    now = now or datetime.now(UTC)
    upcoming = sorted((j for j in jobs if j.next_run_time is not None), key=lambda j: j.next_run_time)
    if upcoming:
        first = upcoming[0]
        when = first.next_run_time.astimezone(ZoneInfo(schedules.timezone))
        shown = f"{when:%Y-%m-%d %H:%M:%S %Z}"
        next_run = f"next run {first.id} now (due {shown})" if when <= now else f"next run {first.id} at {shown}"
    elif jobs:
        next_run = "none has a next run"
    else:
        enabled = "none enabled in" if schedules.jobs else "none in"
        next_run = f"no crawl ({enabled} schedules.jobs): only alert mail"
    return (f"finpatrol serve: {config.source}, {len(jobs)} job(s) scheduled, {next_run}; alert mail every "
            f"{schedules.alerts_every:g} s; stop with Ctrl-C (or SIGTERM)")


@click.command()
@config_option
def serve(config_file):
    """Run the patrol service: scheduled crawls, early-warning mail, until Ctrl-C or SIGTERM.

    Says once it has started: the config, the scheduled jobs and the next run. Takes up an
    edit of the config within seconds (at once on SIGHUP); refuses an invalid one, keeping the
    version in effect, and mails the operator. One service per state_dir: a second one is
    refused (it names the lock file and the pid holding it)."""
    from crawler.schedule.config_watch import ConfigWatch
    from crawler.schedule.lock import AlreadyRunning, ServeLock
    from crawler.schedule.service import Service

    config = load_or_exit(config_file)
    lock = ServeLock(config.state_dir)
    try:
        lock.acquire()
    except AlreadyRunning as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"cannot create the serve lock {lock.path}: {e}") from None
    log_warnings(config)  # once it is the service: a refused second one says only why
    try:
        watch = ConfigWatch(config.source)
        try:
            version = watch.load()  # validated again: the version the crawls will read
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
        Service(version, watch).run(on_config=lambda config, jobs: console.print(started_line(config, jobs)))
    finally:
        lock.release()


@click.group()
def schedule():
    """The crawl schedule of `finpatrol serve`."""


@schedule.command("list")
@config_option
@json_option
def list_(config_file, as_json):
    """Every scheduled job and its next run."""
    from crawler.schedule.listing import OVERDUE, schedule_rows

    config = load_or_exit(config_file)
    with open_db_or_empty(config) as db:  # the configured jobs, before `serve` first ran too; no DB file made
        rows = schedule_rows(config, db)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(f"no scheduled jobs in {config.source}: add them as `jobs:` under `schedules:` "
                      "(see docs/alerts.md); until then `serve` only sends alert mail")
        return
    table = Table(title=f"巡查计划 schedule ({config.schedules.timezone})")
    for column in ("job", "targets", "trigger", "next run", "state"):
        table.add_column(column, overflow="fold")
    for r in rows:
        next_run = r["next_run_local"] or r["next_run"] or "-"
        table.add_row(r["id"], ", ".join(r["targets"]), r["trigger"],
                      f"[red]{next_run} ({OVERDUE})[/]" if r["overdue"] else next_run, r["state"])
    console.print(table)


COMMANDS = (serve, schedule)
