"""``finpatrol changes``: what each patrol found added, changed or gone, with the passages."""

from __future__ import annotations

import click
from rich.markup import escape

from crawler.commands.common import (
    ROW_COUNT, config_option, console, emit_json, json_option, load_or_exit, office_time, open_db, store_ids,
    shown_time, target_option, time_value,
)
from crawler.store.change_report import list_changes, summarize
from crawler.store.queries import get_run

KIND_STYLE = {"added": "green", "changed": "yellow", "gone": "red"}


def print_change(change: dict, config) -> None:
    style = KIND_STYLE[change["kind"]]
    console.print(f"  [{style}]{change['kind']:7}[/] {escape(change['url'])}  [dim]{shown_time(change['at'], config)}[/]")
    for passage in change["removed_passages"]:
        console.print(f"      [red]- {escape(passage)}[/]")
    for passage in change["added_passages"]:
        console.print(f"      [green]+ {escape(passage)}[/]")
    hits = change["hits"]
    removed = hits["removed"]
    because = " (rules changed, same words)" if change["by_rules"] else ""
    if removed and removed["reclassified"] and removed["replaced_by"]:
        console.print(f"      hit {removed['id']} judged again → hit {removed['replaced_by']} "
                      f"(rules changed, same words; {reworded(removed, hits)})")
        hits = hits | {"opened": None, "reopened": None, "back": None}  # the successor is named above
    elif removed and removed["reclassified"]:
        console.print(f"      hit {removed['id']} withdrawn{because}: {', '.join(removed['labels'])}")
    elif removed and removed.get("replaced_by"):
        console.print(f"      hit {removed['id']} reworded → hit {removed['replaced_by']} ({reworded(removed, hits)})")
    elif removed:
        why = "taken down: a risk notice, not rectified" if removed.get("taken_down") else "rectified"
        console.print(f"      hit {removed['id']} removed ({why}): {', '.join(removed['labels'])}")
    for event in ("opened", "reopened", "back"):
        if hits[event]:
            note = because or (" (said in other words meanwhile: not rectified)" if event == "back" else "")
            console.print(f"      hit {hits[event]['id']} {event}{note}: {', '.join(hits[event]['labels'])}")


def reworded(removed: dict, hits: dict) -> str:
    """"still <shared labels>", and "no longer <labels>" for those the successor dropped."""
    successor = hits["opened"] or hits["reopened"] or hits["back"]
    labels = successor["labels"] if successor else []
    still = [label for label in removed["labels"] if label in labels]
    dropped = [label for label in removed["labels"] if label not in labels]
    return f"still {', '.join(still)}" + (f"; no longer {', '.join(dropped)}" if dropped else "")


@click.command()
@config_option
@json_option
@target_option
@click.option("--since", callback=time_value, metavar="DATE",
              help="Only changes from this time on (a date: its start in alerts.timezone).")
@click.option("--run", "run_id", type=ROW_COUNT, metavar="N", help="Only the changes found by patrol run N.")
def changes(config_file, as_json, targets, since, run_id):
    """List pages added, changed and gone per patrol and target, with the changed passages."""
    config = load_or_exit(config_file)
    with open_db(config) as db:
        if run_id is not None and get_run(db, run_id) is None:
            raise click.ClickException(f"no patrol run {run_id} in {config.state_dir}; `finpatrol runs` lists them")
        rows = list_changes(db, store_ids(config, targets, db), office_time(since, config), run_id)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no changes match")
        return
    counts = summarize(rows)
    console.print(f"[dim]times in {config.alerts.timezone}[/]")
    for (run, target), kinds in counts.items():
        summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
        console.print(f"[bold]run {run}, target {escape(target)}[/]: {summary}")
        for change in rows:
            if (change["run"], change["target"]) == (run, target):
                print_change(change, config)


COMMANDS = (changes,)
