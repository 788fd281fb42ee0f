"""What dossiers and period reports say, read from the state DB as plain dicts.

An institution's hits are its own site's hits plus the channel and opinion hits, and the
posts on forums registered as targets, attributed to it (``hit_attributions``). A target
whose pages are posts about others (``kind`` other than platform_page) is not graded, and
its posts naming no institution are attributed to none. Every hit carries its evidence
reference (WARC file, record id, SHA-256) so a printed dossier points at the bytes.
Settings: the ``grading:`` block (window and rules), ``targets``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from crawler.config import PatrolConfig, Target
from crawler.discovery.listed import listed_publish_times
from crawler.discovery.models import HitAttribution, ListedPage, ensure_schema
from crawler.evidence.models import Evidence
from crawler.items import post_url
from crawler.reports.contents import count_contents, live_contents
from crawler.reports.coverage import target_coverage
from crawler.reports.grading import (OPINION_CATEGORIES, UNPATROLLED, Grade, HitFacts, grade, not_graded,
                                     unpatrolled)
from crawler.store.changes import taken_down
from crawler.store.db import StateDB, as_utc, iso, utcnow
from crawler.store.models import Hit, HitCategory, PageChange, PatrolRun, RunTarget
from crawler.store.same_content import same_content, with_same_content

logger = logging.getLogger(__name__)


def category_info() -> dict[str, dict]:
    from classifiers import CATEGORIES

    return {c.id: {"name_zh": c.name_zh, "seed": c.seed_section, "lead_unit": c.lead_unit, "severity": c.severity}
            for c in CATEGORIES.values()}


def _max_yield(yields: list) -> float | None:
    values = [y.get("high_annual_pct") or y.get("low_annual_pct") for y in yields or () if isinstance(y, dict)]
    values = [v for v in values if isinstance(v, (int, float))]
    return max(values) if values else None


LISTED_COLUMNS = ("keyword", "rank", "is_ad", "advertiser", "landing_chain", "author", "posted_at", "replies", "kind")


def _attribution(hit: Hit, stored: HitAttribution | None, own_site: bool) -> dict:
    """The institution the hit concerns (``id``) and why: as stored, else the site's own when it is
    an institution's site (``own_site``), else none (``id`` None: a post naming no institution)."""
    if stored is not None:
        return {"id": stored.target_id, "reason": stored.reason, "detail": stored.detail}
    if own_site:
        return {"id": hit.target_id, "reason": "own_site", "detail": ""}
    return {"id": None, "reason": "none", "detail": ""}


def _hit_row(hit: Hit, attribution: dict, ev, listed) -> dict:
    """One hit as a dict; ``ev`` is its latest evidence row, ``listed`` its listing row (or None)."""
    return {
        "id": hit.id, "url": hit.url, "post": post_url(hit.url), "title": hit.title, "labels": list(hit.labels),
        "risk": hit.risk, "score": round(float(hit.score), 3), "context": hit.context,
        "first_seen": iso(hit.first_seen), "last_seen": iso(hit.last_seen),
        "removed_at": iso(hit.removed_at), "reopened_at": iso(hit.reopened_at), "replaced_by": hit.replaced_by,
        "taken_down": (hit.removed_at is not None and hit.replaced_by is None and not hit.reclassified
                       and taken_down(hit.labels)),  # a collapse or 维权 notice removed: no rectification
        "reclassified": bool(hit.reclassified), "found_on": hit.target_id,
        "attribution": attribution,
        "listed": {c: getattr(listed, c) for c in LISTED_COLUMNS} if listed else None,
        "yields": [y for y in hit.yields or () if isinstance(y, dict)],
        "max_yield": _max_yield(hit.yields),
        "snippets": [f.get("snippet") or f.get("text") for f in hit.findings or () if not f.get("negated")][:3],
        # no capture (never archived, or its capture failed and is reported): the page's digest alone
        "evidence": {"warc_file": ev.warc_file, "record_id": ev.record_id, "sha256": ev.payload_sha256,
                     "screenshot": bool(ev.screenshot_record_id)} if ev else
        {"warc_file": None, "record_id": None, "sha256": hit.sha256, "screenshot": False},
    }


