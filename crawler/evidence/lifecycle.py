"""When a hit was online, for the export manifest: its removal, its history and the proof a page went.

A hit's row says only how it stands now; an investigator handing it over must also see that it
disappeared for a while (removed, replaced by a rewording, back), and why it is removed: for a page
that went, the 404/410 answer the patrol archived (``Evidence.gone_hit_id``) proves when the
platform took it down. The reasons and events come from ``crawler.store.removal``, which
``show`` and ``hits`` read too. Times are given in UTC and Asia/Shanghai (``both_zones``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from crawler.evidence.models import Evidence
from crawler.store.db import as_utc, parse_time
from crawler.store.models import Hit
from crawler.store.removal import WHY, history, removal

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
GONE_FILE = "gone-response.warc.gz"
GONE_DESCRIPTION = ("the WARC records (request, response, metadata) of the 404/410 answer that showed the "
                    "hit's page gone (hit_removal.gone_capture), byte-identical to the archive")


def both_zones(value: datetime | str) -> dict:
    value = as_utc(parse_time(value) if isinstance(value, str) else value)
    return {"utc": value.astimezone(UTC).isoformat(timespec="seconds"),
            "asia_shanghai": value.astimezone(SHANGHAI).isoformat(timespec="seconds")}


@dataclass(frozen=True)
class Lifecycle:
    manifest: dict
    """``hit_removed_run_id``, ``hit_removal``, ``hit_reopened_at``, ``hit_history``."""
    gone_capture: Evidence | None
    """The archived 404/410 answer that removed the hit, when that is why it is removed."""


def lifecycle(session, hit: Hit) -> Lifecycle:
    """The hit's removal (why, when, which run, the answer that showed its page gone) and history."""
    gone_by_run: dict[int | None, Evidence] = {}
    for ev in session.scalars(select(Evidence).where(Evidence.gone_hit_id == hit.id).order_by(Evidence.id)):
        gone_by_run.setdefault(ev.run_id, ev)
    now = removal(session, hit)
    gone = gone_by_run.get(now["run_id"]) if now and now["why"] == "page_gone" else None
    events = []
    for event in history(session, hit):
        answer = gone_by_run.get(event["run_id"]) if event.get("why") == "page_gone" else None
        events.append(_event(event, answer, GONE_FILE if answer is not None and answer is gone else None))
    return Lifecycle({
        "hit_removed_run_id": hit.removed_run_id,
        "hit_removal": _event(now | {"event": "removed"}, gone, GONE_FILE) if now else None,
        "hit_reopened_at": both_zones(hit.reopened_at) if hit.reopened_at else None,
        "hit_history": events,
    }, gone)


def _event(event: dict, gone: Evidence | None, exported_as: str | None = None) -> dict:
    """An event with its time in both zones; a removal with ``why_text``, and for a page gone
    the capture of the answer (None when none was archived, e.g. before finpatrol kept them)."""
    out = event | {"at": both_zones(event["at"])}
    if event["event"] == "removed":
        out["why_text"] = WHY[event["why"]]
        if event["why"] == "page_gone":
            out["gone_capture"] = _capture(gone, exported_as) if gone else None
    return out


def _capture(ev: Evidence, exported_as: str | None) -> dict:
    return {"id": ev.id, "fetched_at": both_zones(ev.fetched_at), "http_status": ev.status, "url": ev.url,
            "final_url": ev.final_url, "warc_file": ev.warc_file, "record_id": ev.record_id,
            "page_sha256": ev.payload_sha256, "exported_as": exported_as}
