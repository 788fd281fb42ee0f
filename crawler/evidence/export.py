"""Export one hit's evidence as plain files an investigator can hand over.

``DIR`` (a new or empty folder) receives the page (``page.html``: the bytes as fetched, or for a
page rendered by Chromium the DOM it serialised), the screenshot (``screenshot.png``), the
HTTP response and request headers (``.txt``), the capture's WARC records (``evidence.warc.gz``,
byte-identical to the archive), and ``manifest.json``: URL, final URL, fetch time in UTC and
Asia/Shanghai, SHA-256 and a description of every file, target, the institution the hit
concerns (``attributed_to``) and how a channel or source listed it (``listed``), labels,
findings, rule ids and the legal basis of each category (the seed section,
江津府办发〔2016〕52号), why and when the hit was removed and its history (``lifecycle``), with
the capture that shows the removal: for a page gone, the archived 404/410 answer as
``gone-response.warc.gz``; for claims edited away, reworded or redirected away, the page as then
fetched (``page-after-removal.html``, its screenshot, ``after-removal.warc.gz``), and last ``SHA256SUMS``
(``handover``). The capture is verified first; export refuses evidence that fails
verification. The WARC file holding the capture is checked against the size and SHA-256
recorded when it was closed, too: when that fails (a byte changed elsewhere in the file)
the intact records are still exported, but the manifest says ``verified: false`` and
``file_verified: false`` with the file's problems, and the command warns and exits 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from crawler.evidence.archive import live_rule_ids
from crawler.evidence.concerns import attributed_to, listing
from crawler.evidence.handover import MANIFEST, write_sums
from crawler.evidence.lifecycle import (
    AFTER_DESCRIPTION, GONE_DESCRIPTION, GONE_FILE, Lifecycle, both_zones, lifecycle,
)
from crawler.evidence.models import Evidence, EvidenceFile
from crawler.evidence.verify import Loaded, Problem, check_capture, check_file, http_head
from crawler.store.db import StateDB
from crawler.store.models import Hit, TargetRow

logger = logging.getLogger(__name__)

SEED = "江津府办发〔2016〕52号 重庆市江津区互联网金融风险专项整治工作实施方案"


class ExportError(Exception):
    """The hit has no usable evidence; the message says why."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or []


def legal_basis(labels: list[str]) -> list[dict]:
    from classifiers import CATEGORIES

    out = []
    for label in labels:
        category = CATEGORIES.get(label)
        out.append({
            "category": label,
            "name_zh": category.name_zh if category else "",
            "seed_section": category.seed_section if category else "",
            "lead_unit": category.lead_unit if category else "",
            "document": SEED,
        })
    return out


FETCHED = {
    "page": "page bytes as fetched (after gzip/br decoding)",
    "response": "HTTP status line and response headers byte for byte as the WARC response record holds them: "
                "the headers in the order received, names lower-cased and a repeated header's values joined (as "
                "Scrapy hands them over); the reason phrase is the standard one for the status code (Scrapy does "
                "not keep the server's); Content-Length is the stored length, the received Content-Length, "
                "Content-Encoding and Transfer-Encoding are X-Archive-Orig-* headers, and a Content-Encoding "
                "that Scrapy decoded (gzip/br) before finpatrol saw the headers is not there",
    "request": "HTTP request as sent, byte for byte as the WARC request record holds it",
}
RENDERED = {
    "page": "DOM serialised by Chromium after rendering (UTF-8), not the bytes the server sent: "
            "for a rendered page those are not archived",
    "response": "the server's status and response headers for the page, as Chromium reported them; they "
                "describe the server's response, not page.html (Content-Length is the length of the bytes "
                "the server sent, which are not archived; Content-Encoding is dropped; the browser does not "
                "report the HTTP version, so HTTP/1.1 in the status line is assumed)",
    "request": "the navigation request as handed to Chromium (Scrapy's headers; Chromium may add its own); "
               "the requests the page's scripts made are not recorded",
}
"""What each file is, for a page fetched as it is and for one rendered by Chromium."""


