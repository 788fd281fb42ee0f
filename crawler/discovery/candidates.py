"""Unregistered sites (可疑网站): find company names on a page, record candidates, decide.

A domain reached from a channel or source whose page carries a promotional category
(see ``classifiers.taxonomy.PROMOTIONAL``) and that is in no target's scope becomes
a candidate, with the company names on the page (footer, ICP line, advertiser) and
the restricted-name screen (``classifiers.screen_name``, 三(一)). The operator then
promotes it (a target is added to ``patrol.yaml`` and the candidate's hits are
attributed to it) or dismisses it. A promoted candidate is not dismissed (its target
is disabled in the config instead); a dismissed one may be promoted later, the
dismissal kept in its note.
"""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select

from classifiers import screen_name
from crawler.config import ConfigError, load_config
from crawler.discovery.models import Candidate, HitAttribution, ListedPage
from crawler.store.db import StateDB, iso, utcnow
from crawler.store.models import Hit

logger = logging.getLogger(__name__)

COMPANY = re.compile(r"[\u4e00-\u9fa5（）()]{2,30}?(?:股份有限公司|有限责任公司|有限公司|合伙企业\S{0,6}?|集团)")
ICP = re.compile(r"[\u4e00-\u9fa5]ICP[备证][\s:：]*\d+号(?:-\d+)?")
FOOTER_XPATH = "//footer | //*[contains(@class,'footer') or contains(@id,'footer') or contains(@class,'copyright')]"
_PREFIXES = ("版权所有", "主办单位", "运营方", "主办", "版权", "所有", "运营", "单位", "公司")


def visible_text(body: bytes, encoding: str) -> tuple[str, str]:
    """(footer text, whole visible text) of an HTML body."""
    from lxml import html as lxml_html

    try:
        doc = lxml_html.fromstring(body.decode(encoding or "utf-8", errors="replace"))
    except (ValueError, TypeError) as e:  # lxml raises ParserError (a ValueError) on empty documents
        logger.debug("no HTML to scan: %s", e)
        return "", ""
    for bad in doc.xpath("//script | //style | //noscript"):
        bad.drop_tree()
    footer = " ".join(" ".join(el.text_content().split()) for el in doc.xpath(FOOTER_XPATH))
    return footer, " ".join(doc.text_content().split())


def _clean(name: str) -> str:
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) - len(prefix) >= 6:
            name = name[len(prefix):]
    return name.lstrip("：:（(")


