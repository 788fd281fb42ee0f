"""Options and helpers shared by the ``finpatrol`` command modules."""

from __future__ import annotations

import json
import logging
import tempfile
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo
from pathlib import Path

import click
from rich.console import Console
from sqlalchemy.engine import make_url

from crawler.config import ConfigError, PatrolConfig, config_path, load_config
from crawler.config_yaml import closest, unknown_id
from crawler.store.db import StateDB
from crawler.store.search import Filters
from crawler.wording import local_time

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


def log_warnings(config: PatrolConfig) -> None:
    """Log once what ``check-config`` warns of (``config.warnings()``): for the commands that run
    unattended (``serve``, ``alerts send``), whose operator may never run check-config."""
    for warning in config.warnings():
        logger.warning("%s: %s", config.source, warning)


def missing_db_file(config: PatrolConfig) -> str | None:
    """The path of the SQLite state DB when that file does not exist yet; None when it does
    (or the DB is not a SQLite file)."""
    url = make_url(config.db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).exists():
            return url.database
    return None


def open_db(config: PatrolConfig, create: bool = False) -> StateDB:
    """The state DB. Unless ``create``, a SQLite file that does not exist is an error, not
    an empty DB: a mistyped ``state_dir`` must not answer "no hits". Only the commands that
    write what they found (``patrol``, ``demo``) create it; ``serve`` opens it itself."""
    missing = None if create else missing_db_file(config)
    if missing is not None:
        raise click.ClickException(
            f"{config.source}: no state DB at {missing}: nothing has been patrolled with this "
            "config yet; check state_dir, or run `finpatrol patrol` first"
        )
    return StateDB(config.db_url)


@contextmanager
def open_db_or_empty(config: PatrolConfig):
    """The state DB if it exists, else an empty stand-in, never a new state DB: for the commands
    that answer from the config before the first patrol too (``coverage``: every target "never";
    ``schedule list``: the jobs as their triggers give them). The stand-in is a throwaway file,
    not an in-memory DB, since reading the job store disposes of the engine's connections."""
    if missing_db_file(config) is None:
        with StateDB(config.db_url) as db:
            yield db
        return
    with tempfile.TemporaryDirectory(prefix="finpatrol-empty-") as folder, \
            StateDB(f"sqlite:///{Path(folder) / 'empty.db'}") as db:
        yield db


def cannot_write(path, error: OSError) -> click.ClickException:
    """``cannot write PATH: No such file or directory``, naming the folder on the way when that is at fault."""
    where = f" ({error.filename})" if error.filename and str(error.filename) != str(path) else ""
    return click.ClickException(f"cannot write {path}: {error.strerror or error}{where}")


@contextmanager
def writing(path, *also):
    """Turn an OSError about the output ``path`` (the file, a file in it, a folder on its way
    there) or the other paths ``also`` written with it into one line naming ``path``, instead of
    a traceback; other OSErrors (reading the evidence, say) pass on unchanged."""
    try:
        yield
    except OSError as e:
        if e.filename is None or any(_related(Path(p), Path(e.filename)) for p in (path, *also)):
            raise cannot_write(path, e) from None
        raise


def _related(path: Path, other: Path) -> bool:
    path, other = path.absolute(), other.absolute()
    return path == other or other in path.parents or path in other.parents


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


def shown_time(value: str | None, config: PatrolConfig) -> str:
    """A stored (UTC) time as tables show it: ``2026-11-29 17:01`` in ``alerts.timezone``."""
    return local_time(value, config.alerts.timezone)


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
    fn = target_option(fn)
    return fn


def target_option(fn):
    return click.option("--target", "targets", multiple=True, metavar="ID",
                        help="Only this target, channel or source (repeatable; channel:ID, source:ID too).")(fn)


def store_ids(config: PatrolConfig, targets, db: StateDB | None = None) -> tuple[str, ...]:
    """The ids the state DB stores the pages of ``--target`` ids under.

    A target's id is its own; a channel's or source's pages are stored as ``channel:ID`` or
    ``source:ID`` (the ids `hits` shows), and either form is accepted, as `patrol --target`
    takes the bare one. An id that is no longer configured but has pages or patrols in the
    state DB (a target removed from the config) is kept: its hits are still there. Any
    other id is a usage error, with the close ids it may have meant.
    """
    from crawler.config_channels import pseudo_target

    names: dict[str, list[str]] = {}
    for t in config.targets:
        names.setdefault(t.id, []).append(t.id)
    for kind, listings in (("channel", config.channels), ("source", config.sources)):
        for listing in listings:
            stored = pseudo_target(kind, listing.id)
            names.setdefault(listing.id, []).append(stored)
            names.setdefault(stored, []).append(stored)
    out: list[str] = []
    unknown = []
    for given in targets:
        if given in names:
            out += names[given]
        else:
            unknown.append(given)
    if unknown:
        in_db = stored_target_ids(config, db, unknown)
        out += [given for given in unknown if given in in_db]
        unknown = [given for given in unknown if given not in in_db]
        if unknown:
            message = _unknown_ids(config, unknown, sorted(set(names) | in_db))
            raise click.BadParameter(message, param_hint="'--target'")
    return tuple(dict.fromkeys(out))


def _unknown_ids(config: PatrolConfig, unknown: list[str], known: list[str]) -> str:
    parts = []
    for given in unknown:
        close = closest(given, known, n=3)
        parts.append(f"{given!r}" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
    example = " / ".join([f"channel:{c.id}" for c in config.channels[:1]]
                         + [f"source:{s.id}" for s in config.sources[:1]])
    ids = "ids" if len(parts) > 1 else "id"
    return (f"unknown {ids} {', '.join(parts)}: not a target, channel or source of {config.source}, and the "
            f"state DB has nothing of it; write a target's id, or a channel's or source's id alone or as they are "
            f"stored ({example or 'channel:ID, source:ID'}); `finpatrol coverage` lists every id")


def stored_target_ids(config: PatrolConfig, db: StateDB | None, given: list[str] | None = None) -> set[str]:
    """The ids of every target (and channel, source) patrolled into the state DB, and those of
    ``given`` (without it: of any id) that have pages, hits or patrols there; none before the
    first patrol."""
    if db is None:
        if missing_db_file(config) is not None:
            return set()
        with StateDB(config.db_url) as opened:
            return stored_target_ids(config, opened, given)
    from sqlalchemy import select, union

    from crawler.store.models import Hit, Page, RunTarget, TargetRow

    query = union(select(TargetRow.id), *(
        (select(column) if given is None else select(column).where(column.in_(given))).distinct()
        for column in (Page.target_id, Hit.target_id, RunTarget.target_id)))
    with db.new_session() as session:
        return set(session.scalars(query))


def time_span(config: PatrolConfig, since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` as UTC bounds (:func:`office_time`); a usage error when the span
    is empty, so that reversed dates are not answered with "nothing matches"."""
    start, end = office_time(since, config), office_time(until, config, end=True)
    if start is not None and end is not None and start >= end:
        raise click.UsageError(f"--since must be before --until (got --since {since}, --until {until})")
    return start, end


def make_filters(config: PatrolConfig, targets, category, risk, since, until, db: StateDB | None = None) -> Filters:
    if category:
        from classifiers import CATEGORIES

        if category not in CATEGORIES:
            raise click.BadParameter(unknown_id("category", category, CATEGORIES))
    return Filters(store_ids(config, targets, db), category, risk, *time_span(config, since, until))


def emit_json(rows) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))
