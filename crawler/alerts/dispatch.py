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
the unit has an address. The server's answer is kept per address: those it accepted
(``delivered_to``) never get the message again; a temporary refusal (4xx) is retried
with backoff; a permanent one (5xx) of every address still owed makes the message
``refused``: kept, not retried by itself, the operator unit told once, and sent when
the unit's addresses change (``crawler.alerts.readdress.follow_routing``) or by
``finpatrol alerts send --retry-now``. The user name and password come from the environment
variables named by ``smtp.username_env`` / ``smtp.password_env``.
"""

from __future__ import annotations

import logging
import hashlib
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
from crawler.store.db import StateDB, iso, utcnow

logger = logging.getLogger(__name__)
CLAIM_LEASE = timedelta(minutes=10)
UNADDRESSED = "unaddressed"
REFUSED = "refused"


class TransientError(Exception):
    """Delivery failed now; retry later."""


@dataclass
class DispatchResult:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    unaddressed: list[int] = field(default_factory=list)
    """Messages for units without an e-mail address, kept as files in ``outbox/unaddressed/``
    until ``finpatrol alerts send --unaddressed``."""
    refused: dict[int, str] = field(default_factory=dict)
    """Messages whose remaining addresses the server refused for good (status ``refused``): why."""


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
            owed = [r for r in row.recipients if r not in (row.delivered_to or ())]
            try:
                refused = via.send(row, owed) if owed or not row.recipients else {}
            except TransientError as e:
                _failed(db, config, row, now, str(e))
                result.failed[row.id] = str(e)
                continue
            if row.recipients:
                _settle(db, config, row, owed, refused, via.name, now, result)
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
    ready = _ready(now, ignore_backoff)
    query = select(OutboxMessage.id).where(
        or_(ready, (OutboxMessage.status == "sending") & (OutboxMessage.claimed_at < stale))
    ).order_by(OutboxMessage.id)
    if ids:
        query = query.where(OutboxMessage.id.in_(ids))
    with db.new_session() as session:
        return list(session.scalars(query))


def _ready(now: datetime, ignore_backoff: bool):
    """Pending and due; ``ignore_backoff`` (``alerts send --retry-now``): every pending or refused message."""
    if ignore_backoff:
        return OutboxMessage.status.in_(("pending", REFUSED))
    return (OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now)


def _claim(db: StateDB, row_id: int, now: datetime, ignore_backoff: bool) -> OutboxMessage | None:
    """Atomically take a message, so two dispatchers never send it at the same time."""
    stale = now - CLAIM_LEASE
    ready = _ready(now, ignore_backoff)
    with db.new_session() as session, session.begin():
        taken = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .where(or_(ready, (OutboxMessage.status == "sending") & (OutboxMessage.claimed_at < stale)))
            .values(status="sending", claimed_at=utcnow(), attempts=OutboxMessage.attempts + 1)
        ).rowcount
        return session.get(OutboxMessage, row_id) if taken else None


def _mark_done(db: StateDB, row_id: int, status: str, transport: str) -> None:
    """An unaddressed message reached nobody: no ``sent_at``."""
    with db.new_session() as session, session.begin():
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row_id)
            .values(status=status, sent_at=None, transport=transport, last_error=None)
        )


def _settle(db: StateDB, config: PatrolConfig, row: OutboxMessage, owed: list[str], refused: dict[str, str],
            transport: str, now: datetime, result: DispatchResult) -> None:
    """Record the server's answer per address: accepted, refused for now (4xx) or for good (5xx)."""
    accepted = [r for r in owed if r not in refused]
    history = list(row.history or ())
    if accepted:
        history.append({"at": iso(now), "event": "delivered", "to": accepted,
                        "sha256": hashlib.sha256(row.raw).hexdigest()})
    values = dict(delivered_to=[*(row.delivered_to or ()), *accepted], transport=transport,
                  refused=refused or None, history=history)
    if accepted and row.sent_at is None:
        values["sent_at"] = utcnow()
    permanent = False
    if refused:
        permanent = all(answer[:1] == "5" for answer in refused.values())
        history.append({"at": iso(now), "event": "refused", "refused": refused, "permanent": permanent})
        error = "; ".join(f"{address}: {answer}" for address, answer in refused.items())
    if not refused:
        values.update(status="sent", last_error=None)
        result.sent.append(row.id)
    elif not permanent:
        _failed(db, config, row, now, f"refused for now: {error}", **values)
        result.failed[row.id] = f"refused for now: {error}"
        return
    else:
        error = (f"refused permanently: {error}; correct routing.units.{row.unit}.emails and it is sent "
                 "to the new address" + (f" (already delivered to {', '.join(values['delivered_to'])})"
                                         if values["delivered_to"] else ""))
        values.update(status=REFUSED, last_error=error[:2000])
        result.refused[row.id] = error
    with db.new_session() as session, session.begin():
        session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))
    if refused and permanent:
        logger.error("outbox %s to %s: %s", row.id, row.unit, error)
        _tell_operator(db, config, row, refused, values["delivered_to"])


