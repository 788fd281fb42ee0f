"""Evidence tables on the state DB's shared Base: one row per capture and per WARC file.

A capture is the set of WARC records written for one fetch of one page (request,
response or rendered DOM, screenshot, metadata). Each record is located by file,
offset and length, and carries the SHA-256 of its stored (gzip) bytes, so a
changed byte anywhere in it is found and the hit named.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crawler.store.models import Base


class Evidence(Base):
    """One capture of a page in a WARC file."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The hit this capture proves; None for pages archived under ``archive: all`` and for a removal."""
    gone_hit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The hit whose removal this capture shows: the 404/410 answer for its page, or its page as fetched
    by the patrol that found its claims gone (edited away, reworded, redirected). Never read as
    evidence of that hit's claim (only ``hit_id`` is); the page may hold another hit's (``hit_id``)."""
    page_id: Mapped[int | None] = mapped_column(Integer, index=True)
    run_id: Mapped[int | None] = mapped_column(Integer)
    target_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    rendered: Mapped[bool] = mapped_column(default=False)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    warc_file: Mapped[str] = mapped_column(Text)
    """Path of the WARC file relative to ``state_dir/evidence``."""
    record_id: Mapped[str] = mapped_column(String(64))
    """WARC-Record-ID of the response (or, for a rendered page, the DOM resource) record."""
    offset: Mapped[int] = mapped_column(Integer)
    """Byte offset of that record's gzip member in the WARC file."""
    payload_sha256: Mapped[str] = mapped_column(String(64))
    """Hex SHA-256 of the page bytes (the HTTP payload)."""
    screenshot_record_id: Mapped[str | None] = mapped_column(String(64))
    screenshot_sha256: Mapped[str | None] = mapped_column(String(64))
    """Hex SHA-256 of the screenshot PNG, None without a screenshot."""
    metadata_record_id: Mapped[str] = mapped_column(String(64))
    records: Mapped[list] = mapped_column(JSON)
    """Every record written: [{"type", "id", "offset", "length", "sha256" (of the stored member)}]."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EvidenceFile(Base):
    """One WARC file; size and SHA-256 are set when the writer closes it."""

    __tablename__ = "evidence_files"
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    """Path relative to ``state_dir/evidence``."""
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    records: Mapped[int] = mapped_column(Integer, default=0)
