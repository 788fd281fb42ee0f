"""``finpatrol serve`` (the scheduled patrol service) and ``finpatrol schedule list``."""

from __future__ import annotations

import click
from rich.table import Table

from crawler.commands.common import config_option, console, emit_json, json_option, load_or_exit, open_db_or_empty
from crawler.config import PatrolConfig


def check_jobs(config: PatrolConfig) -> None:
    known = {
        "site_patrol": {t.id for t in config.targets},
        "ad_channel": {c.id for c in config.channels},
        "opinion": {s.id for s in config.sources},
    }
    for i, job in enumerate(config.schedules.jobs):
        unknown = [t for t in job.targets if t not in known[job.spider]]
        if unknown:
            raise click.ClickException(
                f"{config.source}: schedules.jobs[{i}].targets: unknown target id(s) {', '.join(unknown)}"
            )


@click.command()
@config_option
def serve(config_file):
    """Run the patrol service: scheduled crawls, early-warning mail, until SIGTERM."""
    from crawler.schedule.service import Service

    config = load_or_exit(config_file)
    check_jobs(config)
    if not config.schedules.jobs:
        console.print("no schedules.jobs configured: only alert mail will be processed")
    Service(config).run()


@click.group()
def schedule():
    """The crawl schedule of `finpatrol serve`."""


@schedule.command("list")
@config_option
@json_option
def list_(config_file, as_json):
    """Every scheduled job and its next run."""
    from crawler.schedule.listing import schedule_rows

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
        table.add_row(r["id"], ", ".join(r["targets"]), r["trigger"], r["next_run_local"] or r["next_run"] or "-",
                      r["state"])
    console.print(table)


COMMANDS = (serve, schedule)
