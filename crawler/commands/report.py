"""``finpatrol report --since DATE --until DATE``: the period summary report (总结报告)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from zoneinfo import ZoneInfo

import click

from crawler.commands.common import config_option, console, load_or_exit, open_db, time_value
from crawler.store.db import utcnow


def checked_time(ctx, param, value):
    """The option as written, once it parses; it is read in the office's time zone later."""
    if value is not None:
        time_value(ctx, param, value)
    return value


def local_bound(value: str, zone: ZoneInfo, end: bool = False) -> datetime:
    """A period bound in UTC: a date or a time without offset is read in ``zone``; a date
    alone as the end includes that whole day, so 11-01..11-30 is all of November."""
    if _is_date(value):
        day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
        return datetime.combine(day, time(), zone).astimezone(UTC)
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


@click.command()
@config_option
@click.option("--since", callback=checked_time, metavar="DATE", default=None,
              help="Period start, in alerts.timezone unless an offset is given (default: 30 days before --until).")
@click.option("--until", callback=checked_time, metavar="DATE", default=None,
              help="Period end; a date alone includes that whole day (default: now).")
@click.option("--format", "fmt", type=click.Choice(("html", "md")), default="html", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (charts go to <stem>-charts/ next to it); default: stdout.")
def report(config_file, since, until, fmt, out):
    """Institutions patrolled, hits by category and lead unit, top risks, opinion trend, rectification."""
    from crawler.reports.data import period_report
    from crawler.reports.render import render_report

    config = load_or_exit(config_file)
    zone = ZoneInfo(config.alerts.timezone)
    until = local_bound(until, zone, end=True) if until else utcnow()
    since = local_bound(since, zone) if since else until - timedelta(days=30)
    if since >= until:
        raise click.BadParameter("--since must be before --until")
    with open_db(config) as db:
        data = period_report(config, db, since, until)
    rendered = render_report(data, fmt, out)
    if out is None:
        click.echo(rendered.text)
        return
    files = rendered.write(out)
    console.print(f"report {data['period']} → {out} (+{len(files) - 1} chart file(s))")


COMMANDS = (report,)
