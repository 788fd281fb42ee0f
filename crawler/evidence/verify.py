"""Check evidence against the state DB: every record, every digest, every closed file.

For each capture: the WARC file exists; each record's stored gzip member has the
SHA-256 recorded when it was written; it decompresses into the record with the
recorded WARC-Record-ID; its WARC block and payload digests (SHA-256) hold; and
the page bytes and screenshot hash to the SHA-256 kept for the hit. For each
closed WARC file: its size and whole-file SHA-256, so a change outside any hit's
records (warcinfo, padding) is reported too. ``finpatrol evidence verify`` exits
non-zero when any problem is found.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import or_, select
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from crawler.evidence.models import Evidence, EvidenceFile
from crawler.store.db import StateDB

logger = logging.getLogger(__name__)


def _readable(error: Exception, limit: int = 120) -> str:
    """An exception's message on one line, control bytes as '?', cut at ``limit``: warcio quotes raw gzip."""
    text = "".join(c if c.isprintable() else "?" for c in " ".join(str(error).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Problem:
    warc_file: str
    what: str
    hit_id: int | None = None
    evidence_id: int | None = None
    record_id: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        who = f"hit {self.hit_id}" if self.hit_id else (f"capture {self.evidence_id}" if self.evidence_id else "file")
        record = f" record {self.record_id}" if self.record_id else ""
        return f"{who}: {self.warc_file}{record}: {self.what}"


@dataclass
class Loaded:
    """The records of one capture as read back (after every check passed or not)."""

    payload: bytes | None = None
    screenshot: bytes | None = None
    metadata: dict | None = None
    members: list[bytes] = field(default_factory=list)


@dataclass
class Report:
    captures: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_member(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def _parse(member: bytes):
    """The record in one gzip member, its fully read payload, and digest problems."""
    for record in ArchiveIterator(io.BytesIO(member), check_digests=True):
        payload = record.raw_stream.read()
        record.raw_stream.read()  # reach the end so the block digest is checked
        return record, payload, list(record.digest_checker.problems)
    raise ArchiveLoadFailed("no WARC record in the stored bytes")


def check_capture(root: Path, ev: Evidence) -> tuple[list[Problem], Loaded]:
    """Verify one capture's records; also return what they hold (for export)."""
    problems: list[Problem] = []
    loaded = Loaded()

    def problem(what: str, record_id: str | None = None) -> None:
        problems.append(Problem(ev.warc_file, what, ev.hit_id or ev.gone_hit_id, ev.id, record_id))

    path = root / ev.warc_file
    if not path.is_file():
        problem("WARC file missing")
        return problems, loaded
    for ref in ev.records:
        member = _read_member(path, ref["offset"], ref["length"])
        loaded.members.append(member)
        if len(member) != ref["length"]:
            problem(f"record truncated ({len(member)} of {ref['length']} bytes)", ref["id"])
            continue
        if hashlib.sha256(member).hexdigest() != ref["sha256"]:
            problem("stored record bytes changed (SHA-256 of the gzip member differs)", ref["id"])
        try:
            record, payload, digest_problems = _parse(member)
        except Exception as e:  # a corrupt member can fail in zlib, warcio or the HTTP parser
            problem(f"record unreadable: {type(e).__name__}: {_readable(e)}", ref["id"])
            continue
        if record.rec_headers.get_header("WARC-Record-ID") != ref["id"]:
            problem("WARC-Record-ID differs from the one recorded", ref["id"])
        problems.extend(Problem(ev.warc_file, f"WARC {p}", ev.hit_id or ev.gone_hit_id, ev.id, ref["id"])
                        for p in digest_problems)
        _keep(ev, ref, record, payload, loaded, problem)
    if loaded.payload is None and not any(p.what == "WARC file missing" for p in problems):
        problem("page record not found in the capture")
    return problems, loaded


def http_head(member: bytes) -> bytes:
    """The HTTP head in a request or response record's block, byte for byte as stored: status
    line and headers (each line ending CRLF), without the blank line that ends them."""
    record = gzip.decompress(member)
    _, _, block = record.partition(b"\r\n\r\n")  # after the WARC headers
    head, blank, _ = block.partition(b"\r\n\r\n")
    return head + b"\r\n" if blank else b""


def _keep(ev: Evidence, ref: dict, record, payload: bytes, loaded: Loaded, problem) -> None:
    if ref["id"] == ev.record_id:
        loaded.payload = payload
        if hashlib.sha256(payload).hexdigest() != ev.payload_sha256:
            problem("page bytes do not match the SHA-256 recorded for the hit", ref["id"])
    elif ref["id"] == ev.screenshot_record_id:
        loaded.screenshot = payload
        if hashlib.sha256(payload).hexdigest() != ev.screenshot_sha256:
            problem("screenshot does not match the SHA-256 recorded for the hit", ref["id"])
    elif ref["type"] == "metadata":
        try:
            loaded.metadata = json.loads(payload)
        except ValueError:
            problem("metadata record is not JSON", ref["id"])


def check_file(root: Path, row: EvidenceFile) -> list[Problem]:
    path = root / row.name
    if not path.is_file():
        return [Problem(row.name, "WARC file missing")]
    if row.sha256 is None:
        return []  # still being written, or its writer died: its records are checked one by one
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    if size != row.size:
        return [Problem(row.name, f"file size {size} differs from {row.size} recorded at close")]
    if digest.hexdigest() != row.sha256:
        return [Problem(row.name, "file SHA-256 differs from the one recorded at close")]
    return []


def verify(db: StateDB, root: Path, since: datetime | None = None) -> Report:
    """Check every capture fetched since ``since`` (all when None) and the files they use."""
    report = Report()
    with db.new_session() as session:
        query = select(Evidence).order_by(Evidence.id)
        if since is not None:
            query = query.where(Evidence.fetched_at >= since)
        captures = session.scalars(query).all()
        names = {ev.warc_file for ev in captures}
        file_query = select(EvidenceFile).order_by(EvidenceFile.name)
        if since is not None:
            file_query = file_query.where(or_(EvidenceFile.name.in_(names), EvidenceFile.opened_at >= since))
        files = session.scalars(file_query).all()
    for row in files:
        report.files += 1
        report.problems.extend(check_file(root, row))
    for ev in captures:
        report.captures += 1
        report.problems.extend(check_capture(root, ev)[0])
    logger.info("verified %d captures in %d files: %d problems", report.captures, report.files,
                len(report.problems))
    return report
