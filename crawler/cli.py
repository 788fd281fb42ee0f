"""The ``finpatrol`` command: patrol, inspect hits, search, manage targets, demo.

Every command takes ``--config FILE`` (default ``patrol.yaml`` or
``$FINPATROL_CONFIG``); data commands take ``--json`` and then print one JSON
object per line, a stable interface for scripts.
"""

from __future__ import annotations

import logging
import sys

import click

from crawler.commands import alerts, changes, demo, es, evidence, inspect, patrol, serve, targets
from crawler.commands import candidates, coverage, dossier, report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """finpatrol: online patrol and early warning for internet-finance risk."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)  # Scrapy's loggers set their own levels; the handler decides


for _module in (patrol, inspect, targets, demo, es, alerts, serve, evidence, changes,
                candidates, coverage, dossier, report):
    for _command in _module.COMMANDS:
        main.add_command(_command)

if __name__ == "__main__":
    sys.exit(main())
