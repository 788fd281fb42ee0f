"""``finpatrol alerts list | preview ID | send``: the alert outbox by hand."""

from __future__ import annotations

from email import message_from_bytes, policy

import click
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from crawler.commands.common import (
    ROW_COUNT, config_option, console, emit_json, json_option, load_or_exit, log_warnings, open_db, shown_time,
    writing,
)
from crawler.store.db import iso, utcnow

STATUSES = ("pending", "sending", "sent", "refused", "unaddressed")


@click.group()
def alerts():
    """Early-warning mail: list the outbox, preview a message, send what is due."""


def outbox_dict(row, alerts: list[dict] | None = None) -> dict:
    """One outbox message; ``alerts``: what it tells (``told_in``), for a script to link a mail to its hits."""
    return {
        "id": row.id, "message_id": row.message_id, "kind": row.kind, "unit": row.unit,
        "recipients": row.recipients, "subject": row.subject, "status": row.status,
        "attempts": row.attempts, "created_at": iso(row.created_at), "sent_at": iso(row.sent_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.status in ("pending", "sending") else None,
        "transport": row.transport, "last_error": row.last_error, "delivered_to": row.delivered_to or [],
        "refused": row.refused or {}, "history": row.history or [], "alerts": alerts or [],
    }


def told_in(session, outbox_ids: list[int]) -> dict[int, list[dict]]:
    """outbox id → the alerts its message tells: id, kind, category, target, hit id."""
    from crawler.alerts.models import Alert, Delivery
    from crawler.store.db import in_chunks

    told: dict[int, list[dict]] = {}
    for some in in_chunks(outbox_ids):
        rows = session.execute(select(Delivery.outbox_id, Alert).join(Alert, Alert.id == Delivery.alert_id)
                               .where(Delivery.outbox_id.in_(some)).order_by(Alert.id))
        for outbox_id, alert in rows:
            told.setdefault(outbox_id, []).append({"id": alert.id, "kind": alert.kind, "category": alert.category,
                                                   "target": alert.target_id, "hit_id": alert.hit_id})
    return told


@alerts.command("list")
@config_option
@json_option
@click.option("--status", type=click.Choice(STATUSES), help="Only messages in this state.")
@click.option("--waiting", is_flag=True,
              help="Instead of the outbox: alerts not composed yet (waiting for the digest, for quiet hours "
                   "to end, or for the next alert pass), soonest first.")
@click.option("--limit", type=ROW_COUNT, default=50, show_default=True,
              help="How many messages, newest first (--waiting: how many alerts, soonest first).")
def list_(config_file, as_json, status, waiting, limit):
    """Outbox messages, newest first, with their delivery state; --waiting: alerts not in it yet."""
    from crawler.alerts.models import OutboxMessage, ensure_schema
    from crawler.alerts.waiting import waiting as waiting_alerts
    from crawler.commands.inspect import more_may_follow

    if waiting and status:
        raise click.UsageError("--status filters outbox messages; --waiting lists alerts not composed into one yet")
    config = load_or_exit(config_file)
    with open_db(config) as db:
        ensure_schema(db)
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit + 1)  # one more: is it cut?
        if status:
            query = query.where(OutboxMessage.status == status)
        with db.new_session() as session:
            held = waiting_alerts(session, config.alerts, utcnow()) if waiting or not as_json else []
            if waiting:
                rows = held[:limit + 1]
            else:
                messages = list(session.scalars(query))
                told = told_in(session, [m.id for m in messages])
                rows = [outbox_dict(m, told.get(m.id)) for m in messages]
    cut, rows = len(rows) > limit, rows[:limit]
    if as_json:
        emit_json(rows)
    elif waiting:
        _waiting_table(rows, config)
    else:
        _outbox_table(rows, config)
        _waiting_note(held, config)
    if cut and not as_json:  # as `hits` and `search` say it
        more_may_follow(rows, limit)


def _outbox_table(rows: list[dict], config) -> None:
    table = Table(title="预警邮件 outbox", caption=f"times in {config.alerts.timezone}")
    for column in ("id", "kind", "unit", "status", "tries", "created", "subject", "error"):
        table.add_column(column, overflow="fold")
    for r in rows:
        status = f"{r['status']} (file)" if r["transport"] == "file" else r["status"]
        table.add_row(str(r["id"]), r["kind"], r["unit"], status, str(r["attempts"]), shown_time(r["created_at"], config),
                      escape(r["subject"]), escape((r["last_error"] or "")[:60]))
    console.print(table)


WHY = {"next_pass": "next alert pass", "quiet_hours": "quiet hours", "digest": "daily digest"}


