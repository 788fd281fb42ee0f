"""Give kept ``unaddressed`` messages their unit's addresses once ``routing.units.<unit>.emails`` is set.

The dispatcher keeps a message for a unit without an e-mail address as a file and
marks it ``unaddressed`` for good, so a normal send never mails it. Run by
``finpatrol alerts send --unaddressed``: each such message whose unit now has
addresses gets them as its To header (all other headers, the Message-ID and the
body stay as composed) and goes back to ``pending``, for the dispatcher to send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy

from sqlalchemy import select, update

from crawler.alerts.dispatch import UNADDRESSED, eml_name, unaddressed_dir
from crawler.alerts.models import OutboxMessage, ensure_schema
from crawler.alerts.routing import addresses
from crawler.config import PatrolConfig
from crawler.store.db import StateDB, utcnow

logger = logging.getLogger(__name__)


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
    with db.new_session() as session:
        rows = list(session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == UNADDRESSED).order_by(OutboxMessage.id)
        ))
    for row in rows:
        to = addresses(config.routing, row.unit) if row.unit in config.routing.units else []
        if not to:
            result.waiting[row.id] = row.unit
            continue
        msg = message_from_bytes(row.raw, policy=policy.default)
        msg.replace_header("To", msg.policy.header_factory("To", to))
        if _requeue(db, row.id, msg.as_bytes(policy=policy.SMTP), [a.addr_spec for a in to], now):
            (unaddressed_dir(config) / eml_name(row)).unlink(missing_ok=True)
            logger.info("outbox %s: unit %s now has an address; queued to %s", row.id, row.unit, msg["To"])
            result.requeued.append(row.id)
    return result


def _requeue(db: StateDB, row_id: int, raw: bytes, recipients: list[str], now: datetime) -> bool:
    """Only if still unaddressed, so two runs at once queue a message once."""
    with db.new_session() as session, session.begin():
        return bool(session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.status == UNADDRESSED)
            .values(raw=raw, recipients=recipients, status="pending", next_attempt_at=now,
                    claimed_at=None, sent_at=None, transport=None, last_error=None)
        ).rowcount)
