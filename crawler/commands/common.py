"""Options and helpers shared by the ``finpatrol`` command modules."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo
from pathlib import Path

import click
from rich.console import Console
from sqlalchemy.engine import make_url

from crawler.config import ConfigError, PatrolConfig, config_path, load_config
from crawler.store.db import StateDB
from crawler.store.search import Filters

logger = logging.getLogger(__name__)
console = Console(highlight=False, soft_wrap=True)  # piped lines stay whole (sha256sum -c, grep)
RISKS = ("none", "low", "medium", "high")
ROW_COUNT = click.IntRange(1, 2**63 - 1)
"""Type of ids and --limit: at least 1 (a limit of 0 is no answer), at most SQLite's 64-bit integer."""
ADD_TARGETS = "add them under `targets:` or import the office's list with `finpatrol targets import FILE.csv`"


def load_or_exit(path: str | None) -> PatrolConfig:
    try:
        return load_config(config_path(path))
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


def open_db(config: PatrolConfig, create: bool = False) -> StateDB:
    """The state DB. Unless ``create``, a SQLite file that does not exist is an error, not
    an empty DB: a mistyped ``state_dir`` must not answer "no hits"."""
    url = make_url(config.db_url)
    if not create and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).exists():
            raise click.ClickException(
                f"{config.source}: no state DB at {url.database}: nothing has been patrolled with this "
                "config yet; check state_dir, or run `finpatrol patrol` first"
            )
    return StateDB(config.db_url)


def config_option(fn):
    return click.option(
        "--config", "config_file", metavar="FILE", default=None,
        help="Patrol config (default: $FINPATROL_CONFIG or ./patrol.yaml).",
    )(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")(fn)


def time_value(ctx, param, value):
    """A date or time option as written, once it parses; :func:`office_time` reads it with the config."""
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date like 2026-11-27 or 2026-11-27T08:00+08:00, got {value!r}")
    return value


def office_time(value: str | None, config: PatrolConfig, end: bool = False) -> datetime | None:
    """A bound in UTC. A date, or a time without offset, is read in ``alerts.timezone``
    (the office's day, not UTC's); a date alone as an ``end`` includes that whole day."""
    if value is None:
        return None
    zone = ZoneInfo(config.alerts.timezone)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)
    return datetime.combine(day + timedelta(days=1 if end else 0), time(), zone).astimezone(UTC)


def filter_options(fn):
    fn = click.option("--until", callback=time_value, metavar="DATE",
                      help="Only before this time; a date alone includes that day (alerts.timezone).")(fn)
    fn = click.option("--since", callback=time_value, metavar="DATE",
                      help="Only from this time on (a date: its start in alerts.timezone).")(fn)
    fn = click.option("--risk", type=click.Choice(RISKS), help="Only this risk level.")(fn)
    fn = click.option("--category", metavar="ID", help="Only this category id (see README).")(fn)
    fn = click.option("--target", "targets", multiple=True, metavar="ID", help="Only this target (repeatable).")(fn)
    return fn


def make_filters(config: PatrolConfig, targets, category, risk, since, until) -> Filters:
    if category:
        from classifiers import CATEGORIES

        if category not in CATEGORIES:
            raise click.BadParameter(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    return Filters(tuple(targets), category, risk, office_time(since, config), office_time(until, config, end=True))


def emit_json(rows) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))
