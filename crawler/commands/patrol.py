"""``finpatrol patrol``, ``check-config`` and ``runs``."""

from __future__ import annotations

import click
from rich.live import Live
from rich.table import Table

from crawler.commands.common import (
    ADD_TARGETS, ROW_COUNT, config_option, console, emit_json, json_option, load_or_exit, missing_db_file, open_db,
    shown_time,
)
from crawler.config import PatrolConfig
from crawler.store.db import parse_time
from crawler.store.queries import get_run, list_runs
from crawler.store.runs import settle_abandoned


def progress_table(config: PatrolConfig, chosen: list[str], progress) -> Table:
    table = Table(title="巡查进度 patrol progress", expand=False)
    for column in ("target", "name", "pages", "hits", "new hits"):
        table.add_column(column, justify="right" if column in ("pages", "hits", "new hits") else "left")
    names = {t.id: t.name for t in config.targets}
    for target_id in chosen:
        table.add_row(
            target_id, names.get(target_id, ""), str(progress.pages.get(target_id, 0)),
            str(progress.hits.get(target_id, 0)), str(progress.new_hits.get(target_id, 0)),
        )
    return table


def summary_table(config: PatrolConfig, run: dict) -> Table:
    table = Table(title=run_title(run, config))
    for column in ("target", "pages", "failed", "hits", "new hits", "errors"):
        table.add_column(column)
    for target_id, counts in run["targets"].items():
        errors = ", ".join(f"{k}×{v}" for k, v in sorted(counts["errors"].items())) or "-"
        table.add_row(
            target_id, str(counts["pages"]), str(counts["failed"]), str(counts["hits"]),
            str(counts["new_hits"]), errors,
        )
    return table


def run_title(run: dict, config: PatrolConfig) -> str:
    """'patrol run 3: ok (finished), started 2026-11-27 10:00 (Asia/Shanghai), took 3 min 25 s':
    the start in ``alerts.timezone``, as `hits` and `changes` show times."""
    reason = f" ({run['finish_reason']})" if run["finish_reason"] else ""
    if run["finished_at"]:
        seconds = (parse_time(run["finished_at"]) - parse_time(run["started_at"])).total_seconds()
        took = f"took {duration(seconds)}"
    else:
        took = "not finished"
    started = f"{shown_time(run['started_at'], config)} ({config.alerts.timezone})"
    return f"patrol run {run['id']}: {run['status']}{reason}, started {started}, {took}"


def duration(seconds: float) -> str:
    """12 s, 3 min 25 s, 2 h 05 min: whole seconds, the two largest units."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def check_rules(config: PatrolConfig) -> None:
    from classifiers import Classifier, RuleFileError

    try:
        Classifier(extra_rule_files=config.rules_files, yield_ceiling=config.yield_ceiling)
    except RuleFileError as e:
        raise click.ClickException(f"{config.source}: rules_files: {e}") from None


def chosen_ids(config: PatrolConfig, targets: tuple[str, ...], spiders: tuple[str, ...]) -> list[str]:
    """Ids (pseudo ids for channels and sources) the spiders will crawl; unknown ids are an error."""
    from crawler.config_channels import pseudo_target

    pools = {
        "site_patrol": [(t.id, t.id, t.enabled) for t in config.targets],
        "ad_channel": [(c.id, pseudo_target("channel", c.id), c.enabled) for c in config.channels],
        "opinion": [(s.id, pseudo_target("source", s.id), s.enabled) for s in config.sources],
    }
    known = {i for name in spiders for i, _, _ in pools[name]}
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise click.ClickException("; ".join(_not_patrolled(t, pools, spiders) for t in unknown))
    return [pid for name in spiders for i, pid, on in pools[name] if on and (not targets or i in targets)]


SPIDER_KINDS = {"site_patrol": ("target", "--sites (or no spider flag)"), "ad_channel": ("channel", "--channels"),
                "opinion": ("source", "--sources")}


def _not_patrolled(given: str, pools: dict, spiders: tuple[str, ...]) -> str:
    """Why ``--target given`` is not among what ``spiders`` crawl: a configured id of another
    kind names the flag that patrols it; ``channel:ID``/``source:ID`` names ``--target ID``."""
    asked = " or ".join(SPIDER_KINDS[name][0] for name in spiders)
    other = [name for name, pool in pools.items() if any(i == given for i, _, _ in pool)]
    if other:
        kinds = " and ".join(f"a {SPIDER_KINDS[name][0]}" for name in other)
        flags = "; ".join(f"{SPIDER_KINDS[name][0]}s are patrolled with {SPIDER_KINDS[name][1]}" for name in other)
        return f"{given} is {kinds}, not a {asked}: {flags}"
    pseudo = [(name, i) for name, pool in pools.items() for i, pid, _ in pool if pid == given]
    if pseudo:
        name, bare = pseudo[0]
        return f"{given}: give the {SPIDER_KINDS[name][0]} as --target {bare} (with {SPIDER_KINDS[name][1]})"
    return f"unknown id {given}: not a configured target, channel or source (see `finpatrol targets list`)"


def run_and_report(config: PatrolConfig, targets: tuple[str, ...], quiet: bool = False,
                   spiders: tuple[str, ...] = ("site_patrol",)) -> dict:
    """Patrol with live progress, print the summary of each crawl; return the first failed
    run record, else the first."""
    from crawler.patrol import Progress, run_patrol

    check_rules(config)
    chosen = chosen_ids(config, targets, spiders)
    if not chosen:
        hint = "" if config.targets else f": no targets yet; {ADD_TARGETS}"
        raise click.ClickException(f"{config.source}: nothing enabled to patrol{hint}")
    if quiet or not console.is_terminal:
        progress = run_patrol(config, targets, spiders=spiders)
    else:
        # The table is built when the display refreshes (4 times a second), not per page.
        progress = Progress()
        with Live(console=console, transient=True, refresh_per_second=4,
                  get_renderable=lambda: progress_table(config, chosen, progress)):
            run_patrol(config, targets, spiders=spiders, progress=progress)
    with open_db(config, create=True) as db:
        runs = [r for r in (get_run(db, i) for i in progress.run_ids) if r is not None]
    if not runs:
        raise click.ClickException("the patrol did not start; run with -v for the crawler log")
    for run in runs:
        console.print(summary_table(config, run))
    return next((r for r in runs if r["status"] == "failed"), runs[0])


@click.command()
@config_option
@click.option("--target", "targets", multiple=True, metavar="ID",
              help="Only this target, channel or source (repeatable).")
@click.option("--sites", is_flag=True, help="Patrol the targets' sites (the default without other flags).")
@click.option("--channels", is_flag=True, help="Patrol the advertising channels (channels:).")
@click.option("--sources", is_flag=True, help="Read the opinion sources (sources:).")
def patrol(config_file, targets, sites, channels, sources):
    """Patrol the targets' sites (and/or channels and opinion sources) once and store what they say."""
    config = load_or_exit(config_file)
    spiders = tuple(name for flag, name in ((sites, "site_patrol"), (channels, "ad_channel"),
                                            (sources, "opinion")) if flag) or ("site_patrol",)
    run = run_and_report(config, tuple(targets), spiders=spiders)
    if run["status"] == "failed":
        raise SystemExit(1)


