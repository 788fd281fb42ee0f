"""One call that does all alert work due now: evaluate, compose, dispatch.

Messages not yet sent are first given their unit's current addresses
(``crawler.alerts.readdress.follow_routing``). Used by ``finpatrol serve`` (after every crawl and every ``schedules.alerts_every``),
``finpatrol alerts send`` and ``finpatrol demo``. Safe to run from several
processes at once: evaluation is idempotent, composition is transactional and
the dispatcher claims each message before sending it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from crawler.alerts.compose import compose
from crawler.alerts.dispatch import dispatch, outbox_dir
from crawler.alerts.evaluate import evaluate
from crawler.alerts.readdress import follow_routing
from crawler.config import PatrolConfig
from crawler.store.db import StateDB, as_utc, utcnow

logger = logging.getLogger(__name__)


@dataclass
class Delivered:
    alerts: list[int] = field(default_factory=list)
    """Ids of the alerts decided in this call."""
    queued: list[int] = field(default_factory=list)
    """Ids of the outbox messages composed in this call."""
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    unaddressed: list[int] = field(default_factory=list)
    """Messages for units without an e-mail address, written to ``outbox/unaddressed/``."""
    refused: dict[int, str] = field(default_factory=dict)
    """Messages the server refused for good (status ``refused``), with why."""
    readdressed: list[int] = field(default_factory=list)
    """Messages given their unit's changed addresses before sending (``readdress.follow_routing``)."""
    where: str = ""
    """``smtp://host:port``, or the directory the .eml files are written to."""


def destination(config: PatrolConfig) -> str:
    smtp = config.smtp
    return f"smtp://{smtp.host}:{smtp.effective_port}" if smtp.host else str(outbox_dir(config))


def deliver(config: PatrolConfig, db: StateDB | None = None, now: datetime | None = None,
            force_digest: bool = False) -> Delivered:
    """Evaluate new hits, compose what is due and send the outbox; never raises on SMTP trouble."""
    own = db is None
    db = db or StateDB(config.db_url)
    now = as_utc(now or utcnow())  # one UTC time for every step: SQLite keeps wall-clock time
    try:
        result = Delivered(where=destination(config))
        result.alerts = evaluate(db, config, now)
        result.queued = compose(db, config, now, force_digest=force_digest)
        result.readdressed = follow_routing(db, config, now)
        sent = dispatch(db, config, now)
        result.sent, result.failed, result.unaddressed = sent.sent, sent.failed, sent.unaddressed
        result.refused = sent.refused
        return result
    finally:
        if own:
            db.close()
