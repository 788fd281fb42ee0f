"""The ``finpatrol`` command: patrol, inspect hits, search, manage targets, demo.

Every command takes ``--config FILE`` (default ``patrol.yaml`` or
``$FINPATROL_CONFIG``); data commands take ``--json`` and then print one JSON
object per line, a stable interface for scripts.

A command's module is imported only when that command runs (or for ``--help``):
a patrol then never loads the Elasticsearch client, the scheduler or the
reports, and neither do its extraction worker processes, which re-import this
module as their ``__main__``.
"""

from __future__ import annotations

import importlib
import logging
import sys
from datetime import datetime

import click

# command name → module under crawler.commands that defines it (in its COMMANDS list)
COMMAND_MODULES = {
    "patrol": "patrol", "check-config": "patrol", "runs": "patrol",
    "hits": "inspect", "search": "inspect", "show": "inspect", "reindex": "inspect",
    "targets": "targets", "demo": "demo", "es": "es", "alerts": "alerts",
    "serve": "serve", "schedule": "serve", "evidence": "evidence", "changes": "changes",
    "candidates": "candidates", "coverage": "coverage", "dossier": "dossier", "report": "report",
    "prune": "prune",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"crawler.commands.{module_name}")
        return next(command for command in module.COMMANDS if command.name == cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="finpatrol", message="finpatrol %(version)s")
def main(verbose: int) -> None:
    """finpatrol: online patrol and early warning for internet-finance risk."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    formatter = (BriefFormatter if verbose == 0 else ZonedFormatter)(LOG_FORMAT)
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)  # Scrapy's loggers set their own levels; the handler decides
        handler.setFormatter(formatter)
    logging.getLogger("scrapy.downloadermiddlewares.robotstxt").addFilter(demote_robots_errors)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def demote_robots_errors(record: logging.LogRecord) -> bool:
    """Scrapy logs a robots.txt it could not download at ERROR, with a traceback: a site that
    is down shows it on every patrol, though the patrol counts the failures of its pages
    (``errors`` in the summary) and the host breaker warns of a dead host once. INFO (``-v``)."""
    if record.levelno == logging.ERROR:
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True


class ZonedFormatter(logging.Formatter):
    """Times with their UTC offset (2026-11-27T10:00:00.123+08:00): a server's clock is often
    UTC while the office and the CLI's tables read local time, and a log line without its
    zone is eight hours off for someone."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


class BriefFormatter(ZonedFormatter):
    """One line per record, no traceback: the default, since a patrol's ordinary failures
    (a refused connection, a timeout) are logged by Scrapy with one, and are counted in
    the run's summary anyway; ``-v`` shows them."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(record)


if __name__ == "__main__":
    sys.exit(main())