@click.command("check-config")
@config_option
def check_config(config_file):
    """Validate the config (and extra rule files) without crawling."""
    config = load_or_exit(config_file)
    check_rules(config)
    for warning in config.warnings():
        click.echo(f"{config.source}: warning: {warning}", err=True)
    if not config.targets:
        click.echo(f"{config.source}: warning: no targets yet; {ADD_TARGETS}", err=True)
    for warning in _unconfigured_warnings(config):
        click.echo(f"{config.source}: warning: {warning}", err=True)
    console.print(f"{config.source}: OK, {len(config.targets)} target(s), state in {config.state_dir}")
    if note := _stale_verdicts_note(config):
        console.print(note)


@click.command()
@config_option
@json_option
@click.option("--limit", type=ROW_COUNT, default=20, show_default=True, help="How many runs, newest first.")
def runs(config_file, as_json, limit):
    """List patrol runs with their status and per-target counts."""
    config = load_or_exit(config_file)
    with open_db(config) as db:
        settle_abandoned(db)  # a run whose process is gone (kill -9) would show running for ever
        records = list_runs(db, limit)
    if as_json:
        emit_json(records)
        return
    if not records:
        console.print(f"no patrol runs yet in {config.state_dir}")
    for run in records:
        console.print(summary_table(config, run))


def _stale_verdicts_note(config) -> str:
    """What the next patrol will judge again because the rules, the yield ceiling or a kind changed."""
    from crawler.conditional import current_stamps
    from crawler.store.pages import stale_verdicts

    if missing_db_file(config) is not None:
        return ""
    with open_db(config) as db:
        stale = stale_verdicts(db, current_stamps(config))
    if not stale:
        return ""
    return (f"{sum(stale.values())} stored page(s) of {len(stale)} target(s) were classified with other rules, "
            f"yield_ceiling or kind ({', '.join(sorted(stale))}): the next patrol fetches them whole and judges "
            "them again; a hit the new rules no longer find on an unchanged page is withdrawn, not rectified")


def _unconfigured_warnings(config) -> list[str]:
    """Stored targets gone from the config (removed or renamed) whose hits are still open."""
    from crawler.store.runs import unconfigured_targets

    if missing_db_file(config) is not None:
        return []
    with open_db(config) as db:
        stale = unconfigured_targets(db, [t.id for t in config.targets])
    return [f"the state DB holds {hits} open hit(s) of target {target_id!r} ({name}), which is no longer "
            f"configured; if it was renamed, give it its old id back, else its hits stay open "
            f"(`finpatrol dossier {target_id}` still shows them)" for target_id, name, hits in stale]


COMMANDS = (patrol, check_config, runs)
