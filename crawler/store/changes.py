"""Change tracking: page versions, hits removed and reopened, and per-run change records.

Called by ``pages.save_pages`` for every stored page and by the store pipeline when
a patrol finishes (``mark_gone``). A page version is a run of fetches with the same
title and readable text; a change record says what one patrol found: a page
``added`` (new, or back after being gone), ``changed`` (text or verdict) or ``gone``.
A hit whose verdict is no longer on its page gets ``removed_at`` (rectified); when the
page's new hit shares one of its labels it also gets ``replaced_by`` (the claim was
reworded, not rectified: ``supersedes``). When the classifier that judged the page
changed (rules, yield ceiling, kind: the page's ``verdict_by``) and the claims' words
stayed (``judged_by_rules``), the change is ``by_rules``: the old hit is
``reclassified`` (withdrawn by the office's rules, not rectified by the site), a new hit
dates from when its words were first seen, and one that comes back is not "reopened".
One that comes back otherwise is reopened, unless the page kept saying all of it in other words
since (``still_reworded``): a rewording is no rectification, so its return is none either. A page is
declared gone only on evidence: the server answered 404 or 410 for it in this patrol
(the spider reports those URLs). A page the crawl did not reach, one that failed
(timeout, 5xx, blocked) and one now outside its target's scope stay as they are, so
neither a lower ``max_depth``, an unlinked page, a changed host nor a flaky network
rectifies a violation.
The search documents of hits and pages changed here are queued again by the
session's flush watch (``elastic_queue.watch``), in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import defer, object_session

from classifiers import CATEGORIES
from crawler.store.db import StateDB, as_utc, in_chunks, utcnow
from crawler.store.elastic_queue import requeue
from crawler.store.models import Hit, Page, PageChange, PageVersion

logger = logging.getLogger(__name__)


def taken_down(labels: Iterable[str]) -> bool:
    """True for a removed hit that carried a collapse or 维权 signal (a category that promotes
    nothing: ``classifiers.CATEGORIES[...].promotional``): it was taken down, not rectified. A
    platform removing its 暂停提现 notice, or the page that carried it, resolves nothing."""
    return any(not CATEGORIES[label].promotional for label in labels if label in CATEGORIES)


@dataclass(frozen=True)
class Before:
    """What the state DB said about a page before this fetch was stored."""

    exists: bool
    fingerprint: str = ""
    title: str = ""
    hit_id: int | None = None
    gone: bool = False
    verdict_by: str | None = None

    @classmethod
    def of(cls, page: Page | None) -> "Before":
        if page is None:
            return cls(exists=False)
        return cls(True, page.text_fingerprint, page.title, page.current_hit_id, page.gone_at is not None,
                   page.verdict_by)


def latest_versions(session, page_ids: list[int]) -> dict[int, PageVersion]:
    """page id → its newest version (text not loaded), in one query for a whole batch of pages."""
    if not page_ids:
        return {}
    newest = (
        select(func.max(PageVersion.id)).where(PageVersion.page_id.in_(page_ids)).group_by(PageVersion.page_id)
    )
    query = select(PageVersion).options(defer(PageVersion.text)).where(PageVersion.id.in_(newest))
    return {v.page_id: v for v in session.scalars(query)}


def supersedes(new_labels, old_labels) -> bool:
    """Whether a page's new hit with these labels replaces its old one rather than ending it.

    Sharing one category is enough: the page still breaks that rule in other words
    (a reworded claim gets a new verdict key, hence a new hit), so the old hit was
    not rectified.
    """
    return bool(set(new_labels or ()) & set(old_labels or ()))


def remove_hit(session, hit_id: int | None, when: datetime, run_id: int | None,
               successor: Hit | None = None, reclassified: bool = False) -> None:
    """Mark a hit removed: its verdict is no longer on its page.

    ``successor`` is the page's hit in the same fetch, if any; when it ``supersedes``
    this one it is recorded as ``replaced_by``, otherwise the removal is a rectification,
    unless ``reclassified``: the page's words are the same and the classifier changed.
    """
    hit = session.get(Hit, hit_id) if hit_id else None
    if hit is not None and hit.removed_at is None:
        hit.removed_at, hit.removed_run_id, hit.reclassified = when, run_id, reclassified
        replaced = successor is not None and successor.id != hit.id and supersedes(successor.labels, hit.labels)
        hit.replaced_by = successor.id if replaced else None


def reopen_hit(hit: Hit, when: datetime, by_rules: bool = False) -> bool:
    """A removed hit seen again on its page is open again; True when it was reopened.

    ``reopened_at`` says a claim came back after the page stopped making it (整改后复现). A hit
    is only back, without it, when the rules changed (``by_rules``), not the page, or when the
    page kept saying it in other words all along (``still_reworded``): its successor, in turn
    replaced by the hit now back, says so (``replaced_by``) and the change records keep when."""
    if hit.removed_at is None:
        return False
    reopened = not by_rules and not still_reworded(object_session(hit), hit)
    hit.removed_at, hit.removed_run_id, hit.replaced_by = None, None, None
    if reopened:
        hit.reopened_at = when
    hit.reclassified = False
    return reopened


def still_reworded(session, hit: Hit) -> bool:
    """Whether ``hit``'s claims stayed on its page in other words since it was removed: it was
    replaced (``replaced_by``), each successor in turn too, up to one still live (the page's
    hit until this fetch), and every one broke all the rules it broke. A successor rectified,
    its page gone, or one category dropped on the way (that claim was rectified) breaks it."""
    seen, later_id = {hit.id}, hit.replaced_by
    while later_id is not None and later_id not in seen and session is not None:
        later = session.get(Hit, later_id)
        if later is None or not set(hit.labels) <= set(later.labels):
            return False
        if later.removed_at is None:
            return True
        seen.add(later_id)
        later_id = later.replaced_by
    return False


def judged_by_rules(before: Before, verdict_by: str | None, text_changed: bool,
                    old_text: str | None, new_text: str, old_hit: Hit | None, new_verdict: dict) -> bool:
    """Whether a page's verdict changes because the classifier did, not the page.

    The stamps differ, and the words the verdicts rest on stayed: the title and text are the
    same, or (a page whose counter or date changes on every fetch) every claim of the old hit
    is still in the new text, none of them now negated (不承诺保本 is a rectification), and
    every claim of the new verdict was in the old one.
    ``old_text``: the stored title and text, needed only when the text changed.
    """
    if not before.exists or before.gone or before.verdict_by == verdict_by:
        return False
    if not text_changed:
        return True
    if old_text is None:
        return False
    new_findings = new_verdict.get("findings", ())
    old_claims = _claims(old_hit.findings if old_hit else ())
    negated_now = {f["text"] for f in new_findings if f.get("negated")}
    return (all(claim in new_text for claim in old_claims) and not old_claims & negated_now
            and all(claim in old_text for claim in _claims(new_findings)))


def _claims(findings) -> set[str]:
    return {f["text"] for f in findings if not f.get("negated")}


def track_version(session, page: Page, before: Before, when: datetime, run_id: int | None,
                  latest: dict[int, PageVersion]) -> tuple[PageVersion, int | None, bool]:
    """After a page was stored: extend its newest version, or add one when its text changed.

    ``latest`` maps page ids to their newest version (``latest_versions``) and is kept current.
    Returns (the page's version now, the id of the one it replaced, whether the text changed);
    a new version has its id after the caller's next flush.
    """
    version = latest.get(page.id)
    text_changed = not before.exists or (before.fingerprint, before.title) != (page.text_fingerprint, page.title)
    old_version_id = version.id if version is not None and before.exists else None
    if version is None or text_changed:
        version = PageVersion(
            page_id=page.id, text_fingerprint=page.text_fingerprint, sha256=page.sha256,
            last_sha256=page.sha256, title=page.title, text=page.text,
            first_seen=when, last_seen=when, first_run_id=run_id, last_run_id=run_id,
        )
        session.add(version)
        latest[page.id] = version
    else:
        version.last_seen, version.last_run_id, version.last_sha256 = when, run_id, page.sha256
    return version, old_version_id, text_changed


def record_change(session, page: Page, before: Before, version: PageVersion, old_version_id: int | None,
                  text_changed: bool, when: datetime, run_id: int | None, by_rules: bool = False) -> PageChange | None:
    """Remove a hit the page's new verdict superseded and record what this fetch changed.

    ``by_rules``: the verdict changed because the classifier did (``judged_by_rules``)."""
    hit_changed = before.hit_id != page.current_hit_id
    if hit_changed and before.hit_id:
        successor = session.get(Hit, page.current_hit_id) if page.current_hit_id else None
        remove_hit(session, before.hit_id, when, run_id, successor, by_rules)
    if not before.exists or before.gone:
        kind = "added"
        if before.gone:  # a new page has no gone_at to clear, and setting it would cost an UPDATE
            page.gone_at = page.gone_run_id = None
    elif text_changed or hit_changed:
        kind = "changed"
    else:
        return None
    hit = session.get(Hit, page.current_hit_id) if page.current_hit_id else None
    change = PageChange(
        run_id=run_id, target_id=page.target_id, page_id=page.id, url=page.url, kind=kind, at=when,
        old_version_id=old_version_id, new_version_id=version.id,
        old_hit_id=before.hit_id, new_hit_id=page.current_hit_id, by_rules=by_rules and hit_changed,
        reopened=hit is not None and as_utc(hit.reopened_at) == as_utc(when),
    )
    session.add(change)
    return change


def backfill_replaced_by(db: StateDB) -> int:
    """Set ``replaced_by`` on hits an older finpatrol removed when a superseding hit opened.

    Run once, when the column is added to an older state DB (``StateDB``): a change
    record that moved its page from one hit to another and is the one that removed
    the old hit (same time and run) names the successor. Returns how many were set.
    """
    old, new = Hit.__table__.alias("old"), Hit.__table__.alias("new")
    changes = PageChange.__table__
    query = (
        select(old.c.id, old.c.labels, new.c.id, new.c.labels)
        .select_from(changes.join(old, old.c.id == changes.c.old_hit_id).join(new, new.c.id == changes.c.new_hit_id))
        .where(changes.c.kind == "changed", old.c.id != new.c.id, old.c.removed_at.is_not(None),
               old.c.replaced_by.is_(None), old.c.removed_at == changes.c.at,
               or_(old.c.removed_run_id == changes.c.run_id,
                   old.c.removed_run_id.is_(None) & changes.c.run_id.is_(None)))
    )
    with db.new_session() as session, session.begin():
        pairs = [{"b_id": old_id, "b_new": new_id} for old_id, old_labels, new_id, new_labels in session.execute(query)
                 if supersedes(new_labels, old_labels)]
        if pairs:
            hits = Hit.__table__
            session.execute(update(hits).where(hits.c.id == bindparam("b_id")).values(replaced_by=bindparam("b_new")),
                            pairs)
            requeue(session.connection(), [("hit", pair["b_id"]) for pair in pairs])  # a Core update: no flush event
    if pairs:
        logger.warning("state DB upgraded: %d removed hits were reworded, not rectified (replaced_by set)", len(pairs))
    return len(pairs)


def mark_gone(db: StateDB, run_id: int, gone: Mapping[str, Iterable[str]],
              when: datetime | None = None) -> dict[str, int]:
    """Pages the server answered 404/410 for in this run are gone; their hits are removed.

    ``gone`` maps a target id to the URLs (as requested) answered so. Only stored
    pages of that target that are not gone yet and were not stored by this same run
    are marked; a page that was merely not fetched is never passed here.
    Returns target id → pages marked gone.
    """
    when = when or utcnow()
    counts: dict[str, int] = {}
    wanted = {target_id: set(urls) for target_id, urls in gone.items() if urls}
    if not wanted:
        return counts
    with db.new_session() as session, session.begin():
        pages = [
            page
            for target_id, urls in wanted.items()
            for part in in_chunks(sorted(urls))
            for page in session.scalars(
                select(Page).where(
                    Page.target_id == target_id,
                    Page.url.in_(part),
                    Page.gone_at.is_(None),
                    or_(Page.last_run_id.is_(None), Page.last_run_id != run_id),
                )
            )
        ]
        latest = latest_versions(session, [page.id for page in pages])
        for page in pages:
            version = latest.get(page.id)
            page.gone_at, page.gone_run_id = when, run_id
            remove_hit(session, page.current_hit_id, when, run_id)
            session.add(PageChange(
                run_id=run_id, target_id=page.target_id, page_id=page.id, url=page.url, kind="gone",
                at=when, old_version_id=version.id if version else None, new_version_id=None,
                old_hit_id=page.current_hit_id, new_hit_id=None,
            ))
            counts[page.target_id] = counts.get(page.target_id, 0) + 1
    if counts:
        logger.info("run %s: pages gone (answered 404/410) per target: %s", run_id, counts)
    return counts

