"""Tables of the state DB, the source of truth for everything after a crawl.

SQLite in ``state_dir`` by default, any SQLAlchemy URL otherwise. JSON columns
hold the classifier's findings and yields exactly as ``Verdict.to_dict()`` made
them, so a hit can always be explained later.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class TargetRow(Base):
    """A registered institution as last seen in the config."""

    __tablename__ = "targets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    business: Mapped[str] = mapped_column(String(32))
    aliases: Mapped[list] = mapped_column(JSON, default=list)
    credit_code: Mapped[str | None] = mapped_column(String(18))
    urls: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PatrolRun(Base):
    """One crawl: when, how it ended, and Scrapy's stats for judging its health."""

    __tablename__ = "patrol_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spider: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    """Indexed: a period report reads the patrols of its period."""
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finish_reason: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")
    """running | ok | partial | failed"""
    stats: Mapped[dict] = mapped_column(JSON, default=dict)
    pid: Mapped[int | None] = mapped_column(Integer)
    """The id of the process crawling, on ``host``: a run left ``running`` by a process that is
    gone (``kill -9``) is settled by the next reader (``crawler.store.runs.settle_abandoned``)."""
    host: Mapped[str | None] = mapped_column(String(255))
    """The host name of that process."""
    pid_started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When that process started (Linux), so another process given the same id later is not taken for it."""


