"""Search documents built from state DB rows: pages, hits and targets.

Document ids are content-stable: a hash of the config's ``origin`` (the district)
and the row's natural identity (target + URL for a page; target + URL + verdict
key for a hit; the target id for a target), never a database row number, so a
re-push, a re-sync or a rebuilt state DB overwrites instead of duplicating, and
several districts can share one cluster. Fields are whitelisted so the strict
mappings of ``es_mappings/`` never meet a field they do not know; Chinese text
is sent twice: as written (for the ``cjk`` analyzer) and as jieba words joined
by spaces (``*_seg``, whitespace-analysed, no plugin needed). A page's document
holds the page as it is now; a hit's holds the words of the version it was found in
(``elastic_words``), which stay what they were after the page changed.
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from classifiers.tokenize import index_terms
from crawler.items import post_url
from crawler.store.db import in_chunks, iso, utcnow
from crawler.store.models import Hit, Page, TargetRow

logger = logging.getLogger(__name__)

RISK_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}
SIGNAL_CATEGORIES = frozenset({"collapse_signal", "mass_incident"})
OPINION_CONTEXTS = frozenset({"opinion", "news", "complaint", "forum", "regulator"})
FINDING_KEYS = {
    "category": str, "rule_id": str, "text": str, "start": int, "end": int, "field": str,
    "snippet": str, "weight": float, "negated": bool, "negated_by": str,
}
YIELD_KEYS = {
    "text": str, "low_annual_pct": float, "high_annual_pct": float, "period": str, "promised": bool,
}
BUSINESS_LEAD_UNIT = {
    "p2p": "江津银监分局",
    "crowdfunding": "区金融办",
    "insurance": "区金融办",
    "payment": "人行江津中心支行",
    "asset_management": "人行江津中心支行",
    "other": "江津工商分局",
}


class Words(NamedTuple):
    """A hit's text as the version it was found in said it, and the jieba terms of its title and text."""

    text: str
    title_seg: str
    text_seg: str


def doc_id(origin: str, *parts: str) -> str:
    blob = "\x1f".join((origin, *parts))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]


def page_doc_id(origin: str, page: Page) -> str:
    return doc_id(origin, "page", page.target_id, page.url)


def hit_doc_id(origin: str, hit: Hit) -> str:
    return doc_id(origin, "hit", hit.target_id, hit.url, hit.verdict_key)


def target_doc_id(origin: str, target_id: str) -> str:
    return doc_id(origin, "target", target_id)


@lru_cache(maxsize=64)
def segment(text: str) -> str:
    """jieba words joined by single spaces, for the whitespace-analysed ``*_seg`` fields.

    The same terms as the embedded index (search mode), so both answer the same queries.
    Cached for a page's doc and its hit's doc, which segment the same text one after
    the other; a page's text and terms take about 150 KB, so the cache stays small.
    """
    return index_terms(text or "")


def stored_segments(db, page_ids, table: str = "page_fts") -> dict[int, tuple[str, str]]:
    """(title, text) tokens the embedded index already holds (SQLite state DB), by page id
    (by page version id with ``table="version_fts"``: superseded versions).

    The embedded index stores exactly ``classifiers.tokenize`` joined by spaces, so
    re-segmenting the same text for the cluster would only burn CPU in the reactor.
    """
    ids = sorted({int(i) for i in page_ids})
    if db.index is None or not ids:
        return {}
    out: dict[int, tuple[str, str]] = {}
    for chunk in in_chunks(ids):
        marks = ", ".join(f":i{n}" for n in range(len(chunk)))
        rows = db.execute(f"SELECT rowid, title, body FROM {table} WHERE rowid IN ({marks})",
                          **{f"i{n}": v for n, v in enumerate(chunk)})
        out.update({row[0]: (row[1], row[2]) for row in rows})
    return out


def lead_units(labels) -> list[str]:
    try:
        from classifiers import CATEGORIES
    except ImportError:  # the classifier package is optional for indexing
        return []
    units: list[str] = []
    for label in labels:
        category = CATEGORIES.get(label)
        unit = getattr(category, "lead_unit", None) if category else None
        for u in ([unit] if isinstance(unit, str) else list(unit or ())):
            if u and u not in units:
                units.append(u)
    return units


def _clean(entry: dict, keys: dict) -> dict:
    out = {}
    for key, kind in keys.items():
        value = entry.get(key)
        if value is None:
            continue
        if kind is str and not isinstance(value, str):
            value = str(value)
        out[key] = value
    return out


def _evidence(sha256: str, fetched_at, final_url: str, stored: dict | None = None) -> dict:
    evidence = {"sha256": sha256, "fetched_at": iso(fetched_at), "final_url": final_url}
    evidence.update({k: str(v) for k, v in (stored or {}).items() if v})
    return evidence