def _page_name(content_type: str, stem: str = "page") -> str:
    kind = content_type.split(";")[0].strip().lower()
    return stem + {"text/html": ".html", "application/xhtml+xml": ".xhtml"}.get(kind, ".bin")


def export_hit(db: StateDB, root: Path, hit_id: int, out_dir: Path, capture: str = "first") -> dict:
    """Write the files and manifest of a hit's first (or latest) capture; return the manifest.

    ``out_dir`` must be new or empty: files of an earlier export left beside this one (another
    hit's screenshot, say) would be taken for this hit's evidence."""
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty: export each hit into a new (or empty) folder, "
                          "so that no other hit's files end up beside its manifest")
    with db.new_session() as session:
        hit = session.get(Hit, hit_id)
        if hit is None:
            raise ExportError(f"no hit {hit_id}")
        captures = session.scalars(select(Evidence).where(Evidence.hit_id == hit_id).order_by(Evidence.id)).all()
        if not captures:
            raise ExportError(f"hit {hit_id} has no WARC capture (was the evidence pipeline enabled?)")
        target = session.get(TargetRow, hit.target_id)
        concerns = {"attributed_to": attributed_to(session, hit), "listed": listing(session, hit)}
        life = lifecycle(session, hit)
        chosen = captures[0] if capture == "first" else captures[-1]
        file_row = session.get(EvidenceFile, chosen.warc_file)
    problems, loaded = check_capture(root, chosen)
    if problems:
        raise ExportError(f"hit {hit_id}: the evidence fails verification", problems)
    files = _capture_files(chosen, loaded, concerns)
    if life.removal_capture is not None:
        files |= _removal_files(root, hit_id, life)
    file_check = _check_containing_file(root, file_row)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, (data, description) in files.items():
        (out_dir / name).write_bytes(data)
        written[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "description": description}
    manifest = _manifest(hit, target, concerns, chosen, captures, written, file_check) | life.manifest
    (out_dir / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    write_sums(out_dir)
    logger.info("exported hit %s (capture %s) to %s", hit_id, chosen.id, out_dir)
    return manifest


def _capture_files(ev: Evidence, loaded: Loaded, concerns: dict) -> dict[str, tuple[bytes, str]]:
    """File name → (bytes, description) of the capture: page, headers, WARC records, screenshot.

    The headers of a page fetched as it is are the HTTP heads of its WARC request and response
    records, byte for byte; a rendered page has no response record (its DOM is a resource), so its
    response headers are the ones Chromium reported, kept in the metadata record."""
    meta = loaded.metadata or {}
    headers = meta.get("http", {}).get("headers", {})
    said = RENDERED if ev.rendered else FETCHED
    page_is = said["page"]
    if concerns["listed"] and concerns["listed"]["slot"]:
        page_is += "; this is the list page that shows the hit as an entry (see listed)"
    heads = {ref["type"]: http_head(member) for ref, member in zip(ev.records, loaded.members)
             if ref["type"] in ("request", "response")}
    files = {
        _page_name(headers.get("content-type", "text/html")): (loaded.payload, page_is),
        "response-headers.txt": (heads.get("response") or _head(meta).encode("utf-8"), said["response"]),
        "request-headers.txt": (heads["request"], said["request"]),
        "evidence.warc.gz": (b"".join(loaded.members), "the capture's WARC records, byte-identical to the archive"),
    }
    if loaded.screenshot is not None:
        files["screenshot.png"] = (loaded.screenshot, "full-page screenshot (PNG) taken by the browser")
    return files


def _removal_files(root: Path, hit_id: int, life: Lifecycle) -> dict[str, tuple[bytes, str]]:
    """The verified capture that shows the hit's removal: the 404/410 answer's WARC records, or the
    page after the removal (bytes, screenshot, WARC records). Its manifest entry gets the redirect
    chain the request went through and the name of the page file."""
    ev = life.removal_capture
    problems, loaded = check_capture(root, ev)
    if problems:
        raise ExportError(f"hit {hit_id}: the capture that shows its removal (capture {ev.id}) "
                          "fails verification", problems)
    entry = life.manifest["hit_removal"]["removal_capture"]
    entry["redirect_chain"] = (loaded.metadata or {}).get("redirect_chain")
    if life.exported_as == GONE_FILE:
        return {GONE_FILE: (b"".join(loaded.members), GONE_DESCRIPTION)}
    headers = (loaded.metadata or {}).get("http", {}).get("headers", {})
    page = _page_name(headers.get("content-type", "text/html"), "page-after-removal")
    entry["exported_page"] = page
    said = "DOM serialised by Chromium" if ev.rendered else "page bytes as fetched"
    files = {
        page: (loaded.payload, f"{said} by the patrol that found the hit's claims no longer on the page "
                               "(hit_removal.removal_capture): the page after the removal"),
        life.exported_as: (b"".join(loaded.members), AFTER_DESCRIPTION),
    }
    if loaded.screenshot is not None:
        files["screenshot-after-removal.png"] = (loaded.screenshot, "full-page screenshot (PNG) of the page "
                                                                    "after the removal")
    return files


def _check_containing_file(root: Path, row: EvidenceFile | None) -> dict:
    """The capture's WARC file against the size and SHA-256 recorded at its close.

    ``file_verified`` is None when no hash was recorded: the file is still being written
    (or its writer died), so only its records can be checked, as ``evidence verify`` does."""
    if row is None or row.sha256 is None:
        return {"file_verified": None, "file_problems": []}
    problems = check_file(root, row)
    return {"file_verified": not problems, "file_problems": [p.what for p in problems]}


def _head(meta: dict) -> str:
    http = meta.get("http", {})
    lines = [f"{http.get('protocol', 'HTTP/1.1')} {http.get('status', '')}"]
    lines += [f"{k}: {v}" for k, v in http.get("headers", {}).items()]
    return "\r\n".join(lines) + "\r\n"


def _manifest(hit: Hit, target: TargetRow | None, concerns: dict, ev: Evidence, captures: list[Evidence],
              files: dict, file_check: dict) -> dict:
    return {
        "hit_id": hit.id,
        "url": ev.url,
        "final_url": ev.final_url,
        "http_status": ev.status,
        "rendered": ev.rendered,
        "fetched_at": both_zones(ev.fetched_at),
        "hit_first_seen": both_zones(hit.first_seen),
        "hit_last_seen": both_zones(hit.last_seen),
        "hit_removed_at": both_zones(hit.removed_at) if hit.removed_at else None,
        "hit_replaced_by": hit.replaced_by,
        "hit_reclassified": bool(hit.reclassified),
        "page_sha256": ev.payload_sha256,
        "screenshot_sha256": ev.screenshot_sha256,
        "target": {
            "id": hit.target_id,
            "name": target.name if target else "",
            "credit_code": target.credit_code if target else None,
            "business": target.business if target else "",
        },
        "attributed_to": concerns["attributed_to"],
        "listed": concerns["listed"],
        "labels": list(hit.labels),
        "risk": hit.risk,
        "rule_ids": live_rule_ids(hit.findings),
        "findings": hit.findings,
        "yields": hit.yields,
        "legal_basis": legal_basis(list(hit.labels)),
        "patrol_run": ev.run_id,
        "warc": {
            "file": ev.warc_file,
            "record_id": ev.record_id,
            "offset": ev.offset,
            "screenshot_record_id": ev.screenshot_record_id,
            "metadata_record_id": ev.metadata_record_id,
            "records": ev.records,
        },
        "captures": [
            {"id": c.id, "fetched_at": both_zones(c.fetched_at), "warc_file": c.warc_file,
             "record_id": c.record_id, "page_sha256": c.payload_sha256}
            for c in captures
        ],
        "files": files,
        "exported_at": both_zones(datetime.now(UTC)),
        "verified": file_check["file_verified"] is not False,  # the records did (else no export), and their file
        "records_verified": True,
        **file_check,
    }