def _waiting_table(rows: list[dict], config) -> None:
    table = Table(title="等待发送的预警 (not composed yet)", caption=f"times in {config.alerts.timezone}")
    for column in ("alert", "kind", "institution", "category", "risk", "units", "waits for", "goes out", "found"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(str(r["alert_id"]), r["kind"], escape(f"{r['institution']} ({r['target'] or '—'})"),
                      escape(r["category_zh"]), r["risk"] + (" urgent" if r["urgent"] else ""),
                      ", ".join(r["units"]), WHY[r["waits"]], _goes_out(r, config),
                      shown_time(r["created_at"], config))
    console.print(table)


def _goes_out(row: dict, config) -> str:
    return "next pass" if row["waits"] == "next_pass" else shown_time(row["send_at"], config)


def _waiting_note(held: list[dict], config) -> None:
    """Under the outbox: how many alerts are not in it yet, and until when they wait."""
    if not held:
        return
    phrases = {"next_pass": "for the next alert pass", "quiet_hours": "for quiet hours to end at {}",
               "digest": "for the daily digest at {}"}  # soonest first
    parts = []
    for waits, phrase in phrases.items():
        some = [r for r in held if r["waits"] == waits]
        if some:
            parts.append(f"{len(some)} {phrase.format(shown_time(some[0]['send_at'], config))}")
    console.print(f"{len(held)} alert(s) not composed yet: {'; '.join(parts)}. "
                  "See `finpatrol alerts list --waiting`")


@alerts.command()
@config_option
@click.argument("message_id", type=ROW_COUNT)
@click.option("--html", "as_html", is_flag=True, help="Print the HTML part instead of the text part.")
@click.option("--eml", type=click.Path(dir_okay=False, writable=True), help="Also write the raw message here.")
def preview(config_file, message_id, as_html, eml):
    """Show one outbox message as its recipients will get it."""
    from crawler.alerts.models import OutboxMessage, ensure_schema

    config = load_or_exit(config_file)
    with open_db(config) as db:
        ensure_schema(db)
        with db.new_session() as session:
            row = session.get(OutboxMessage, message_id)
    if row is None:
        raise click.ClickException(f"no outbox message {message_id}; see `finpatrol alerts list`")
    msg = message_from_bytes(row.raw, policy=policy.default)
    for header in ("Subject", "From", "To", "Date", "Message-ID"):
        click.echo(f"{header}: {msg[header]}")
    click.echo(f"Status: {row.status} (attempts {row.attempts})\n")
    click.echo(msg.get_body(("html",) if as_html else ("plain",)).get_content())
    if eml:
        with writing(eml), open(eml, "wb") as fh:
            fh.write(row.raw)


@alerts.command()
@config_option
@click.option("--digest", is_flag=True, help="Compose the daily digests now instead of at digest_time.")
@click.option("--retry-now", is_flag=True,
              help="Retry failed messages now, ignoring the backoff; also those refused for good (status refused).")
@click.option("--unaddressed", is_flag=True,
              help="Also send the kept messages of units that had no e-mail address and have one now.")
def send(config_file, digest, retry_now, unaddressed):
    """Evaluate new hits, compose what is due and send the outbox (SMTP or .eml files)."""
    from crawler.alerts.dispatch import dispatch, unaddressed_dir
    from crawler.alerts.readdress import Readdressed, readdress
    from crawler.alerts.service import deliver

    config = load_or_exit(config_file)
    log_warnings(config)
    with open_db(config) as db:
        moved = readdress(db, config) if unaddressed else Readdressed()
        result = deliver(config, db, force_digest=digest)
        if retry_now:
            extra = dispatch(db, config, ignore_backoff=True)
            result.sent += extra.sent
            result.unaddressed += extra.unaddressed
            result.failed.update(extra.failed)
            result.refused.update(extra.refused)
            for row_id in extra.sent:
                result.failed.pop(row_id, None)
                result.refused.pop(row_id, None)
    if unaddressed:
        units = ", ".join(sorted(set(moved.waiting.values())))
        console.print(f"{len(moved.requeued)} kept message(s) addressed and queued, {len(moved.waiting)} still "
                      "for units without an address" + (f" ({escape(units)})" if units else ""))
    if result.readdressed:
        console.print(f"{len(result.readdressed)} queued message(s) given their unit's changed addresses")
    console.print(f"{len(result.alerts)} new alert(s), {len(result.queued)} message(s) composed, "
                  f"{len(result.sent)} sent to {result.where}, {len(result.failed)} failed (will retry)"
                  + (f", {len(result.refused)} refused for good" if result.refused else ""))
    kept = len(result.unaddressed) + len(moved.waiting)
    if kept:
        console.print(f"[yellow]{kept} message(s) for units without an e-mail address, kept in "
                      f"{escape(str(unaddressed_dir(config)))}: set routing.units.<unit>.emails, "
                      "then run `finpatrol alerts send --unaddressed`[/]")
    for row_id, error in {**result.failed, **result.refused}.items():
        console.print(f"  message {row_id}: {escape(error)}")
    if result.refused:
        console.print("[red]refused for good: correct routing.units.<unit>.emails (the message then goes to the "
                      "new address), or run `finpatrol alerts send --retry-now` once the mailbox exists[/]")
    if result.failed or result.refused:
        raise SystemExit(1)


COMMANDS = (alerts,)