def company_names(body: bytes, encoding: str, extra: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(company names, ICP numbers): footer first, then the rest of the page, then ``extra``."""
    footer, whole = visible_text(body, encoding)
    names: list[str] = []
    for text in (footer, whole, " ".join(extra)):
        for match in COMPANY.findall(text):
            name = _clean(match)
            if len(name) >= 6 and name not in names:
                names.append(name)
    icp = list(dict.fromkeys(ICP.findall(footer + " " + whole)))
    return names[:10], icp[:5]


def domain_of(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def record_candidate(session, *, url: str, via: str, hit_id: int | None, categories: list[str],
                     names: list[str], icp: list[str]) -> Candidate:
    """Insert or update the candidate of ``url``'s domain (caller commits)."""
    domain, now = domain_of(url), utcnow()
    row = session.scalar(select(Candidate).where(Candidate.domain == domain))
    if row is None:
        row = Candidate(domain=domain, status="open", first_seen=now, via=[], urls=[], hit_ids=[],
                        categories=[], company_names=[], icp=[], restricted={})
        session.add(row)
    row.last_seen = now
    row.via = _merge(row.via, [via])
    row.urls = _merge(row.urls, [url])[:20]
    row.hit_ids = _merge(row.hit_ids, [hit_id] if hit_id else [])
    row.categories = _merge(row.categories, categories)
    row.company_names = _merge(row.company_names, names)
    row.icp = _merge(row.icp, icp)
    row.restricted = {n: list(screen_name(n)) for n in row.company_names if screen_name(n)}
    return row


def _merge(old, new) -> list:
    return list(dict.fromkeys([*(old or []), *new]))


def candidate_dict(row: Candidate) -> dict:
    return {
        "id": row.id, "domain": row.domain, "status": row.status, "first_seen": iso(row.first_seen),
        "last_seen": iso(row.last_seen), "via": row.via, "urls": row.urls, "hit_ids": row.hit_ids,
        "categories": row.categories, "company_names": row.company_names, "icp": row.icp,
        "restricted": row.restricted, "decided_at": iso(row.decided_at), "note": row.note,
        "promoted_target": row.promoted_target,
    }


def list_candidates(db: StateDB, status: str | None = None) -> list[dict]:
    query = select(Candidate).order_by(Candidate.last_seen.desc(), Candidate.id.desc())
    if status:
        query = query.where(Candidate.status == status)
    with db.new_session() as session:
        return [candidate_dict(r) for r in session.scalars(query)]


class DecisionError(ValueError):
    """A decision the candidate's earlier one rules out (a promoted candidate dismissed or promoted again)."""


def get_candidate(db: StateDB, candidate_id: int) -> dict | None:
    with db.new_session() as session:
        row = session.get(Candidate, candidate_id)
        return candidate_dict(row) if row is not None else None


def _earlier(row: Candidate) -> str:
    """The decision being replaced, as it is kept at the end of the note."""
    target = f" → target {row.promoted_target}" if row.promoted_target else ""
    note = f": {row.note}" if row.note else ""
    return f"[earlier: {row.status} {iso(row.decided_at)}{target}{note}]"


def decide(db: StateDB, candidate_id: int, status: str, note: str = "", target_id: str | None = None) -> dict:
    """Record a decision (``promoted`` with ``target_id``, or ``dismissed``).

    A promoted candidate stays promoted: its target is in the config, so dismissing it
    (or promoting it again) raises :class:`DecisionError`. A dismissed one may be
    promoted later, or dismissed again; the earlier decision, its time and note, is kept
    at the end of the note. Promoting attributes the candidate's hits to the new target
    (:func:`attribute_hits`); the result carries ``attributed`` and ``earlier``.
    """
    with db.new_session() as session, session.begin():
        row = session.get(Candidate, candidate_id)
        if row is None:
            raise KeyError(candidate_id)
        if row.status == "promoted":
            raise DecisionError(f"candidate {row.id} ({row.domain}) was promoted to target {row.promoted_target} "
                                f"on {iso(row.decided_at)}")
        earlier = candidate_dict(row) if row.status != "open" else None
        kept = _earlier(row) if earlier else ""
        row.status, row.decided_at = status, utcnow()
        row.note = "\n".join(part for part in (note, kept) if part)
        row.promoted_target = target_id
        attributed = attribute_hits(session, row, target_id) if status == "promoted" and target_id else {}
        return candidate_dict(row) | {"attributed": attributed, "earlier": earlier}


def attribute_hits(session, row: Candidate, target_id: str) -> dict:
    """Attribute the candidate's hits to its new target by domain (caller commits).

    What the attribute pipeline would have stored had the target been configured: the
    domain is checked first there, so an attribution by advertiser or name to another
    target gives way, and one by domain (a hop of the landing chain on a registered
    site) stays. Returns ``{"added": n, "moved": {hit id: earlier target}, "kept": {hit id: target}}``.
    """
    added, moved, kept = 0, {}, {}
    for hit_id in row.hit_ids or ():
        hit = session.get(Hit, hit_id)
        if hit is None:
            continue
        current = session.get(HitAttribution, hit_id)
        if current is not None and (current.target_id == target_id or current.reason == "domain"):
            if current.target_id != target_id:
                kept[hit_id] = current.target_id
            continue
        listed = session.get(ListedPage, hit.page_id)
        origin, _, origin_id = hit.target_id.partition(":")
        if listed is not None:
            origin, origin_id = listed.origin, listed.origin_id
            listed.attributed_target, listed.attribution_reason = target_id, "domain"
            listed.attribution_detail = row.domain
        if current is None:
            added += 1
            session.add(HitAttribution(hit_id=hit_id, page_id=hit.page_id, target_id=target_id, reason="domain",
                                       detail=row.domain, origin=origin, origin_id=origin_id, at=utcnow()))
        else:
            moved[hit_id] = current.target_id
            current.target_id, current.reason, current.detail, current.at = target_id, "domain", row.domain, utcnow()
    return {"added": added, "moved": moved, "kept": kept}


TARGET_ID_LENGTH = 64
"""The state DB's target id columns are ``String(64)``."""


def target_slug(row: dict, taken: set[str] | frozenset = frozenset()) -> str:
    """A target id from the candidate's host and port (``127-0-0-1-8080``), none of ``taken``."""
    url = row["urls"][0] if row["urls"] else f"http://{row['domain']}/"
    parts = urlsplit(url)
    host = f"{parts.hostname or 'site'}-{parts.port}" if parts.port else (parts.hostname or "site")
    slug = re.sub(r"[^a-z0-9_-]+", "-", host.lower()).strip("-") or "site"
    slug = slug[:TARGET_ID_LENGTH].rstrip("-")
    number, unique = 1, slug
    while unique in taken:
        number += 1
        suffix = f"-{number}"
        unique = slug[:TARGET_ID_LENGTH - len(suffix)].rstrip("-") + suffix
    return unique


def suggested_target(row: dict, target_id: str | None, name: str | None, business: str,
                     taken: set[str] | frozenset = frozenset()) -> dict:
    """The ``targets:`` entry a promoted candidate becomes; without ``target_id``, one from
    its host and port that is none of ``taken`` (the ids already configured)."""
    url = row["urls"][0] if row["urls"] else f"http://{row['domain']}/"
    parts = urlsplit(url)
    return {
        "id": target_id or target_slug(row, taken), "name": name or (row["company_names"] or [row["domain"]])[0],
        "business": business, "urls": [f"{parts.scheme}://{parts.netloc}/"],
    }


def add_target(config_file: Path, entry: dict) -> None:
    """Append a target to the config (comments kept); the new file must load, else nothing changes."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    document = yaml.load(config_file.read_text(encoding="utf-8")) or {}
    targets = document.setdefault("targets", [])
    if any(t.get("id") == entry["id"] for t in targets):
        raise ValueError(f"target id {entry['id']!r} exists already; choose another with --id")
    targets.append(entry)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    tmp = config_file.with_name(config_file.name + ".tmp")
    tmp.write_text(buffer.getvalue(), encoding="utf-8")
    try:
        load_config(tmp)
    except ConfigError:
        tmp.unlink()
        raise
    os.replace(tmp, config_file)
