"""Send the outbox: SMTP when ``smtp.host`` is set, else ``.eml`` files in ``state_dir/outbox/``.

A message is claimed (``sending``) before it is handed over and marked ``sent``
only after the server accepted it; failures back off from ``smtp.retry_base``
doubling to ``smtp.retry_max`` and are retried forever, so SMTP down for hours
loses nothing. A crash after the server accepted a message but before it was
marked leaves a stale claim, and the message is sent again later: the same bytes
with the same Message-ID, which mail clients show as the one message they have.
File delivery writes ``<message id>.eml`` atomically, so a retry replaces the
file instead of adding a copy. A message for a unit without an e-mail address is
written to ``outbox/unaddressed/`` and marked ``unaddressed``, never ``sent``, and not
retried: ``finpatrol alerts send --unaddressed`` (``crawler.alerts.readdress``) queues it again once
the unit has an address. The user name and password come from the environment
variables named by ``smtp.username_env`` / ``smtp.password_env``.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select, update

from crawler.alerts.models import OutboxMessage, ensure_schema
from crawler.config import PatrolConfig
from crawler.store.db import StateDB, utcnow

logger = logging.getLogger(__name__)
CLAIM_LEASE = timedelta(minutes=10)
UNADDRESSED = "unaddressed"


class TransientError(Exception):
    """Delivery failed now; retry later."""


@dataclass
class DispatchResult:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    unaddressed: list[int] = field(default_factory=list)
    """Messages for units without an e-mail address, kept as files in ``outbox/unaddressed/``
    until ``finpatrol alerts send --unaddressed``."""


def outbox_dir(config: PatrolConfig) -> Path:
    """Where messages are written when no SMTP server is configured (``finpatrol demo`` prints it)."""
    return config.state_dir / "outbox"


def dispatch(db: StateDB, config: PatrolConfig, now: datetime | None = None, ids: list[int] | None = None,
             ignore_backoff: bool = False) -> DispatchResult:
    """Deliver every due message (or only ``ids``); return what was sent and what failed."""
    ensure_schema(db)
    now = now or utcnow()
    result = DispatchResult()
    due = _due(db, now, ids, ignore_backoff)
    if not due:
        return result
    transport = SmtpTransport(config) if config.smtp.host else FileTransport(outbox_dir(config))
    unaddressed = FileTransport(unaddressed_dir(config))
    try:
        for row_id in due:
            row = _claim(db, row_id, now, ignore_backoff)
            if row is None:
                continue
            via = transport if row.recipients else unaddressed
            try:
                via.send(row)
            except TransientError as e:
                _failed(db, config, row, now, str(e))
                result.failed[row.id] = str(e)
                continue
            if row.recipients:
                _mark_done(db, row.id, "sent", via.name)
                result.sent.append(row.id)
            else:
                logger.warning("outbox %s: unit %s has no e-mail address; written to %s: set "
                               "routing.units.%s.emails, then run `finpatrol alerts send --unaddressed`",
                               row.id, row.unit, unaddressed.directory, row.unit)
                _mark_done(db, row.id, UNADDRESSED, via.name)
                result.unaddressed.append(row.id)
    finally:
        transport.close()
    return result


def unaddressed_dir(config: PatrolConfig) -> Path:
    return outbox_dir(config) / UNADDRESSED


def _due(db: StateDB, now: datetime, ids, ignore_backoff: bool) -> list[int]:
    stale = now - CLAIM_LEASE
    ready = OutboxMessage.status == "pending"
    if not ignore_backoff:
        ready = ready & (OutboxMessage.next_attempt_at <= now)
    query = select(OutboxMessage.id).where(
        or_(ready, (OutboxMessage.status == "sending") & (OutboxMessage.claimed_at < stale))
    ).order_by(OutboxMessage.id)
    if ids:
        query = query.where(OutboxMessage.id.in_(ids))
    with db.new_session() as session:
        return list(session.scalars(query))


def _claim(db: StateDB, row_id: int, now: datetime, ignore_backoff: bool) -> OutboxMessage | None:
    """Atomically take a message, so two dispatchers never send it at the same time."""
    stale = now - CLAIM_LEASE
    ready = OutboxMessage.status == "pending"
    if not ignore_backoff:
        ready = ready & (OutboxMessage.next_attempt_at <= now)
    with db.new_session() as session, session.begin():
        taken = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .where(or_(ready, (OutboxMessage.status == "sending") & (OutboxMessage.claimed_at < stale)))
            .values(status="sending", claimed_at=utcnow(), attempts=OutboxMessage.attempts + 1)
        ).rowcount
        return session.get(OutboxMessage, row_id) if taken else None


def _mark_done(db: StateDB, row_id: int, status: str, transport: str) -> None:
    """``sent_at`` only for ``sent``: an unaddressed message reached nobody."""
    with db.new_session() as session, session.begin():
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row_id)
            .values(status=status, sent_at=utcnow() if status == "sent" else None, transport=transport,
                    last_error=None)
        )


def _failed(db: StateDB, config: PatrolConfig, row: OutboxMessage, now: datetime, error: str) -> None:
    delay = min(config.smtp.retry_max, config.smtp.retry_base * 2 ** max(0, row.attempts - 1))
    logger.warning("outbox %s to %s failed (attempt %d), retry in %ds: %s",
                   row.id, row.unit, row.attempts, delay, error)
    with db.new_session() as session, session.begin():
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row.id)
            .values(status="pending", last_error=error[:2000], next_attempt_at=now + timedelta(seconds=delay))
        )


class FileTransport:
    name = "file"

    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, row: OutboxMessage) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / eml_name(row)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(row.raw)
            os.replace(tmp, path)
        except OSError as e:
            raise TransientError(f"cannot write {self.directory}: {e}") from e

    def close(self) -> None:
        pass


def eml_name(row: OutboxMessage) -> str:
    token = re.sub(r"[^A-Za-z0-9._-]+", "_", row.message_id.strip("<>"))[:150]
    return f"{row.id:06d}-{token}.eml"


class SmtpTransport:
    """One connection per dispatch run, reopened after an error."""

    name = "smtp"

    def __init__(self, config: PatrolConfig):
        self.smtp_config = config.smtp
        self.conn: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.smtp_config.ca_file)

    def _connect(self) -> smtplib.SMTP:
        c = self.smtp_config
        if c.security == "tls":
            conn = smtplib.SMTP_SSL(c.host, c.effective_port, timeout=c.timeout, context=self._context())
        else:
            conn = smtplib.SMTP(c.host, c.effective_port, timeout=c.timeout)
            if c.security == "starttls":
                conn.starttls(context=self._context())
        user, password = os.environ.get(c.username_env), os.environ.get(c.password_env)
        if user:
            conn.login(user, password or "")
        return conn

    def send(self, row: OutboxMessage) -> None:
        try:
            if self.conn is None:
                self.conn = self._connect()
            refused = self.conn.sendmail(self.smtp_config.sender, row.recipients, row.raw)
        except (smtplib.SMTPException, OSError, UnicodeError) as e:  # UnicodeError: non-ASCII login
            self.close()
            raise TransientError(f"{type(e).__name__}: {e}") from e
        if refused:
            logger.error("outbox %s: recipients refused %s", row.id, refused)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.conn = None