class RunTarget(Base):
    """Per-target outcome of one patrol run."""

    __tablename__ = "run_targets"
    __table_args__ = (Index("ix_run_targets_target_run", "target_id", "run_id"),)
    """A target's patrols newest first (coverage, site_down, dossier) without reading every run."""
    run_id: Mapped[int] = mapped_column(ForeignKey("patrol_runs.id"), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    new_hits: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[dict] = mapped_column(JSON, default=dict)
    """Failure counts by reason: {"http_404": 2, "timeout": 1, "dns": 1, ...}"""


class Page(Base):
    """The latest fetched version of one URL of a target."""

    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("target_id", "url"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(String(32), default="")
    rendered: Mapped[bool] = mapped_column(Boolean, default=False)
    sha256: Mapped[str] = mapped_column(String(64))
    text_fingerprint: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(16))
    labels: Mapped[list] = mapped_column(JSON, default=list)
    risk: Mapped[str] = mapped_column(String(8), default="none")
    score: Mapped[float] = mapped_column(Float, default=0.0)
    verdict_by: Mapped[str | None] = mapped_column(String(16))
    """``crawler.items.verdict_stamp`` of the classifier and kind that gave ``labels``; None
    for pages stored before finpatrol recorded it (their next fetch classifies them again)."""
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_run_id: Mapped[int | None] = mapped_column(Integer)
    current_hit_id: Mapped[int | None] = mapped_column(Integer)
    """The hit of the page's latest verdict, or None when it has no labels."""
    gone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When a finished patrol of the target no longer found the page; None while online."""
    gone_run_id: Mapped[int | None] = mapped_column(Integer)
    etag: Mapped[str | None] = mapped_column(Text)
    """The ETag header of the last full response, sent back as If-None-Match."""
    last_modified: Mapped[str | None] = mapped_column(String(64))
    """The Last-Modified header of the last full response, sent back as If-Modified-Since."""
    links: Mapped[str | None] = mapped_column(Text)
    """The page's links as the spider packed them, followed again when the page answers
    304 Not Modified; None when not recorded (then the page is always fetched whole)."""


class Hit(Base):
    """A page version whose verdict carries labels; identity = page + verdict key."""

    __tablename__ = "hits"
    __table_args__ = (
        UniqueConstraint("page_id", "verdict_key"),
        Index("ix_hits_target_seen", "target_id", "last_seen"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    target_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list] = mapped_column(JSON)
    risk: Mapped[str] = mapped_column(String(8), index=True)
    score: Mapped[float] = mapped_column(Float)
    context: Mapped[str] = mapped_column(String(16), default="")
    findings: Mapped[list] = mapped_column(JSON)
    yields: Mapped[list] = mapped_column(JSON)
    verdict_key: Mapped[str] = mapped_column(String(64))
    """SHA-256 over labels and the (rule id, matched text) of every live finding."""
    text_fingerprint: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    """When the page was first seen saying this: the fetch that opened the hit, or, for a hit
    the office's new rules found in words already on the page, when those words were."""
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_run_id: Mapped[int | None] = mapped_column(Integer)
    last_run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """Indexed: every alert pass reads the hits its runs saw."""
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    """When the page stopped saying this (text changed or page gone), None while live:
    rectified, unless ``replaced_by`` names the hit that says it in other words or
    ``reclassified`` says the rules changed."""
    removed_run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    replaced_by: Mapped[int | None] = mapped_column(Integer, index=True)
    """The hit that superseded this one on its page in the fetch that removed it, sharing at
    least one of its labels: the claim was reworded, not rectified. None while live, when the
    removal was a rectification (claim or page gone), and for hits removed before finpatrol
    recorded it (backfilled from the change records when the column is added)."""
    reopened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When a removed hit's verdict came back on its page (latest time)."""
    reclassified: Mapped[bool | None] = mapped_column(Boolean)
    """True when the hit was removed because the classifier judged the page's unchanged
    words differently (new rules, yield ceiling or document kind), not because the site
    changed: withdrawn, not rectified (with ``replaced_by`` when the new verdict still
    breaks one of its rules). None or False otherwise."""


class HitCategory(Base):
    """One row per (hit, label) so category filters use an index, not JSON scans."""

    __tablename__ = "hit_categories"
    hit_id: Mapped[int] = mapped_column(ForeignKey("hits.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class PageVersion(Base):
    """One readable version of a page: consecutive fetches with the same title and text."""

    __tablename__ = "page_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    text_fingerprint: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the body first fetched with this text."""
    last_sha256: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the body last fetched with this text (bytes may change, text not)."""
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_run_id: Mapped[int | None] = mapped_column(Integer)
    last_run_id: Mapped[int | None] = mapped_column(Integer)


class PageChange(Base):
    """What one patrol run found changed on one page: added, changed or gone."""

    __tablename__ = "page_changes"
    __table_args__ = (Index("ix_page_changes_target_at", "target_id", "at"), Index("ix_page_changes_at", "at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    target_id: Mapped[str] = mapped_column(String(64))
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8))
    """added (new, or back after being gone) | changed (text or verdict) | gone"""
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    old_version_id: Mapped[int | None] = mapped_column(Integer)
    new_version_id: Mapped[int | None] = mapped_column(Integer)
    old_hit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The page's hit before the change (removed by it when it differs from new_hit_id)."""
    new_hit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The page's hit after the change (opened or reopened by it when it differs)."""
    by_rules: Mapped[bool | None] = mapped_column(Boolean)
    """True when the verdict changed because the classifier did (rules, yield ceiling, kind)
    while the claims' words stayed on the page (``crawler.store.changes.judged_by_rules``)."""
    reopened: Mapped[bool | None] = mapped_column(Boolean)
    """True when the change reopened its new hit (back after it was rectified or its page gone:
    the hit's ``reopened_at``), False otherwise (opened, or back as a rewording or by the rules);
    None in records from before it was kept."""


class EsDoc(Base):
    """Indexing state of one search document (``crawler.store.elastic_queue``).

    A table of every state DB, so a change to a hit or page can mark its document
    pending in the same transaction, whether or not the queue module was imported.
    """

    __tablename__ = "es_docs"
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=1)
    """Grows with every enqueue; an acknowledgement counts only for the seq that was sent."""
    state: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    """pending | indexed | rejected"""
    indexed_seq: Mapped[int] = mapped_column(Integer, default=0)
    index_name: Mapped[str | None] = mapped_column(String(255))
    """Concrete index holding the document, from the cluster's acknowledgement."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Sends since the last acknowledgement; > 0 means an earlier send's outcome is unknown."""
    reason: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