def institution_hits(db: StateDB, target_id: str, own_site: bool = True) -> list[dict]:
    """Own and attributed hits of one institution, newest first, each with the other URLs of
    its content (``same_content_as``, ``also_at``: ``crawler.store.same_content``) and the
    institution it concerns. ``own_site`` False: the target's pages are posts about others
    (a forum), so its posts naming no institution concern none.

    Evidence and listings come in one query each for all the hits: the period report
    calls this for every target.
    """
    ensure_schema(db)
    with db.new_session() as session:
        mine = or_(Hit.target_id == target_id, Hit.id.in_(
            select(HitAttribution.hit_id).where(HitAttribution.target_id == target_id)))
        attributed = {a.hit_id: a for a in session.scalars(
            select(HitAttribution).where(HitAttribution.hit_id.in_(select(Hit.id).where(mine))))}
        hits = session.scalars(select(Hit).where(mine).order_by(Hit.first_seen.desc(), Hit.id.desc())).all()
        latest = select(func.max(Evidence.id)).where(Evidence.hit_id.in_(select(Hit.id).where(mine))) \
            .group_by(Evidence.hit_id)
        evidence = {e.hit_id: e for e in session.execute(
            select(Evidence.hit_id, Evidence.warc_file, Evidence.record_id, Evidence.payload_sha256,
                   Evidence.screenshot_record_id).where(Evidence.id.in_(latest)))}
        listed = {p.page_id: p for p in session.execute(
            select(ListedPage.page_id, *(getattr(ListedPage, c) for c in LISTED_COLUMNS))
            .where(ListedPage.page_id.in_(select(Hit.page_id).where(mine))))}
        rows = [_hit_row(h, _attribution(h, attributed.get(h.id), own_site), evidence.get(h.id),
                         listed.get(h.page_id)) for h in hits]
    return with_same_content(db, rows)


def _counted_as(hit: dict) -> str:
    """What a hit counts as in grading: its content when other URLs show it too (a redirect, query
    variants: ``same_content_as``), else its post (the records of one post count once)."""
    return f"content:{hit['same_content_as']}" if hit.get("same_content_as") else hit["post"]


def grade_hits(config: PatrolConfig, hits: list[dict], now: datetime | None = None) -> Grade:
    """The grade at ``now`` (default: now): over the hits live in the ``window_days`` before it.

    A hit the rules withdrew or judged again by ``now`` (``reclassified``) is not counted, even
    with ``include_removed``: by the office's rules it was no violation, or its successor counts."""
    now = now or utcnow()
    since = now - timedelta(days=config.grading.window_days)
    facts = [
        HitFacts(_counted_as(h), tuple(h["labels"]), h["risk"], _before(h["removed_at"], now), h["max_yield"])
        for h in hits if _before(h["first_seen"], now) and not _before(h["last_seen"], since)
        and not (h["reclassified"] and _before(h["removed_at"], now))
    ]
    return grade(config.grading, facts)


def _before(when: str | None, moment: datetime) -> bool:
    return when is not None and datetime.fromisoformat(when) < moment


def opinion_posts(rows: list[dict]) -> list[dict]:
    """Opinion hit rows, one per post (``post_url``), newest first.

    A post found on a target's site, on an opinion source and as a listed snippet is
    one row: the page's own hit leads, with every hit id (``hit_ids``), where it was
    found (``found_on``), the labels of all, and the listing's author and date.
    """
    posts: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if OPINION_CATEGORIES & set(row["labels"]):
            posts[row["post"]].append(row)
    out = []
    for post, group in posts.items():
        lead = min(group, key=lambda r: (r["url"] != post, r["first_seen"], r["id"]))
        out.append({
            **lead, "url": post, "first_seen": min(r["first_seen"] for r in group),
            "labels": list(dict.fromkeys(c for r in group for c in r["labels"])),
            "hit_ids": sorted(r["id"] for r in group),
            "found_on": list(dict.fromkeys(r["found_on"] for r in group)),
            "listed": next((r["listed"] for r in group if r["listed"]), None),
        })
    return sorted(out, key=lambda r: (r["first_seen"], r["id"]), reverse=True)


