"""``finpatrol report --since DATE --until DATE``: the period summary report (总结报告)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import click

from crawler.commands.common import config_option, console, load_or_exit, open_db, time_value
from crawler.store.db import utcnow


def period_end(ctx, param, value):
    """``--until``: a date alone means the end of that day, so 11-01..11-30 is all of November."""
    end = time_value(ctx, param, value)
    return end + timedelta(days=1) if end is not None and _is_date(value) else end


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


@click.command()
@config_option
@click.option("--since", callback=time_value, metavar="DATE", default=None,
              help="Period start (default: 30 days before --until).")
@click.option("--until", callback=period_end, metavar="DATE", default=None,
              help="Period end; a date alone includes that whole day (default: now).")
@click.option("--format", "fmt", type=click.Choice(("html", "md")), default="html", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (charts go to <stem>-charts/ next to it); default: stdout.")
def report(config_file, since, until, fmt, out):
    """Institutions patrolled, hits by category and lead unit, top risks, opinion trend, rectification."""
    from crawler.reports.data import period_report
    from crawler.reports.render import render_report

    config = load_or_exit(config_file)
    until = until or utcnow()
    since = since or until - timedelta(days=30)
    if since >= until:
        raise click.BadParameter("--since must be before --until")
    with open_db(config) as db:
        data = period_report(config, db, since, until)
    rendered = render_report(data, fmt, out)
    if out is None:
        click.echo(rendered.text)
        return
    files = rendered.write(out)
    console.print(f"report {data['since']} – {data['until']} → {out} (+{len(files) - 1} chart file(s))")


COMMANDS = (report,)
