"""``finpatrol candidates list | promote ID | dismiss ID``: unregistered sites (可疑网站)."""

from __future__ import annotations

import click
from rich.table import Table

from crawler.commands.common import ROW_COUNT, config_option, console, emit_json, json_option, load_or_exit, open_db
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
        table.add_row(str(r["id"]), r["domain"], r["status"], "、".join(r["company_names"]) or "-", restricted,
                      ", ".join(r["categories"]), ", ".join(r["via"]), " ".join(r["icp"]) or "-")
    console.print(table)


def _decide(config_file, candidate_id: int, status: str, note: str, target: dict | None = None) -> dict:
    from crawler.discovery.candidates import decide
    from crawler.discovery.models import ensure_schema

    config = load_or_exit(config_file)
    db = open_db(config)
    try:
        ensure_schema(db)
        return decide(db, candidate_id, status, note, target["id"] if target else None)
    except KeyError:
        raise click.ClickException(f"no candidate {candidate_id}") from None
    finally:
        db.close()


@candidates.command()
@config_option
@click.argument("candidate_id", type=ROW_COUNT)
@click.option("--id", "target_id", metavar="ID", help="Target id (default: from the domain).")
@click.option("--name", metavar="NAME", help="Institution name (default: the first company name found).")
@click.option("--business", type=click.Choice(BUSINESS_TYPES), default="other", show_default=True)
@click.option("--note", default="", help="Why (kept with the decision).")
def promote(config_file, candidate_id, target_id, name, business, note):
    """Add the candidate to targets: in the config, so it is patrolled from now on."""
    from crawler.discovery.candidates import add_target, list_candidates, suggested_target
    from crawler.discovery.models import ensure_schema

    config = load_or_exit(config_file)
    with open_db(config) as db:
        ensure_schema(db)
        row = next((r for r in list_candidates(db) if r["id"] == candidate_id), None)
    if row is None:
        raise click.ClickException(f"no candidate {candidate_id}")
    entry = suggested_target(row, target_id, name, business)
    try:
        add_target(config.source, entry)
    except (ValueError, ConfigError) as e:
        raise click.ClickException(str(e)) from None
    _decide(config_file, candidate_id, "promoted", note, entry)
    console.print(f"candidate {candidate_id} ({row['domain']}) → target {entry['id']} in {config.source}")


@candidates.command()
@config_option
@click.argument("candidate_id", type=ROW_COUNT)
@click.option("--note", default="", help="Why (kept with the decision).")
def dismiss(config_file, candidate_id, note):
    """Mark the candidate as not of concern."""
    row = _decide(config_file, candidate_id, "dismissed", note)
    console.print(f"candidate {candidate_id} ({row['domain']}) dismissed")


COMMANDS = (candidates,)
