"""Messages not yet sent follow their unit's current addresses (``routing.units.<unit>.emails``).

A message is composed with its unit's addresses of that time. Before every dispatch
pass (``crawler.alerts.service.deliver``: ``serve`` and ``alerts send``),
:func:`follow_routing` gives each ``pending`` or ``refused`` message whose unit's
addresses changed since the unit's current ones and queues it: an address corrected
in ``patrol.yaml`` reaches mail that waited for SMTP or was refused (550). Addresses
the server already accepted the message for (``delivered_to``) are not sent to again.

:func:`readdress` does the same for ``unaddressed`` messages, kept as files for units
without any address, when ``finpatrol alerts send --unaddressed`` is run.

Readdressing replaces the To header in the stored bytes and nothing else: every
other byte (Message-ID, Date, Subject, the body) is as composed. The message's
``history`` keeps the replaced To header verbatim with the SHA-256 of the bytes
before, so what went out earlier is the stored message with that header put back.
A unit whose addresses were all removed keeps its queued messages as they are.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address

from sqlalchemy import select, update

from crawler.alerts.dispatch import UNADDRESSED, eml_name, unaddressed_dir
from crawler.alerts.models import OutboxMessage, ensure_schema
from crawler.alerts.routing import addresses
from crawler.config import PatrolConfig
from crawler.store.db import StateDB, iso, utcnow

logger = logging.getLogger(__name__)
FOLLOWING = ("pending", "refused")
"""Statuses whose messages follow address changes at every pass."""


@dataclass
class Readdressed:
    requeued: list[int] = field(default_factory=list)
    """Outbox ids now addressed and pending."""
    waiting: dict[int, str] = field(default_factory=dict)
    """Outbox id → unit, for messages whose unit still has no address."""


def readdress(db: StateDB, config: PatrolConfig, now: datetime | None = None) -> Readdressed:
    """Address every unaddressed message whose unit has e-mail addresses now and queue it."""
    ensure_schema(db)
    now = now or utcnow()
    result = Readdressed()
    for row in _rows(db, (UNADDRESSED,)):
        to = _current(config, row.unit)
        if not to:
            result.waiting[row.id] = row.unit
            continue
        if _requeue(db, row, to, now):
            (unaddressed_dir(config) / eml_name(row)).unlink(missing_ok=True)
            result.requeued.append(row.id)
    return result


def follow_routing(db: StateDB, config: PatrolConfig, now: datetime | None = None) -> list[int]:
    """Readdress every pending or refused message whose unit's addresses changed; return their ids."""
    ensure_schema(db)
    now = now or utcnow()
    moved = []
    for row in _rows(db, FOLLOWING):
        to = _current(config, row.unit)
        if to and {a.addr_spec for a in to} != set(row.recipients or ()) and _requeue(db, row, to, now):
            moved.append(row.id)
    return moved


def with_to(raw: bytes, to: list[Address]) -> tuple[bytes, str]:
    """``raw`` with its To header replaced by ``to``; returns (new bytes, the replaced header verbatim)."""
    eol = b"\r\n" if b"\r\n\r\n" in raw else b"\n"
    head, sep, body = raw.partition(eol + eol)
    header = policy.SMTP.header_factory("To", to).fold(policy=policy.SMTP).encode("ascii").rstrip(b"\r\n")
    lines, out, old = head.split(eol), [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line[:1] in (b" ", b"\t") or line.split(b":", 1)[0].strip().lower() != b"to":
            out.append(line)
            continue
        if not old:  # a composed message has one To; a second one would be dropped
            out.append(header)
        old.append(line)
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            old.append(lines[i])
            i += 1
    if not old:
        out.insert(0, header)
    return eol.join(out) + sep + body, eol.join(old).decode("ascii", "replace")


def _current(config: PatrolConfig, unit: str) -> list[Address]:
    return addresses(config.routing, unit) if unit in config.routing.units else []


def _rows(db: StateDB, statuses: tuple[str, ...]) -> list[OutboxMessage]:
    with db.new_session() as session:
        return list(session.scalars(
            select(OutboxMessage).where(OutboxMessage.status.in_(statuses)).order_by(OutboxMessage.id)
        ))


def _requeue(db: StateDB, row: OutboxMessage, to: list[Address], now: datetime) -> bool:
    """Only if the row is still as read (status and bytes), so two runs at once readdress it once."""
    raw, before = with_to(row.raw, to)
    recipients = [a.addr_spec for a in to]
    note = {"at": iso(now), "event": "readdressed", "from": list(row.recipients or ()), "to": recipients,
            "to_header_before": before, "sha256_before": hashlib.sha256(row.raw).hexdigest()}
    values = dict(raw=raw, recipients=recipients, status="pending", next_attempt_at=now, claimed_at=None,
                  last_error=None, refused=None, history=[*(row.history or ()), note])
    if row.status == UNADDRESSED:
        values.update(sent_at=None, transport=None)
    with db.new_session() as session, session.begin():
        done = bool(session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id, OutboxMessage.status == row.status, OutboxMessage.raw == row.raw)
            .values(**values)
        ).rowcount)
    if done:
        logger.warning("outbox %s: unit %s's addresses are now %s (were %s); readdressed and queued, "
                       "same Message-ID and content", row.id, row.unit, ", ".join(recipients),
                       ", ".join(row.recipients or ()) or "none")
    return done