def by_month(hits: list[dict], zone: ZoneInfo) -> list[dict]:
    """Pages per month and label, as the period report counts them: a page (``post``) counts
    once for a label, in the month (of ``zone``: 07:00 on 1 March in Beijing is March) it
    was first seen with that label. Its reworded versions, each a hit, add nothing."""
    first: dict[tuple[str, str], datetime] = {}
    for h in hits:
        seen = datetime.fromisoformat(h["first_seen"])
        for label in h["labels"]:
            key = (h["post"], label)
            first[key] = min(first.get(key, seen), seen)
    table: dict[str, Counter] = defaultdict(Counter)
    for (_, label), seen in first.items():
        table[f"{seen.astimezone(zone):%Y-%m}"][label] += 1
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

    institution = target.kind == "platform_page"
    hits = institution_hits(db, target.id, own_site=institution)
    coverage = target_coverage(config, db, target)
    now = utcnow()
    with db.new_session() as session:
        changes, runs = _changes(session, target.id), _runs(session, target.id)
        patrolled = target.id in _patrolled(session, now - timedelta(days=config.grading.window_days), now)
    found = grade_hits(config, hits, now) if institution else not_graded()
    if institution and not patrolled:
        found = unpatrolled(found)
    live = [h for h in hits if not h["removed_at"]]
    replaced = [h for h in hits if h["removed_at"] and h["replaced_by"] and not h["reclassified"]]
    withdrawn = [h for h in hits if h["removed_at"] and h["reclassified"] and not h["replaced_by"]]
    rejudged = [h for h in hits if h["removed_at"] and h["reclassified"] and h["replaced_by"]]
    notices = [h for h in hits if h["taken_down"]]
    yields = {y.get("text"): {**y, "hit": h["id"]} for h in hits for y in h["yields"]}
    zone = ZoneInfo(config.alerts.timezone)
    return {
        "generated_at": iso(now), "timezone": zone.key,
        "identity": {"id": target.id, "name": target.name, "aliases": list(target.aliases),
                     "credit_code": target.credit_code, "business": target.business, "urls": list(target.urls),
                     "allowed_domains": list(target.allowed_domains),
                     "restricted_words": list(screen_name(target.name)),
                     # False: removed from the config (or renamed); its records remain
                     "configured": any(t.id == target.id for t in config.targets)},
        "coverage": coverage, "runs": runs,
        "grade": found.to_dict(),
        "hits": hits, "contents": live_contents(hits), "by_month": by_month(hits, zone),
        "categories": category_info(),
        "yields": sorted(yields.values(), key=lambda y: -(y.get("high_annual_pct") or 0)),
        "changes": changes,
        # removed: rectified only; a hit replaced by a reworded one is not rectification, nor is one
        # the rules withdrew or judged again (its words stayed on the page), nor a risk notice taken down
        "rectification": {"live": len(live),
                          "removed": len(hits) - len(live) - len(replaced) - len(withdrawn) - len(rejudged)
                          - len(notices),
                          "replaced": len(replaced), "withdrawn": len(withdrawn), "rejudged": len(rejudged),
                          "taken_down": len(notices),
                          "reopened": sum(1 for h in hits if h["reopened_at"])},
        "opinion": opinion_posts(hits),
    }


def period_report(config: PatrolConfig, db: StateDB, since: datetime, until: datetime) -> dict:
    """The summary of [since, until); days (the opinion trend, the period line) are those of ``alerts.timezone``."""
    ensure_schema(db)
    zone = ZoneInfo(config.alerts.timezone)
    info = category_info()
    with db.new_session() as session:
        patrolled = _patrolled(session, since, until)
        # a hit the rules withdrew or judged again by the period's end is no violation of its own
        hits = [h for h in session.scalars(select(Hit).where(Hit.first_seen < until, Hit.last_seen >= since))
                if not (h.reclassified and as_utc(h.removed_at) < until)]
        removed = list(session.scalars(select(Hit).where(Hit.removed_at >= as_utc(since),
                                                          Hit.removed_at < as_utc(until))))
        replaced = [h for h in removed if h.replaced_by is not None and not h.reclassified]  # reworded
        withdrawn = [h for h in removed if h.reclassified and h.replaced_by is None]  # the rules changed, not the page
        rejudged = [h for h in removed if h.reclassified and h.replaced_by is not None]
        removed = [h for h in removed if h.replaced_by is None and not h.reclassified]
        notices = [h for h in removed if taken_down(h.labels)]  # a risk notice taken down: no rectification
        removed = [h for h in removed if not taken_down(h.labels)]
        trend = _opinion_trend(session, since, until, zone)
    pages: dict[str, set[str]] = defaultdict(set)  # a post found several ways is one page
    for h in hits:
        pages[post_url(h.url)].update(h.labels)
    groups = same_content(db, [h.id for h in hits])  # one claim on several URLs of a target: one content
    rows = [{"id": h.id, "post": post_url(h.url), "removed_at": h.removed_at,
             "same_content_as": groups[h.id].representative if h.id in groups else None} for h in hits]
    live_rows = [r for r in rows if r["removed_at"] is None]
    by_cat = Counter(label for labels in pages.values() for label in labels)
    by_unit = Counter(unit for labels in pages.values()
                      for unit in {info.get(c, {}).get("lead_unit", "?") for c in labels})
    targets = [t for t in config.targets if t.enabled and t.kind == "platform_page"]
    post_sites = [t for t in config.targets if t.enabled and t.kind != "platform_page"]  # graded by whom they name
    risks = []
    for t in targets:
        t_hits = institution_hits(db, t.id)
        g = grade_hits(config, t_hits, until)
        if t.id not in patrolled:
            g = unpatrolled(g)
        in_period = [h for h in t_hits if _before(h["first_seen"], until) and not _before(h["last_seen"], since)]
        live = [h for h in in_period if not _before(h["removed_at"], until)]
        # live: hit records; live_pages: posts, as the grade's reasons count them
        risks.append({"id": t.id, "name": t.name, "business": t.business, "grade": g.grade, "reasons": g.reasons,
                      "hits": len(in_period), "live": len(live), "live_pages": len({h["post"] for h in live})})
    order = {"高风险": 0, "重点关注": 1, "一般关注": 2, UNPATROLLED: 3, "正常": 4}
    risks.sort(key=lambda r: (order[r["grade"]], -r["live_pages"], -r["live"], r["id"]))
    return {
        "since": iso(since), "until": iso(until), "period": describe_period(since, until, zone),
        "timezone": zone.key, "generated_at": iso(utcnow()),
        "institutions": {"total": len(targets), "patrolled": sorted(t.id for t in targets if t.id in patrolled),
                         "not_patrolled": sorted(t.id for t in targets if t.id not in patrolled)},
        "post_sites": {"total": len(post_sites), "names": {t.id: t.name for t in post_sites},
                       "patrolled": sorted(t.id for t in post_sites if t.id in patrolled),
                       "not_patrolled": sorted(t.id for t in post_sites if t.id not in patrolled)},
        "hits_total": len(hits), "pages_total": len(pages), "contents_total": count_contents(rows),
        "by_category": [{"id": c, "name_zh": info.get(c, {}).get("name_zh", c),
                         "lead_unit": info.get(c, {}).get("lead_unit", ""), "count": n}
                        for c, n in by_cat.most_common()],
        "by_lead_unit": [{"unit": u, "count": n} for u, n in by_unit.most_common()],
        "top_risks": risks[:10], "opinion_trend": trend,
        # live: hit records; live_pages: pages (posts); live_contents: contents (crawler.reports.contents)
        "rectification": {"live": len(live_rows), "live_pages": len({r["post"] for r in live_rows}),
                          "live_contents": count_contents(live_rows),
                          "removed_in_period": len(removed), "taken_down_in_period": len(notices),
                          "replaced_in_period": len(replaced), "withdrawn_in_period": len(withdrawn),
                          "rejudged_in_period": len(rejudged),
                          "reopened": sum(1 for h in hits if h.reopened_at is not None)},
    }


