"""``finpatrol report --since DATE --until DATE``: the period summary report (总结报告)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from crawler.commands.common import config_option, console, load_or_exit, office_time, open_db, time_value, writing
from crawler.store.db import utcnow


@click.command()
@config_option
@click.option("--since", callback=time_value, metavar="DATE", default=None,
              help="Period start, in alerts.timezone unless an offset is given (default: 30 days before --until).")
@click.option("--until", callback=time_value, metavar="DATE", default=None,
              help="Period end; a date alone includes that whole day (default: now).")
@click.option("--format", "fmt", type=click.Choice(("html", "md")), default="html", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (charts go to <stem>-charts/ next to it); default: stdout.")
def report(config_file, since, until, fmt, out):
    """Institutions patrolled, hits by category and lead unit, top risks, opinion trend, rectification."""
    from crawler.reports.data import period_report
    from crawler.reports.render import render_report

    config = load_or_exit(config_file)
    until = office_time(until, config, end=True) if until else utcnow()
    since = office_time(since, config) if since else until - timedelta(days=30)
    if since >= until:
        raise click.BadParameter("--since must be before --until")
    with open_db(config) as db:
        data = period_report(config, db, since, until)
    rendered = render_report(data, fmt, out)
    if out is None:
        click.echo(rendered.text)
        return
    with writing(out, out.parent):  # the charts go beside it
        files = rendered.write(out)
    console.print(f"report {data['period']} → {out} (+{len(files) - 1} chart file(s))")


COMMANDS = (report,)
