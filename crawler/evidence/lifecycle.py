"""When a hit was online, for the export manifest: its removal, its history and the capture that shows it.

A hit's row says only how it stands now; an investigator handing it over must also see that it
disappeared for a while (removed, replaced by a rewording, back), why it is removed, and the
capture that proves when (``Evidence.gone_hit_id``): for a page that went, the 404/410 answer the
patrol archived; for claims edited away, reworded or redirected away, the page as that patrol
fetched it. The reasons and events come from ``crawler.store.removal``, which ``show`` and
``hits`` read too. Times are given in UTC and Asia/Shanghai (``both_zones``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from crawler.evidence.models import Evidence
from crawler.store.db import StateDB, as_utc, parse_time
from crawler.store.models import Hit
from crawler.store.removal import SHOWN, WHY, history, removal

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
GONE_FILE = "gone-response.warc.gz"
GONE_DESCRIPTION = ("the WARC records (request, response, metadata) of the 404/410 answer that showed the "
                    "hit's page gone (hit_removal.removal_capture), byte-identical to the archive")
AFTER_FILE = "after-removal.warc.gz"
AFTER_DESCRIPTION = ("the WARC records (request, response, screenshot, metadata) of the page as fetched by the "
                     "patrol that found the hit's claims no longer on it (hit_removal.removal_capture), "
                     "byte-identical to the archive")


def both_zones(value: datetime | str) -> dict:
    value = as_utc(parse_time(value) if isinstance(value, str) else value)
    return {"utc": value.astimezone(UTC).isoformat(timespec="seconds"),
            "asia_shanghai": value.astimezone(SHANGHAI).isoformat(timespec="seconds")}


@dataclass(frozen=True)
class Lifecycle:
    manifest: dict
    """``hit_removed_run_id``, ``hit_removal``, ``hit_reopened_at``, ``hit_history``."""
    removal_capture: Evidence | None
    """The capture that shows the hit's removal, when it is removed and one was archived."""
    exported_as: str | None
    """The file its WARC records are exported as (``GONE_FILE`` or ``AFTER_FILE``)."""


def lifecycle(session, hit: Hit) -> Lifecycle:
    """The hit's removal (why, when, which run, the capture that shows it) and history."""
    by_run: dict[int | None, Evidence] = {}
    for ev in session.scalars(select(Evidence).where(Evidence.gone_hit_id == hit.id).order_by(Evidence.id)):
        by_run.setdefault(ev.run_id, ev)
    now = removal(session, hit)
    shown = by_run.get(now["run_id"]) if now and now["why"] in SHOWN else None
    exported_as = (GONE_FILE if now["why"] == "page_gone" else AFTER_FILE) if shown else None
    events = []
    for event in history(session, hit):
        capture = by_run.get(event["run_id"]) if event.get("why") in SHOWN else None
        events.append(_event(event, capture, exported_as if capture is not None and capture is shown else None))
    return Lifecycle({
        "hit_removed_run_id": hit.removed_run_id,
        "hit_removal": _event(now | {"event": "removed"}, shown, exported_as) if now else None,
        "hit_reopened_at": both_zones(hit.reopened_at) if hit.reopened_at else None,
        "hit_history": events,
    }, shown, exported_as)


def removal_capture(db: StateDB, hit_id: int) -> dict | None:
    """The capture that shows the hit's removal (``show``), None while it is live or when none was archived."""
    with db.new_session() as session:
        hit = session.get(Hit, hit_id)
        return (lifecycle(session, hit).manifest["hit_removal"] or {}).get("removal_capture") if hit else None


def _event(event: dict, shown: Evidence | None, exported_as: str | None = None) -> dict:
    """An event with its time in both zones; a removal with ``why_text`` and ``removal_capture``
    (None when none was archived: a removal by changed rules, or one before finpatrol kept them),
    and for a page gone that capture as ``gone_capture`` too, the key it had first."""
    out = event | {"at": both_zones(event["at"])}
    if event["event"] == "removed":
        out["why_text"] = WHY[event["why"]]
        out["removal_capture"] = _capture(shown, exported_as) if shown else None
        if event["why"] == "page_gone":
            out["gone_capture"] = out["removal_capture"]
    return out


def _capture(ev: Evidence, exported_as: str | None) -> dict:
    return {"id": ev.id, "fetched_at": both_zones(ev.fetched_at), "http_status": ev.status, "url": ev.url,
            "final_url": ev.final_url, "warc_file": ev.warc_file, "record_id": ev.record_id,
            "page_sha256": ev.payload_sha256, "exported_as": exported_as}