def _patrolled(session, since: datetime, until: datetime) -> set[str]:
    """Ids of the targets a patrol started in [since, until) fetched pages of."""
    return set(session.scalars(
        select(RunTarget.target_id).join(PatrolRun, PatrolRun.id == RunTarget.run_id)
        .where(RunTarget.pages > 0, PatrolRun.started_at >= as_utc(since), PatrolRun.started_at < as_utc(until))))


def _opinion_trend(session, since: datetime, until: datetime, zone: ZoneInfo) -> list[dict]:
    """Opinion signals per day (in ``zone``) and category: one per post first seen in the period.

    A post's day is its publish date as listed when that falls in the period, else
    the day it was first seen; every day shown is in the period. Only the columns
    needed are read: this scans every opinion hit ever seen before ``until``.
    """
    rows = session.execute(select(Hit.url, Hit.first_seen, Hit.labels, Hit.page_id).where(
        Hit.first_seen < until, Hit.id.in_(
            select(HitCategory.hit_id).where(HitCategory.category.in_(OPINION_CATEGORIES)))).order_by(Hit.id)).all()
    posts: dict[str, list] = defaultdict(list)
    for row in rows:
        posts[post_url(row.url)].append(row)
    fresh = []  # (first seen, hits) of each post first seen in the period
    for group in posts.values():
        first_seen = min(as_utc(r.first_seen) for r in group)
        if since <= first_seen < until:
            fresh.append((first_seen, group))
    posted_at = listed_publish_times(session, {r.page_id for _, group in fresh for r in group})
    first_day, last_day = since.astimezone(zone).date(), (until - timedelta(microseconds=1)).astimezone(zone).date()
    table: dict[date, Counter] = defaultdict(Counter)
    for first_seen, group in fresh:
        listed = [posted_at[r.page_id] for r in group if r.page_id in posted_at]
        posted = _day(listed[0]) if listed else None  # the date as the listing gives it
        day = posted if posted and first_day <= posted <= last_day else first_seen.astimezone(zone).date()
        for label in {c for r in group for c in r.labels} & OPINION_CATEGORIES:
            table[day][label] += 1
    return [{"day": d.isoformat(), "counts": dict(table[d])} for d in sorted(table)]


def describe_period(since: datetime, until: datetime, zone: ZoneInfo) -> str:
    """``2026-11-01 至 2026-11-30（含，Asia/Shanghai）`` for whole days, else the times."""
    start, end = since.astimezone(zone), until.astimezone(zone)
    if start.time() == end.time() == time():
        return f"{start.date()} 至 {(end - timedelta(days=1)).date()}（含，{zone.key}）"
    return f"{start:%Y-%m-%d %H:%M} 至 {end:%Y-%m-%d %H:%M}（{zone.key}）"


def _day(posted_at: str) -> date | None:
    try:
        return date.fromisoformat(posted_at[:10])
    except ValueError:
        return None
