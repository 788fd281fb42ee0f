"""Alert tables of the state DB, on the shared ``Base`` so ``create_all`` makes them.

- ``alert_marks``: dedup memory, one row per (institution, category, fingerprint).
- ``alerts``: one row per alert decided (a hit's category, an opinion spike, an
  operator notice), with a JSON payload holding everything the message needs.
- ``alert_deliveries``: one row per (alert, unit); ``state`` pending → mailed.
- ``outbox``: finished MIME messages with a stable Message-ID; the dispatcher
  sends them and marks them sent only after the server accepted them.
- ``alert_runs``: patrol runs whose hits have been evaluated.
- ``alert_state``: small key/value memory (last digest time).
"""

from __future__ import annotations

from datetime import datetime
from weakref import WeakSet

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crawler.store.db import add_missing_indexes
from crawler.store.models import Base


class AlertMark(Base):
    __tablename__ = "alert_marks"
    __table_args__ = (UniqueConstraint("target_id", "category", "fingerprint"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(40))
    fingerprint: Mapped[str] = mapped_column(String(64))
    last_alerted: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=0)
    """For opinion spikes: the window count that last alerted."""


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_kind_fingerprint", "kind", "fingerprint"),)
    """Notices are found by kind and key (a hit alert's withdrawal, an outage's site_down) on every pass."""
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """hit | opinion | operator | withdrawal (a hit mailed about is withdrawn: ``crawler.alerts.withdrawals``)
    | site_down | site_up (a site stops answering, answers again: ``crawler.alerts.site_down``)"""
    target_id: Mapped[str | None] = mapped_column(String(64), index=True)
    hit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    category: Mapped[str] = mapped_column(String(40))
    risk: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(16))
    """immediate | digest"""
    urgent: Mapped[bool] = mapped_column(default=False)
    """Urgent alerts ignore quiet hours and the hourly cap."""
    fingerprint: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Delivery(Base):
    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_state", "state", "unit"),)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    unit: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    """pending (immediate, not yet mailed) | digest (waits for the digest) | mailed | superseded (never
    mailed: before it was composed its hit was reworded and the unit has an alert for the new words)
    | withdrawn (never mailed: before it was composed the rules changed and no longer flag its page)
    | recovered (a site_down alert never mailed: the site answered again first; its site_up notice tells
    the outage) | superseded also for a site_up notice never mailed: the site went down again first"""
    outbox_id: Mapped[int | None] = mapped_column(Integer)


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    """immediate | digest | opinion | operator"""
    unit: Mapped[str] = mapped_column(String(64), index=True)
    recipients: Mapped[list] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    """The complete RFC 5322 message, built once so every retry sends the same bytes."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending | sending (claimed; stale claims are retried) | sent | unaddressed (the unit had no
    e-mail address: kept in ``outbox/unaddressed/``, queued again by ``alerts send --unaddressed``)
    | refused (the server refused every address still owed it for good, 5xx: not retried by itself;
    sent once the unit's addresses change, or by ``alerts send --retry-now``)"""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    """Indexed: every alert pass counts the last hour's messages per unit (the hourly cap)."""
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transport: Mapped[str | None] = mapped_column(String(16))
    """smtp | file"""
    delivered_to: Mapped[list | None] = mapped_column(JSON)
    """Addresses the server accepted this message for; a retry or a readdressed message never goes to them again."""
    refused: Mapped[dict | None] = mapped_column(JSON)
    """Address → the server's answer (``550 No such user``), for addresses it refused at the last attempt."""
    history: Mapped[list | None] = mapped_column(JSON)
    """What happened to the message after it was composed, oldest first: ``delivered`` (to, sha256 of the
    bytes sent), ``refused`` (refused, permanent) and ``readdressed`` (from, to, ``to_header_before``: the
    replaced To header verbatim, ``sha256_before``: of the bytes before; every other byte is unchanged)."""


class AlertRun(Base):
    __tablename__ = "alert_runs"
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertState(Base):
    __tablename__ = "alert_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


_ENSURED: WeakSet = WeakSet()
"""Engines whose alert tables are known to be current: every alert pass asks, several times."""


def ensure_schema(db) -> None:
    """Create the alert tables, and indexes their older versions lack, in a state DB opened
    before this module was imported; once per engine."""
    if db.engine in _ENSURED:
        return
    tables = [AlertMark.__table__, Alert.__table__, Delivery.__table__, OutboxMessage.__table__,
              AlertRun.__table__, AlertState.__table__]
    Base.metadata.create_all(db.engine, tables=tables)
    add_missing_indexes(db.engine, tables)
    _ENSURED.add(db.engine)
