"""``finpatrol coverage``: proof that every institution was patrolled (全覆盖)."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.table import Table

from crawler.commands.common import (
    config_option, console, emit_json, json_option, load_or_exit, open_db_or_empty, shown_time,
)

STYLE = {"ok": "green", "partial": "yellow", "never": "red", "offline": "red", "blocked": "red",
         "domain_gone": "red", "not_found": "red", "other": "red", "failed": "red"}


@click.command()
@config_option
@json_option
def coverage(config_file, as_json):
    """Every target (and channel, source): last successful patrol, next scheduled one, failures."""
    from crawler.reports.coverage import coverage_rows
    from crawler.schedule.listing import OVERDUE

    config = load_or_exit(config_file)
    from crawler.store.runs import settle_abandoned

    with open_db_or_empty(config) as db:  # before the first patrol: every target "never", no DB file made
        settle_abandoned(db)  # a run whose process is gone (kill -9) is not an attempt still going on
        rows = coverage_rows(config, db)
    now = datetime.now(UTC)
    for r in rows:  # a stored next run in the past: the service has not run it
        r["next_scheduled_overdue"] = bool(r["next_scheduled"]) and datetime.fromisoformat(r["next_scheduled"]) < now
    if as_json:
        emit_json(rows)
        return
    table = Table(title="巡查覆盖 coverage", caption=f"times in {config.alerts.timezone}")
    for column in ("id", "kind", "name", "status", "last success", "pages", "failures", "next scheduled"):
        table.add_column(column, overflow="fold")
    for r in rows:
        failures = r["failure_summary"] or "-"
        status = f"[{STYLE.get(r['status'], 'white')}]{r['status']}[/]"
        table.add_row(r["id"], r["kind"], r["name"], status, shown_time(r["last_success"], config) or "never",
                      str(r["last_success_pages"]), failures, next_scheduled(r, config, OVERDUE))
    console.print(table)
    missing = [r["id"] for r in rows if r["kind"] == "target" and r["enabled"] and r["last_success"] is None]
    if missing:
        console.print(f"[red]never patrolled successfully: {', '.join(missing)}[/]")


def next_scheduled(row: dict, config, overdue: str) -> str:
    """The next scheduled patrol, marked when it is in the past (the service did not run it)."""
    shown = shown_time(row["next_scheduled"], config) or "-"
    return f"[red]{shown} ({overdue})[/]" if row["next_scheduled_overdue"] else shown


COMMANDS = (coverage,)