def _domain(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _target_fields(target: TargetRow | None, target_id: str) -> dict:
    return {
        "target_id": target_id,
        "target_name": target.name if target else target_id,
        "business": target.business if target else "other",
    }


def page_doc(origin: str, page: Page, target: TargetRow | None, segs: tuple[str, str] | None = None) -> dict:
    labels = list(page.labels or ())
    title_seg, text_seg = segs or (segment(page.title), segment(page.text))
    return {
        "origin": origin,
        "page_id": page.id,
        "hit_id": page.current_hit_id,
        **_target_fields(target, page.target_id),
        "url": page.url,
        "final_url": page.final_url,
        "domain": _domain(page.final_url or page.url),
        "status": page.status,
        "title": page.title or "",
        "title_seg": title_seg,
        "text": page.text or "",
        "text_seg": text_seg,
        "labels": labels,
        "lead_units": lead_units(labels),
        "risk": page.risk,
        "risk_rank": RISK_RANK.get(page.risk, 0),
        "score": float(page.score or 0.0),
        "published": page.published or None,
        "language": page.language,
        "rendered": bool(page.rendered),
        "sha256": page.sha256,
        "text_fingerprint": page.text_fingerprint,
        "first_seen": iso(page.first_seen),
        "last_seen": iso(page.last_seen),
        "fetched_at": iso(page.fetched_at),
        "gone_at": iso(page.gone_at),
        "evidence": _evidence(page.sha256, page.fetched_at, page.final_url),
        "indexed_at": iso(utcnow()),
    }


def hit_doc(origin: str, hit: Hit, page: Page | None, target: TargetRow | None, words: Words,
            evidence: dict | None = None) -> dict:
    """``words``: the title's terms and the text of the hit's own version (``elastic_words.hit_words``)."""
    labels = list(hit.labels or ())
    findings = [_clean(f, FINDING_KEYS) for f in hit.findings or () if isinstance(f, dict)]
    yields = [_clean(y, YIELD_KEYS) for y in hit.yields or () if isinstance(y, dict)]
    highs = [y["high_annual_pct"] for y in yields if isinstance(y.get("high_annual_pct"), (int, float))]
    # where the claim was seen (its capture's), not where the page leads now: it may redirect since
    final_url = (evidence or {}).get("final_url") or (page.final_url if page is not None else None) or hit.url
    return {
        "origin": origin,
        "hit_id": hit.id,
        "page_id": hit.page_id,
        **_target_fields(target, hit.target_id),
        "url": hit.url,
        "post": post_url(hit.url),
        "final_url": final_url,
        "domain": _domain(final_url or hit.url),
        "title": hit.title or "",
        "title_seg": words.title_seg,
        "text": words.text,
        "text_seg": words.text_seg,
        "labels": labels,
        "lead_units": lead_units(labels),
        "risk": hit.risk,
        "risk_rank": RISK_RANK.get(hit.risk, 0),
        "score": float(hit.score or 0.0),
        "context": hit.context or "",
        "signal": bool(SIGNAL_CATEGORIES & set(labels)) or (hit.context or "") in OPINION_CONTEXTS,
        "current": page is not None and page.current_hit_id == hit.id and hit.removed_at is None,
        "findings": findings,
        "finding_count": sum(1 for f in findings if not f.get("negated")),
        "yields": yields,
        "max_annual_pct": max(highs) if highs else None,
        "verdict_key": hit.verdict_key,
        "sha256": hit.sha256,
        "text_fingerprint": hit.text_fingerprint,
        "first_seen": iso(hit.first_seen),
        "last_seen": iso(hit.last_seen),
        "fetched_at": iso(hit.fetched_at),
        "removed_at": iso(hit.removed_at),
        "replaced_by": hit.replaced_by,
        "reclassified": bool(hit.reclassified),
        "reopened_at": iso(hit.reopened_at),
        "first_run_id": hit.first_run_id,
        "last_run_id": hit.last_run_id,
        "evidence": _evidence(hit.sha256, hit.fetched_at, final_url, evidence),
        "indexed_at": iso(utcnow()),
    }


def target_doc(origin: str, target: TargetRow, hits: list[Hit]) -> dict:
    """A target with its current risk: the highest risk of hits seen in its latest patrol."""
    latest = max((h.last_run_id or 0 for h in hits), default=0)
    current = [h for h in hits if (h.last_run_id or 0) == latest]
    risk = max((h.risk for h in current), key=lambda r: RISK_RANK.get(r, 0), default="none")
    domains = sorted({_domain(u) for u in target.urls or ()} - {""})
    return {
        "origin": origin,
        "target_id": target.id,
        "target_name": target.name,
        "aliases": list(target.aliases or ()),
        "credit_code": target.credit_code,
        "business": target.business,
        "lead_units": [BUSINESS_LEAD_UNIT.get(target.business, "区金融办")],
        "urls": list(target.urls or ()),
        "domains": domains,
        "risk": risk,
        "risk_rank": RISK_RANK.get(risk, 0),
        "hits": len(hits),
        "high_hits": sum(1 for h in hits if h.risk == "high"),
        "signals": sum(1 for h in hits if SIGNAL_CATEGORIES & set(h.labels or ())),
        "last_hit_at": iso(max((h.last_seen for h in hits), default=None)),
        "updated_at": iso(target.updated_at),
        "indexed_at": iso(utcnow()),
    }