def _tell_operator(db: StateDB, config: PatrolConfig, row: OutboxMessage, refused: dict[str, str],
                   delivered_to: list[str]) -> None:
    """Once per message and refused addresses; never about the operator's own mail (it would loop)."""
    from crawler.alerts.evaluate import notify_operator

    if row.unit == config.routing.operator_unit:
        return
    unit = config.routing.units[row.unit].name if row.unit in config.routing.units else row.unit
    notify_operator(db, config, f"预警邮件被拒收：{unit}（{row.unit}）邮箱 {', '.join(refused)}", {
        "outbox": row.id, "unit": row.unit, "subject": row.subject,
        "refused": "; ".join(f"{a}: {answer}" for a, answer in refused.items()),
        "delivered_to": ", ".join(delivered_to) or "(none)",
        "fix": f"correct routing.units.{row.unit}.emails in {config.source}; the message is then sent to the "
               "new address (same Message-ID), not again to those that accepted it",
    }, key=f"refused:{row.id}:{','.join(sorted(refused))}")


def _failed(db: StateDB, config: PatrolConfig, row: OutboxMessage, now: datetime, error: str, **values) -> None:
    delay = min(config.smtp.retry_max, config.smtp.retry_base * 2 ** max(0, row.attempts - 1))
    logger.warning("outbox %s to %s failed (attempt %d), retry in %ds: %s",
                   row.id, row.unit, row.attempts, delay, error)
    with db.new_session() as session, session.begin():
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row.id)
            .values(status="pending", last_error=error[:2000], next_attempt_at=now + timedelta(seconds=delay),
                    **values)
        )


class FileTransport:
    name = "file"

    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, row: OutboxMessage, to: list[str]) -> dict[str, str]:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / eml_name(row)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(row.raw)
            os.replace(tmp, path)
        except OSError as e:
            raise TransientError(f"cannot write {self.directory}: {e}") from e
        return {}

    def close(self) -> None:
        pass


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)


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

    def send(self, row: OutboxMessage, to: list[str]) -> dict[str, str]:
        """Send to ``to``; return the addresses the server refused, with its answer (``550 No such user``)."""
        try:
            if self.conn is None:
                self.conn = self._connect()
            refused = self.conn.sendmail(self.smtp_config.sender, to, row.raw)
        except smtplib.SMTPRecipientsRefused as e:  # every address refused: the session is still usable
            refused = e.recipients
        except (smtplib.SMTPException, OSError, UnicodeError) as e:  # UnicodeError: non-ASCII login
            self.close()
            raise TransientError(f"{type(e).__name__}: {e}") from e
        return {address: f"{code} {_text(answer)}" for address, (code, answer) in refused.items()}

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.conn = None
