"""Decide which fetched pages are captured, write them to WARC and index them in the state DB.

Called once per stored page (after the store pipeline set page_id / hit_id /
new_hit). ``archive: hits`` captures a page with a hit when the hit is new or
reopened, the page bytes changed, or the hit has no capture yet; ``archive: all`` also captures
every other page whose bytes are new. Labels, findings and rule ids in the
metadata record come from the hit row, so an unchanged re-fetch is described
the same way as the first. A capture also shows a hit's removal (``gone_hit_id``): the page as
fetched by the patrol that took a hit off it because the page changed (claims edited away,
reworded, or the URL now redirecting to a page without them: ``SHOWN_BY_PAGE``), archived once,
at that patrol; and a 404/410 answer for a page whose hit is open (``capture_gone``): the proof
of when the page went. A removal by changed rules shows nothing on the page and is not archived.
Settings: ``evidence.archive``, ``evidence.max_file_mb``.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy import or_, select

from crawler.evidence.config import EvidenceConfig
from crawler.evidence.models import Evidence, EvidenceFile
from crawler.evidence.warc import Capture, RotatingWarcWriter
from crawler.items import PageItem
from crawler.store.db import StateDB, as_utc, parse_time, utcnow
from crawler.store.models import Hit, Page
from crawler.store.removal import SHOWN_BY_PAGE, removal

logger = logging.getLogger(__name__)


def evidence_root(state_dir: Path) -> Path:
    return Path(state_dir) / "evidence"


def live_rule_ids(findings: list[dict]) -> list[str]:
    return sorted({f["rule_id"] for f in findings if not f.get("negated")})


def uncaptured_pages(db: StateDB, target_ids: list[str], archive_all: bool) -> set[tuple[str, str]]:
    """(target id, url) of stored pages whose evidence is still missing: the current hit
    has no capture (or, with ``archive: all``, the page has none). They must be fetched
    whole, never answered by a bodiless 304."""
    with db.new_session() as session:
        hit_captured = select(Evidence.id).where(Evidence.hit_id == Page.current_hit_id).exists()
        missing = Page.current_hit_id.is_not(None) & ~hit_captured
        if archive_all:
            missing = missing | ~select(Evidence.id).where(Evidence.page_id == Page.id).exists()
        rows = session.execute(select(Page.target_id, Page.url).where(Page.target_id.in_(target_ids), missing))
        return {(target_id, url) for target_id, url in rows}


def redirect_chain(item: PageItem) -> list[dict]:
    """Each URL the request went through, with the answer that led on (301, 302, ``meta refresh``)
    or, for the last, the final status: ``[{"url", "status"}]``."""
    reasons = list(item.redirect_reasons) + [None] * (len(item.redirects) - len(item.redirect_reasons))
    hops = [{"url": url, "status": reason} for url, reason in zip(item.redirects, reasons)]
    return hops + [{"url": item.final_url, "status": item.status}]


class Archive:
    """The evidence writer of one patrol process; not thread-safe (use from one thread)."""

    def __init__(self, db: StateDB, root: Path, config: EvidenceConfig, clock=None):
        self.db = db
        self.config = config
        self.writer = RotatingWarcWriter(root, config.max_file_bytes, clock=clock, on_open=self._file_opened)

    def may_need_capture(self, item: PageItem) -> bool:
        """False when the item certainly needs no capture; decided without the state DB,
        so the pipeline does not hand most pages of a re-patrol to the evidence thread."""
        if item.status == 304:  # no body to keep; crawler.conditional fetches uncaptured pages whole
            return False
        return item.hit_id is not None or item.removed_hit_id is not None or self.config.archive == "all"

    def _needs_capture(self, session, item: PageItem) -> bool:
        """Whether the page is to be archived as the evidence of its hit (or, ``archive: all``, of itself)."""
        if item.hit_id is not None:
            if item.new_hit or not item.unchanged:
                return True
            hit = session.get(Hit, item.hit_id)
            if hit is not None and as_utc(hit.reopened_at) == parse_time(item.fetched_at):
                return True  # reopened by this fetch: prove the claim is back, and when
            return session.scalar(select(Evidence.id).where(Evidence.hit_id == item.hit_id).limit(1)) is None
        if self.config.archive != "all":
            return False
        if not item.unchanged:
            return True
        return session.scalar(select(Evidence.id).where(Evidence.page_id == item.page_id).limit(1)) is None

    @staticmethod
    def _removal_shown(session, item: PageItem, run_id: int | None) -> int | None:
        """The hit this fetch removed because the page changed (``SHOWN_BY_PAGE``), else None.

        ``item.removed_hit_id`` is the page's hit before this fetch; it was removed by this fetch
        when its removal is dated with this fetch, in this run (not earlier, when its page went)."""
        hit = session.get(Hit, item.removed_hit_id) if item.removed_hit_id is not None else None
        why = removal(session, hit) if hit is not None else None
        if why is None or why["why"] not in SHOWN_BY_PAGE or why["run_id"] != run_id:
            return None
        return hit.id if as_utc(hit.removed_at) == parse_time(item.fetched_at) else None

    def capture(self, item: PageItem, run_id: int | None) -> int | None:
        """Write the page's records when it needs a capture; returns the Evidence row id."""
        if not self.may_need_capture(item):
            return None
        with self.db.new_session() as session:
            removed = self._removal_shown(session, item, run_id)
            if removed is None and not self._needs_capture(session, item):
                return None
            hit = session.get(Hit, item.hit_id) if item.hit_id else None
            metadata = self._metadata(item, hit, run_id) | {"gone_hit_id": removed}
        return self._write(item, run_id, metadata, gone_hit_id=removed)

    def capture_gone(self, item: PageItem, run_id: int | None) -> int | None:
        """Write a 404/410 answer for a stored page whose hit is open; returns the Evidence row id.

        The page is the one ``changes.mark_gone`` marks gone when the patrol ends (same target
        and URL as requested, not gone yet, not stored by this run), so the capture is linked to
        the hit it removes (``gone_hit_id``). None when no open hit is at that URL."""
        with self.db.new_session() as session:
            row = session.execute(
                select(Page.id, Hit.id).join(Hit, Hit.id == Page.current_hit_id).where(
                    Page.target_id == item.target_id, Page.url == item.url, Page.gone_at.is_(None),
                    or_(Page.last_run_id.is_(None), Page.last_run_id != run_id), Hit.removed_at.is_(None),
                )).first()
            if row is None:
                return None
            item.page_id, hit_id = row
            metadata = self._metadata(item, None, run_id) | {"gone_hit_id": hit_id}
        return self._write(item, run_id, metadata, gone_hit_id=hit_id)

    def _write(self, item: PageItem, run_id: int | None, metadata: dict, gone_hit_id: int | None = None) -> int:
        capture = Capture(
            url=item.url, final_url=item.final_url, fetched_at=item.fetched_at, status=item.status,
            headers=item.headers, body=item.body, request_headers=item.request_headers,
            protocol=item.protocol, rendered=item.rendered, encoding=item.encoding,
            screenshot=item.screenshot, metadata=metadata,
        )
        written = self.writer.write(capture)
        main = written.first("resource" if item.rendered else "response")
        shot = written.first("screenshot")
        row = Evidence(
            hit_id=item.hit_id, gone_hit_id=gone_hit_id, page_id=item.page_id, run_id=run_id, target_id=item.target_id,
            url=item.url, final_url=item.final_url, status=item.status, rendered=item.rendered,
            fetched_at=parse_time(item.fetched_at), warc_file=written.file, record_id=main.id,
            offset=main.offset, payload_sha256=metadata["payload_sha256"],
            screenshot_record_id=shot.id if shot else None,
            screenshot_sha256=metadata["screenshot_sha256"],
            metadata_record_id=written.first("metadata").id,
            records=[r.as_dict() for r in written.records], created_at=utcnow(),
        )
        with self.db.new_session() as session, session.begin():
            session.add(row)
            self._record_closed(session)
            session.flush()
            return row.id

    def _metadata(self, item: PageItem, hit: Hit | None, run_id: int | None) -> dict:
        findings = list(hit.findings) if hit else []
        return {
            "target_id": item.target_id,
            "url": item.url,
            "final_url": item.final_url,
            "redirects": list(item.redirects),
            "redirect_chain": redirect_chain(item),
            "fetched_at": item.fetched_at,
            "patrol_run": run_id,
            "hit_id": item.hit_id,
            "page_id": item.page_id,
            "labels": list(hit.labels) if hit else [],
            "rule_ids": live_rule_ids(findings),
            "findings": findings,
            "rendered": item.rendered,
            "http": {"status": item.status, "protocol": item.protocol, "headers": dict(item.headers)},
            "payload_sha256": hashlib.sha256(item.body).hexdigest(),
            "screenshot_sha256": hashlib.sha256(item.screenshot).hexdigest() if item.screenshot else None,
        }

    def _file_opened(self, name: str, when: datetime) -> None:
        with self.db.new_session() as session, session.begin():
            session.merge(EvidenceFile(name=name, opened_at=when, records=0))

    def _record_closed(self, session) -> None:
        while self.writer.closed:
            closed = self.writer.closed.pop(0)
            row = session.get(EvidenceFile, closed.name) or EvidenceFile(name=closed.name, opened_at=closed.opened_at)
            row.closed_at, row.size, row.sha256, row.records = (
                closed.closed_at, closed.size, closed.sha256, closed.records)
            session.merge(row)

    def close(self) -> None:
        self.writer.close()
        with self.db.new_session() as session, session.begin():
            self._record_closed(session)
