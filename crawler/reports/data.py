"""What dossiers and period reports say, read from the state DB as plain dicts.

An institution's hits are its own site's hits plus the channel and opinion hits
attributed to it (``hit_attributions``). Every hit carries its evidence reference
(WARC file, record id, SHA-256) so a printed dossier points at the bytes.
Settings: the ``grading:`` block (window and rules), ``targets``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from crawler.config import PatrolConfig, Target
from crawler.discovery.models import HitAttribution, ListedPage, ensure_schema
from crawler.evidence.models import Evidence
from crawler.reports.coverage import coverage_rows
from crawler.reports.grading import OPINION_CATEGORIES, Grade, HitFacts, grade
from crawler.store.db import StateDB, as_utc, iso, utcnow
from crawler.store.models import Hit, PageChange, PatrolRun, RunTarget

logger = logging.getLogger(__name__)


def category_info() -> dict[str, dict]:
    from classifiers import CATEGORIES

    return {c.id: {"name_zh": c.name_zh, "seed": c.seed_section, "lead_unit": c.lead_unit, "severity": c.severity}
            for c in CATEGORIES.values()}


def _max_yield(yields: list) -> float | None:
    values = [y.get("high_annual_pct") or y.get("low_annual_pct") for y in yields or () if isinstance(y, dict)]
    values = [v for v in values if isinstance(v, (int, float))]
    return max(values) if values else None


def _hit_row(session, hit: Hit, attribution: HitAttribution | None) -> dict:
    ev = session.scalar(select(Evidence).where(Evidence.hit_id == hit.id).order_by(Evidence.id.desc()).limit(1))
    listed = session.get(ListedPage, hit.page_id)
    return {
        "id": hit.id, "url": hit.url, "title": hit.title, "labels": list(hit.labels), "risk": hit.risk,
        "score": round(float(hit.score), 3), "context": hit.context,
        "first_seen": iso(hit.first_seen), "last_seen": iso(hit.last_seen),
        "removed_at": iso(hit.removed_at), "reopened_at": iso(hit.reopened_at), "replaced_by": hit.replaced_by,
        "found_on": hit.target_id,
        "attribution": {"reason": attribution.reason, "detail": attribution.detail} if attribution else
        {"reason": "own_site", "detail": ""},
        "listed": {"keyword": listed.keyword, "rank": listed.rank, "is_ad": listed.is_ad,
                   "advertiser": listed.advertiser, "landing_chain": listed.landing_chain,
                   "author": listed.author, "posted_at": listed.posted_at, "replies": listed.replies,
                   "kind": listed.kind} if listed else None,
        "yields": [y for y in hit.yields or () if isinstance(y, dict)],
        "max_yield": _max_yield(hit.yields),
        "snippets": [f.get("snippet") or f.get("text") for f in hit.findings or () if not f.get("negated")][:3],
        "evidence": {"warc_file": ev.warc_file, "record_id": ev.record_id, "sha256": ev.payload_sha256,
                     "screenshot": bool(ev.screenshot_record_id)} if ev else {"sha256": hit.sha256},
    }


def institution_hits(db: StateDB, target_id: str) -> list[dict]:
    """Own and attributed hits of one institution, newest first."""
    ensure_schema(db)
    with db.new_session() as session:
        attributed = {a.hit_id: a for a in session.scalars(
            select(HitAttribution).where(HitAttribution.target_id == target_id))}
        hits = session.scalars(
            select(Hit).where(or_(Hit.target_id == target_id, Hit.id.in_(list(attributed))))
            .order_by(Hit.first_seen.desc(), Hit.id.desc())
        ).all()
        return [_hit_row(session, h, attributed.get(h.id)) for h in hits]


def grade_hits(config: PatrolConfig, hits: list[dict], now: datetime | None = None) -> Grade:
    since = (now or utcnow()) - timedelta(days=config.grading.window_days)
    facts = [
        HitFacts(tuple(h["labels"]), h["risk"], bool(h["removed_at"]), h["max_yield"])
        for h in hits if datetime.fromisoformat(h["last_seen"]) >= since
    ]
    return grade(config.grading, facts)


def _by_month(hits: list[dict]) -> list[dict]:
    table: dict[str, Counter] = defaultdict(Counter)
    for h in hits:
        for label in h["labels"]:
            table[h["first_seen"][:7]][label] += 1
    return [{"month": m, "counts": dict(table[m])} for m in sorted(table)]


def _changes(session, target_id: str) -> dict:
    rows = session.scalars(select(PageChange).where(PageChange.target_id == target_id)
                           .order_by(PageChange.at.desc()).limit(30)).all()
    counts = Counter(r.kind for r in rows)
    return {"counts": dict(counts),
            "recent": [{"at": iso(r.at), "kind": r.kind, "url": r.url, "run": r.run_id} for r in rows]}


def _runs(session, target_id: str) -> list[dict]:
    rows = session.execute(
        select(RunTarget, PatrolRun).join(PatrolRun, PatrolRun.id == RunTarget.run_id)
        .where(RunTarget.target_id == target_id).order_by(PatrolRun.id.desc()).limit(10)).all()
    return [{"run": run.id, "at": iso(run.started_at), "status": run.status, "pages": rt.pages, "failed": rt.failed,
             "hits": rt.hits, "errors": rt.errors} for rt, run in rows]


def dossier(config: PatrolConfig, db: StateDB, target: Target) -> dict:
    from classifiers import screen_name

    hits = institution_hits(db, target.id)
    coverage = next((r for r in coverage_rows(config, db) if r["kind"] == "target" and r["id"] == target.id), {})
    with db.new_session() as session:
        changes, runs = _changes(session, target.id), _runs(session, target.id)
    live = [h for h in hits if not h["removed_at"]]
    replaced = [h for h in hits if h["removed_at"] and h["replaced_by"]]
    yields = {y.get("text"): {**y, "hit": h["id"]} for h in hits for y in h["yields"]}
    opinion = [h for h in hits if OPINION_CATEGORIES & set(h["labels"])]
    return {
        "generated_at": iso(utcnow()),
        "identity": {"id": target.id, "name": target.name, "aliases": list(target.aliases),
                     "credit_code": target.credit_code, "business": target.business, "urls": list(target.urls),
                     "allowed_domains": list(target.allowed_domains),
                     "restricted_words": list(screen_name(target.name))},
        "coverage": coverage, "runs": runs,
        "grade": grade_hits(config, hits).to_dict(),
        "hits": hits, "by_month": _by_month(hits),
        "categories": category_info(),
        "yields": sorted(yields.values(), key=lambda y: -(y.get("high_annual_pct") or 0)),
        "changes": changes,
        # removed: rectified only; a hit replaced by a reworded one is not rectification
        "rectification": {"live": len(live), "removed": len(hits) - len(live) - len(replaced), "replaced": len(replaced),
                          "reopened": sum(1 for h in hits if h["reopened_at"])},
        "opinion": opinion,
    }


def _in(value: datetime | None, since: datetime, until: datetime) -> bool:
    value = as_utc(value)
    return value is not None and since <= value < until


def period_report(config: PatrolConfig, db: StateDB, since: datetime, until: datetime) -> dict:
    ensure_schema(db)
    info = category_info()
    with db.new_session() as session:
        patrolled = {rt.target_id for rt, run in session.execute(
            select(RunTarget, PatrolRun).join(PatrolRun, PatrolRun.id == RunTarget.run_id)
            .where(RunTarget.pages > 0)) if _in(run.started_at, since, until)}
        hits = [h for h in session.scalars(select(Hit).where(Hit.first_seen < until, Hit.last_seen >= since))]
        removed = [h for h in session.scalars(select(Hit).where(Hit.removed_at.is_not(None)))
                   if _in(h.removed_at, since, until)]
        replaced = [h for h in removed if h.replaced_by is not None]  # reworded, not rectified
        removed = [h for h in removed if h.replaced_by is None]
        trend = _opinion_trend(session, [h for h in hits if OPINION_CATEGORIES & set(h.labels)])
    by_cat = Counter(label for h in hits for label in h.labels)
    by_unit = Counter()
    for cat, n in by_cat.items():
        by_unit[info.get(cat, {}).get("lead_unit", "?")] += n
    targets = [t for t in config.targets if t.enabled]
    risks = []
    for t in targets:
        t_hits = institution_hits(db, t.id)
        g = grade_hits(config, t_hits, until)
        risks.append({"id": t.id, "name": t.name, "business": t.business, "grade": g.grade, "reasons": g.reasons,
                      "hits": len(t_hits), "live": sum(1 for h in t_hits if not h["removed_at"])})
    order = {"高风险": 0, "重点关注": 1, "一般关注": 2, "正常": 3}
    risks.sort(key=lambda r: (order[r["grade"]], -r["live"], r["id"]))
    return {
        "since": iso(since), "until": iso(until), "generated_at": iso(utcnow()),
        "institutions": {"total": len(targets), "patrolled": sorted(t.id for t in targets if t.id in patrolled),
                         "not_patrolled": sorted(t.id for t in targets if t.id not in patrolled)},
        "hits_total": len(hits),
        "by_category": [{"id": c, "name_zh": info.get(c, {}).get("name_zh", c),
                         "lead_unit": info.get(c, {}).get("lead_unit", ""), "count": n}
                        for c, n in by_cat.most_common()],
        "by_lead_unit": [{"unit": u, "count": n} for u, n in by_unit.most_common()],
        "top_risks": risks[:10], "opinion_trend": trend,
        "rectification": {"live": sum(1 for h in hits if h.removed_at is None), "removed_in_period": len(removed),
                          "replaced_in_period": len(replaced),
                          "reopened": sum(1 for h in hits if h.reopened_at is not None)},
    }


def _opinion_trend(session, hits: list[Hit]) -> list[dict]:
    """Opinion signals per day and category, by the post's publish date when known."""
    table: dict[str, Counter] = defaultdict(Counter)
    for h in hits:
        listed = session.get(ListedPage, h.page_id)
        day = (listed.posted_at if listed and listed.posted_at else iso(h.first_seen))[:10]
        for label in set(h.labels) & OPINION_CATEGORIES:
            table[day][label] += 1
    return [{"day": d, "counts": dict(table[d])} for d in sorted(table)]
