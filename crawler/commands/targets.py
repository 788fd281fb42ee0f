"""``finpatrol targets list | import``: the institutions under patrol."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from crawler.commands.common import ADD_TARGETS, config_option, console, emit_json, json_option, load_or_exit
from crawler.config import ConfigError, config_path, load_config


@click.group()
def targets():
    """Registered institutions and their sites."""


@targets.command("list")
@config_option
@json_option
def list_targets(config_file, as_json):
    """Show the configured targets."""
    config = load_or_exit(config_file)
    if as_json:
        emit_json(t.model_dump(mode="json") for t in config.targets)
        return
    if not config.targets:
        click.echo(f"no targets in {config.source} yet; {ADD_TARGETS}")
        return
    table = Table(title=f"{len(config.targets)} target(s) in {config.source}")
    for column in ("id", "name", "business", "urls", "scope", "limits", "render"):
        table.add_column(column, overflow="fold")
    for t in config.targets:
        table.add_row(
            t.id + ("" if t.enabled else " (disabled)"), t.name, t.business, "\n".join(t.urls),
            ", ".join(t.allowed_domains), f"{t.max_pages} pages, depth {t.max_depth}", t.render,
        )
    console.print(table)


@targets.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
def import_targets_command(csv_file, config_file):
    """Merge a target spreadsheet into the config, by id; nothing changes if any row is wrong.

    Excel's exports are read: CSV UTF-8, CSV as GB18030/GBK (Chinese Windows),
    and "Unicode text" (UTF-16, tab-separated).
    Columns (English or Chinese): id/编号, name/机构名称, business/业态, urls/网址,
    and optionally aliases/简称, credit_code/统一社会信用代码, allowed_domains/域名,
    max_pages, max_depth, render. Lists are separated by ';' or spaces.
    """
    from crawler.targets_csv import import_targets

    path = config_path(config_file)
    existed = path.exists()
    try:
        added, updated = import_targets(path, csv_file)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    if existed:
        console.print(f"{path}: {added} target(s) added, {updated} updated from {csv_file}")
    else:  # said plainly: a mistyped --config would otherwise look like a successful import
        console.print(f"[yellow]{path} did not exist: created it[/] with {added} target(s) from {csv_file}")
    for warning in load_config(path).warnings():
        click.echo(f"{path}: warning: {warning}", err=True)


COMMANDS = (targets,)
