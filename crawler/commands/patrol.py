"""``finpatrol patrol``, ``check-config`` and ``runs``."""

from __future__ import annotations

import click
from rich.live import Live
from rich.table import Table

from crawler.commands.common import config_option, console, emit_json, json_option, load_or_exit, open_db
from crawler.config import PatrolConfig
from crawler.store.queries import get_run, list_runs


def progress_table(config: PatrolConfig, chosen: list[str], progress) -> Table:
    table = Table(title="巡查进度 patrol progress", expand=False)
    for column in ("target", "name", "pages", "hits", "new hits"):
        table.add_column(column, justify="right" if column in ("pages", "hits", "new hits") else "left")
    for target_id in chosen:
        target = config.target(target_id)
        table.add_row(
            target_id, target.name, str(progress.pages.get(target_id, 0)),
            str(progress.hits.get(target_id, 0)), str(progress.new_hits.get(target_id, 0)),
        )
    return table


def summary_table(config: PatrolConfig, run: dict) -> Table:
    table = Table(title=f"patrol run {run['id']}: {run['status']} ({run['finish_reason']})")
    for column in ("target", "pages", "failed", "hits", "new hits", "errors"):
        table.add_column(column)
    for target_id, counts in run["targets"].items():
        errors = ", ".join(f"{k}×{v}" for k, v in sorted(counts["errors"].items())) or "-"
        table.add_row(
            target_id, str(counts["pages"]), str(counts["failed"]), str(counts["hits"]),
            str(counts["new_hits"]), errors,
        )
    return table


def check_rules(config: PatrolConfig) -> None:
    from classifiers import Classifier, RuleFileError

    try:
        Classifier(extra_rule_files=config.rules_files, yield_ceiling=config.yield_ceiling)
    except RuleFileError as e:
        raise click.ClickException(f"{config.source}: rules_files: {e}") from None


def run_and_report(config: PatrolConfig, targets: tuple[str, ...], quiet: bool = False) -> dict:
    """Patrol with live progress, print the summary, return the run record."""
    from crawler.patrol import run_patrol

    check_rules(config)
    unknown = [t for t in targets if t not in {x.id for x in config.targets}]
    if unknown:
        raise click.ClickException(f"unknown target id(s): {', '.join(unknown)}")
    chosen = [t.id for t in config.targets if t.enabled and (not targets or t.id in targets)]
    if not chosen:
        raise click.ClickException(f"{config.source}: no enabled targets to patrol")
    if quiet or not console.is_terminal:
        progress = run_patrol(config, targets)
    else:
        with Live(console=console, transient=True, refresh_per_second=4) as live:
            progress = run_patrol(
                config, targets,
                on_item=lambda p, _item: live.update(progress_table(config, chosen, p)),
            )
    db = open_db(config)
    try:
        run = get_run(db, progress.run_id) if progress.run_id else None
    finally:
        db.close()
    if run is None:
        raise click.ClickException("the patrol did not start; run with -v for the crawler log")
    console.print(summary_table(config, run))
    return run


@click.command()
@config_option
@click.option("--target", "targets", multiple=True, metavar="ID", help="Patrol only this target (repeatable).")
def patrol(config_file, targets):
    """Patrol the configured targets once and store what they say."""
    config = load_or_exit(config_file)
    run = run_and_report(config, tuple(targets))
    if run["status"] == "failed":
        raise SystemExit(1)


@click.command("check-config")
@config_option
def check_config(config_file):
    """Validate the config (and extra rule files) without crawling."""
    config = load_or_exit(config_file)
    check_rules(config)
    console.print(f"{config.source}: OK, {len(config.targets)} target(s), state in {config.state_dir}")


@click.command()
@config_option
@json_option
@click.option("--limit", default=20, show_default=True, help="How many runs, newest first.")
def runs(config_file, as_json, limit):
    """List patrol runs with their status and per-target counts."""
    config = load_or_exit(config_file)
    db = open_db(config)
    try:
        records = list_runs(db, limit)
    finally:
        db.close()
    if as_json:
        emit_json(records)
        return
    for run in records:
        console.print(summary_table(config, run))


COMMANDS = (patrol, check_config, runs)
