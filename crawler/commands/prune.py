"""``finpatrol prune``: remove crawl diagnostics past the ``retention:`` ages (crawler.housekeeping)."""

from __future__ import annotations

import click
from rich.table import Table

from crawler.commands.common import (
    config_option, console, emit_json, json_option, load_or_exit, open_db, shown_time,
)


@click.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Only list what would be removed, and how much space it frees.")
@json_option
def prune(config_file, dry_run, as_json):
    """Remove old crawl logs and cut old runs' Scrapy stats to a summary (retention: in the config).

    Evidence is never removed: pages and their versions, hits, WARC files, changes, alerts and
    run records stay. `finpatrol serve` does the same once a day. Exits 1 when something could
    not be removed."""
    from crawler.housekeeping import prune as run_prune, size

    config = load_or_exit(config_file)
    with open_db(config) as db:
        result = run_prune(config, db, dry_run=dry_run)
    if as_json:
        emit_json([result.as_dict()])
    else:
        if dry_run and result.logs:
            table = Table(title="would remove 将删除的巡查日志", caption=f"times in {config.alerts.timezone}")
            for column in ("crawl", "started", "size", "outcome"):
                table.add_column(column, overflow="fold")
            for crawl in result.logs:
                table.add_row(crawl.crawl, shown_time(crawl.started.isoformat(), config), size(crawl.bytes), crawl.why)
            console.print(table)
        retention = config.retention
        console.print(f"{result.summary()}. Kept: crawl logs {_days(retention.crawl_logs_days)}, "
                      f"of crawls that went wrong {_days(retention.unhealthy_crawl_logs_days)}; evidence always.")
    for error in result.errors:
        click.echo(f"error: {error}", err=True)
    if result.errors:
        raise SystemExit(1)


def _days(days: int | None) -> str:
    return "forever" if days is None else f"{days} days"


COMMANDS = (prune,)
