"""``finpatrol candidates list | promote ID | dismiss ID``: unregistered sites (可疑网站)."""

from __future__ import annotations

import click
from rich.table import Table

from crawler.commands.common import (
    ROW_COUNT, config_option, console, emit_json, json_option, load_or_exit, open_db, shown_time, stored_target_ids,
)
from crawler.config import BUSINESS_TYPES, ConfigError


@click.group()
def candidates():
    """Unregistered sites reached from channels and opinion sources that advertise finance."""


@candidates.command("list")
@config_option
@json_option
@click.option("--status", type=click.Choice(("open", "promoted", "dismissed")), default=None)
def list_(config_file, as_json, status):
    """Candidates, most recently seen first."""
    from crawler.discovery.candidates import list_candidates
    from crawler.discovery.models import ensure_schema

    config = load_or_exit(config_file)
    with open_db(config) as db:
        ensure_schema(db)
        rows = list_candidates(db, status)
    if as_json:
        emit_json(rows)
        return
    table = Table(title="可疑网站 candidates")
    for column in ("id", "domain", "status", "companies", "restricted words", "categories", "via", "ICP"):
        table.add_column(column, overflow="fold")
    for r in rows:
        restricted = "; ".join(f"{n}: {'、'.join(w)}" for n, w in r["restricted"].items()) or "-"
        state = f"{r['status']} → {r['promoted_target']}" if r["promoted_target"] else r["status"]
        table.add_row(str(r["id"]), r["domain"], state, "、".join(r["company_names"]) or "-", restricted,
                      ", ".join(r["categories"]), ", ".join(r["via"]), " ".join(r["icp"]) or "-")
    console.print(table)


_NO_CANDIDATE = "no candidate {}; see `finpatrol candidates list`"


def _candidate(db, candidate_id: int) -> dict:
    from crawler.discovery.candidates import get_candidate
    from crawler.discovery.models import ensure_schema

    ensure_schema(db)
    row = get_candidate(db, candidate_id)
    if row is None:
        raise click.ClickException(_NO_CANDIDATE.format(candidate_id))
    return row


def _was_promoted(row: dict, config, status: str) -> str:
    """Why a promoted candidate is not decided again (``status``: the decision asked for)."""
    said = (f"candidate {row['id']} ({row['domain']}) was promoted to target {row['promoted_target']} "
            f"on {shown_time(row['decided_at'], config)} ({config.alerts.timezone})")
    if status == "promoted":
        return f"{said} already; see `finpatrol targets list`"
    return (f"{said}; a promoted candidate is not dismissed. To stop patrolling it, set `enabled: false` on "
            f"target {row['promoted_target']} in {config.source} (its hits and dossier are kept)")


def _decide(config, candidate_id: int, status: str, note: str, target_id: str | None = None) -> dict:
    """The decision, or a one-line error when the candidate is promoted already (decided meanwhile)."""
    from crawler.discovery.candidates import DecisionError, decide
    from crawler.discovery.models import ensure_schema

    with open_db(config) as db:
        ensure_schema(db)
        try:
            return decide(db, candidate_id, status, note, target_id)
        except KeyError:
            raise click.ClickException(_NO_CANDIDATE.format(candidate_id)) from None
        except DecisionError:
            raise click.ClickException(_was_promoted(_candidate(db, candidate_id), config, status)) from None


def _earlier(row: dict, config) -> str:
    earlier = row["earlier"]
    note = f" ({earlier['note'].splitlines()[0]})" if earlier["note"] else ""
    return (f"it had been {earlier['status']} on {shown_time(earlier['decided_at'], config)}{note}; "
            "that decision is kept in its note")


@candidates.command()
@config_option
@click.argument("candidate_id", type=ROW_COUNT)
@click.option("--id", "target_id", metavar="ID",
              help="Target id (default: from the host and port, e.g. example-com or 127-0-0-1-8080).")
@click.option("--name", metavar="NAME", help="Institution name (default: the first company name found).")
@click.option("--business", type=click.Choice(BUSINESS_TYPES), default="other", show_default=True)
@click.option("--note", default="", help="Why (kept with the decision).")
def promote(config_file, candidate_id, target_id, name, business, note):
    """Add the candidate to targets: in the config, so it is patrolled from now on, and attribute
    its hits to the new target (its dossier lists them). A dismissed candidate may be promoted;
    the dismissal is kept in its note. A promoted one is not promoted again."""
    from crawler.discovery.candidates import add_target, suggested_target

    config = load_or_exit(config_file)
    with open_db(config) as db:
        row = _candidate(db, candidate_id)
        # configured ids, and those of targets patrolled before (removed since: their hits remain)
        taken = {i.id for i in (*config.targets, *config.channels, *config.sources)} | stored_target_ids(config, db)
    if row["status"] == "promoted":
        raise click.ClickException(_was_promoted(row, config, "promoted"))
    if target_id in taken:
        raise click.ClickException(f"id {target_id!r} is taken (a target, channel or source, now or in the "
                                   "state DB's past patrols); choose another with --id")
    entry = suggested_target(row, target_id, name, business, taken)
    try:
        add_target(config.source, entry)
    except (ValueError, ConfigError) as e:
        raise click.ClickException(str(e)) from None
    decided = _decide(config, candidate_id, "promoted", note, entry["id"])
    console.print(f"candidate {candidate_id} ({row['domain']}) → target {entry['id']} in {config.source}")
    attributed = decided["attributed"]
    moved = attributed["moved"]
    count = attributed["added"] + len(moved)
    line = f"{count} of its hit(s) attributed to {entry['id']} (domain): `finpatrol dossier {entry['id']}` lists them"
    if moved:
        line += "; taken over from " + ", ".join(f"{t} (hit {h})" for h, t in sorted(moved.items()))
    if attributed["kept"]:
        line += "; left with the target whose site they were reached through: " + ", ".join(
            f"hit {h} ({t})" for h, t in sorted(attributed["kept"].items()))
    console.print(line)
    if decided["earlier"]:
        console.print(_earlier(decided, config))


@candidates.command()
@config_option
@click.argument("candidate_id", type=ROW_COUNT)
@click.option("--note", default="", help="Why (kept with the decision).")
def dismiss(config_file, candidate_id, note):
    """Mark the candidate as not of concern. A promoted candidate is not dismissed: disable its
    target in the config instead (`enabled: false`)."""
    config = load_or_exit(config_file)
    decided = _decide(config, candidate_id, "dismissed", note)  # refused for a promoted candidate
    console.print(f"candidate {candidate_id} ({decided['domain']}) dismissed")
    if decided["earlier"]:
        console.print(_earlier(decided, config))


COMMANDS = (candidates,)
