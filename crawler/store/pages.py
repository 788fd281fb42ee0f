"""Write fetched pages and their hits; one transaction per batch.

A hit's identity is its page plus a key over its labels and live findings, so
re-patrolling an unchanged page only moves ``last_seen`` while a changed page
whose verdict changed opens a new hit. Versions, removed and reopened hits and
per-run change records are kept by ``crawler.store.changes``. What a patrol reads
of stored pages before it starts is here too: ``known_pages`` (analyse),
``revalidations`` (conditional requests) and ``open_hit_urls`` (pages to check again).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Iterable, Mapping, NamedTuple

from sqlalchemy import Boolean, Text, bindparam, case, func, select, update
from sqlalchemy.orm import defer
from sqlalchemy.orm.util import identity_key

from crawler.items import PageItem, text_key
from crawler.store.changes import (
    Before, judged_by_rules, latest_versions, record_change, reopen_hit, supersedes, track_version,
)
from crawler.store.db import StateDB, parse_time
from crawler.store.models import Hit, HitCategory, Page, PageVersion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Saved:
    """What storing one page did."""

    page_id: int
    hit_id: int | None
    new_hit: bool
    reopened: bool = False
    """True when the hit had been removed (rectified) and its verdict came back."""
    change: str | None = None
    """added | changed when this fetch changed the page's text or verdict, else None."""
    removed_hit_id: int | None = None
    """The hit the page had before this fetch and has no longer (``PageItem.removed_hit_id``): the
    evidence pipeline archives the page as it is now when this fetch removed it."""


def verdict_key(verdict: dict) -> str:
    live = sorted(
        (f["rule_id"], f["text"]) for f in verdict.get("findings", ()) if not f.get("negated")
    )
    blob = json.dumps([sorted(verdict.get("labels", ())), live], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Known(NamedTuple):
    """What the analyse pipeline needs of a stored page to skip work on its next fetch.

    Compact (about 450 bytes an entry with its URL key), since every stored page of the
    patrolled targets is held for the whole patrol.
    """

    sha256: bytes | None
    """SHA-256 of the stored body, raw."""
    text_key: bytes
    """``crawler.items.text_key`` of the stored title and text fingerprint."""
    verdict_by: str | None
    """``crawler.items.verdict_stamp`` of the stored verdict."""


def known_pages(db: StateDB, target_ids: Iterable[str]) -> dict[tuple[str, str], Known]:
    """(target id, url) → ``Known`` of every stored page of these targets."""
    with db.new_session() as session:
        rows = session.execute(
            select(Page.target_id, Page.url, Page.sha256, Page.title, Page.text_fingerprint, Page.verdict_by)
            .where(Page.target_id.in_(list(target_ids)))
        )
        return {
            (t, u): Known(bytes.fromhex(sha) if sha else None, text_key(title, fp), stamp)
            for t, u, sha, title, fp, stamp in rows
        }


@dataclass
class _Stored:
    """One item of a batch between the phases of ``save_pages``."""

    item: PageItem
    page: Page | None
    """None until a new page is added, in the first phase."""
    before: Before
    when: datetime
    saved: Saved | None = None
    hit: Hit | None = None
    added: bool = False
    """True when this fetch added the hit row (its categories are to be written)."""
    new_hit: bool = False
    """True when the hit is a new finding (not one judged again by new rules)."""
    reopened: bool = False
    old_text: str | None = None
    """The stored title and text, read only when the rules and the text both changed."""
    by_rules: bool = False
    """The verdict changes because the classifier did (``changes.judged_by_rules``)."""


def save_pages(db: StateDB, items: list[PageItem], run_id: int | None) -> list[Saved]:
    """Store a batch of pages (changed or unchanged) and their hits in one transaction.

    Unchanged pages that only need their times moved are written first, without the
    ORM (``_touch_unchanged``). The rest goes in phases over the whole batch (pages,
    then hits, then versions, then change records), each ended by one flush, and the
    batch's stored pages, current hits and newest versions are read in three queries:
    per-page queries and flushes were most of the cost of storing. A page that occurs
    twice in a batch starts a new round of phases, so it is stored twice in order.
    """
    results: list[Saved] = []
    with db.new_session() as session, session.begin():
        for part in _without_repeats(items):
            results.extend(_save_part(db, session, part, run_id))
    return results


def _without_repeats(items: list[PageItem]) -> list[list[PageItem]]:
    parts: list[list[PageItem]] = [[]]
    keys: set[tuple[str, str]] = set()
    for item in items:
        key = (item.target_id, item.url)
        if key in keys:
            parts.append([])
            keys.clear()
        keys.add(key)
        parts[-1].append(item)
    return parts


def _save_part(db: StateDB, session, items: list[PageItem], run_id: int | None) -> list[Saved]:
    touched = _touch_unchanged(session, items, run_id)
    rest = iter(_save_rest(db, session, [item for i, item in enumerate(items) if i not in touched], run_id))
    return [touched[i] if i in touched else next(rest) for i in range(len(items))]


def _touch_unchanged(session, items: list[PageItem], run_id: int | None) -> dict[int, Saved]:
    """Index in ``items`` → what was stored, for the unchanged pages that only need touching.

    A page answered 304, or with the body stored for it, that is online, has a version,
    whose hit (if any) is open and which this session has not loaded yet only gets its
    fetch and last-seen times, its validators and links (``_validators``), and its
    version's and hit's last-seen times (the version also the page's body hash). That
    is one query per target and three executemany UPDATEs per batch instead of loading
    and flushing ORM objects: the store thread holds the GIL the reactor needs, and with
    the ORM a re-patrol took about a tenth longer. Every other page goes through
    ``_save_rest``. The items' (target, url) pairs are unique (``_without_repeats``).
    """
    wanted = {(item.target_id, item.url): i for i, item in enumerate(items) if item.unchanged}
    touches = _Touches()
    touched: dict[int, Saved] = {}
    for row in _touchable(session, wanted):
        index = wanted[(row.target_id, row.url)]
        touches.add(items[index], row, run_id)
        touched[index] = Saved(row.id, row.hit_id, False)
    touches.write(session)
    return touched


def _touchable(session, wanted: dict[tuple[str, str], int]) -> list:
    """Rows (page, its open hit, its newest version) of the wanted pages the fast path may touch."""
    pages, hits, versions = Page.__table__, Hit.__table__, PageVersion.__table__
    newest = select(func.max(versions.c.id)).where(versions.c.page_id == pages.c.id).scalar_subquery()
    rows = []
    for target_id, target_urls in _urls_by_target(wanted).items():
        query = (
            select(pages.c.id, pages.c.target_id, pages.c.url, pages.c.sha256, pages.c.etag, pages.c.last_modified,
                   pages.c.current_hit_id, hits.c.id.label("hit_id"), hits.c.removed_at, newest.label("version_id"))
            .outerjoin(hits, hits.c.id == pages.c.current_hit_id)
            .where(pages.c.target_id == target_id, pages.c.url.in_(target_urls), pages.c.gone_at.is_(None))
        )
        rows.extend(
            row for row in session.execute(query)
            # no version yet, a hit gone missing or one to reopen, or a page whose ORM object this
            # session still holds (an UPDATE behind its back would leave it stale): the ORM path
            if row.version_id is not None and row.current_hit_id == row.hit_id and row.removed_at is None
            and identity_key(Page, row.id) not in session.identity_map
        )
    return rows


class _Touches:
    """The UPDATE parameters of a batch's touched pages, versions and hits."""

    def __init__(self):
        self.pages: list[dict] = []
        self.versions: list[dict] = []
        self.hits: list[dict] = []

    def add(self, item: PageItem, row, run_id: int | None) -> None:
        when = parse_time(item.fetched_at)
        etag, modified, keep_links = _validators(item, row.etag, row.last_modified)
        self.pages.append({"b_id": row.id, "b_when": when, "b_run": run_id, "b_etag": etag,
                           "b_modified": modified, "b_links": item.links, "b_keep_links": keep_links})
        self.versions.append({"b_id": row.version_id, "b_when": when, "b_run": run_id, "b_sha": row.sha256})
        if row.hit_id is not None:
            self.hits.append({"b_id": row.hit_id, "b_when": when, "b_run": run_id})

    def write(self, session) -> None:
        pages, hits, versions = Page.__table__, Hit.__table__, PageVersion.__table__
        seen = {"last_seen": bindparam("b_when"), "last_run_id": bindparam("b_run")}
        if self.pages:
            new_links = case((bindparam("b_keep_links", type_=Boolean()), pages.c.links),
                             else_=bindparam("b_links", type_=Text()))
            session.execute(update(pages).where(pages.c.id == bindparam("b_id")).values(
                **seen, fetched_at=bindparam("b_when"), etag=bindparam("b_etag"),
                last_modified=bindparam("b_modified"), links=new_links), self.pages)
            session.execute(update(versions).where(versions.c.id == bindparam("b_id")).values(
                **seen, last_sha256=bindparam("b_sha")), self.versions)
        if self.hits:
            session.execute(update(hits).where(hits.c.id == bindparam("b_id")).values(**seen), self.hits)


def _save_rest(db: StateDB, session, items: list[PageItem], run_id: int | None) -> list[Saved]:
    if not items:
        return []
    pages = _load_pages(session, items)
    latest = latest_versions(session, [page.id for page in pages.values()])
    current_hits = _current_hits(session, pages.values())
    stored: list[_Stored] = []
    reindex: list[tuple[Page, PageItem]] = []
    for item in items:
        when = parse_time(item.fetched_at)
        page = pages.get((item.target_id, item.url))
        row = _Stored(item, page, Before.of(page), when)
        if item.unchanged and page is not None:
            row.saved = _touch(page, item, current_hits.get(page.current_hit_id), when, run_id)
        else:
            row.old_text = _old_text(page, item)
            row.page, changed_text = _upsert_page(session, page, item, when, run_id)
            if changed_text:
                reindex.append((row.page, item))
        stored.append(row)
    session.flush()  # new pages get their ids

    fresh = [row for row in stored if row.saved is None]
    known = _hits_by_key(session, [(row.page.id, verdict_key(row.item.verdict)) for row in fresh
                                   if (row.item.verdict or {}).get("labels")])
    for row in fresh:
        old_hit = current_hits.get(row.before.hit_id)
        text_changed = (row.before.fingerprint, row.before.title) != (row.item.text_fingerprint, row.item.title)
        row.by_rules = judged_by_rules(row.before, row.item.verdict_by, text_changed, row.old_text,
                                       f"{row.item.title}\n{row.item.text}", old_hit, row.item.verdict or {})
        _record_hit(session, row, run_id, known, old_hit, latest.get(row.page.id))
    session.flush()  # new hits get their ids
    for row in fresh:
        hit_id = row.hit.id if row.hit is not None else None
        row.page.current_hit_id = hit_id
        if row.added:
            session.add_all(HitCategory(hit_id=hit_id, category=c) for c in row.hit.labels)
        removed = row.before.hit_id if row.before.hit_id not in (None, hit_id) else None
        row.saved = Saved(row.page.id, hit_id, row.new_hit, reopened=row.reopened, removed_hit_id=removed)

    versions = [track_version(session, row.page, row.before, row.when, run_id, latest) for row in stored]
    session.flush()  # new versions get their ids
    results, superseded = [], {}
    for row, (version, old_version_id, text_changed) in zip(stored, versions):
        change = record_change(session, row.page, row.before, version, old_version_id, text_changed,
                               row.when, run_id, row.by_rules)
        results.append(replace(row.saved, change=change.kind if change else None))
        if text_changed and old_version_id is not None:
            superseded[row.page.id] = old_version_id  # its words stay searchable as that version's
    session.flush()
    if db.index is not None and reindex:
        db.index.put(session, reindex, superseded)
    return results


def _old_text(page: Page | None, item: PageItem) -> str | None:
    """The stored title and text when this fetch brings other rules and another text (one
    query: the text is not loaded with the page); None otherwise, when it is not needed
    (also when the page had no hit and has none now: nothing to tell apart)."""
    if page is None or page.verdict_by == item.verdict_by:
        return None
    if page.current_hit_id is None and not (item.verdict or {}).get("labels"):
        return None
    if (page.text_fingerprint, page.title) == (item.text_fingerprint, item.title):
        return None
    return f"{page.title}\n{page.text}"


def _load_pages(session, items: list[PageItem]) -> dict[tuple[str, str], Page]:
    """(target id, url) → the stored page, for every item of a batch that has one (text not loaded)."""
    found: dict[tuple[str, str], Page] = {}
    for target_id, wanted in _urls_by_target((item.target_id, item.url) for item in items).items():
        query = select(Page).options(defer(Page.text)).where(Page.target_id == target_id, Page.url.in_(wanted))
        rows = session.scalars(query)
        found.update(((page.target_id, page.url), page) for page in rows)
    return found


def _urls_by_target(keys: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """target id → urls, for one query per target over a batch's (target id, url) pairs."""
    urls: dict[str, set[str]] = {}
    for target_id, url in keys:
        urls.setdefault(target_id, set()).add(url)
    return urls


def _current_hits(session, pages: Iterable[Page]) -> dict[int, Hit]:
    """hit id → hit, for the current hits of these pages."""
    hit_ids = [page.current_hit_id for page in pages if page.current_hit_id]
    if not hit_ids:
        return {}
    return {hit.id: hit for hit in session.scalars(select(Hit).where(Hit.id.in_(hit_ids)))}


def _touch(page: Page, item: PageItem, hit: Hit | None, when: datetime, run_id: int | None) -> Saved:
    page.last_seen = page.fetched_at = when
    page.last_run_id = run_id
    _revalidation(page, item)
    if hit is not None:
        hit.last_seen, hit.last_run_id = when, run_id
        return Saved(page.id, hit.id, False, reopened=reopen_hit(hit, when))
    return Saved(page.id, None, False)


def _upsert_page(session, page: Page | None, item: PageItem, when, run_id) -> tuple[Page, bool]:
    verdict = item.verdict or {}
    if page is None:
        # current_hit_id is inserted as NULL, so a page without a hit needs no UPDATE once hits are known
        page = Page(target_id=item.target_id, url=item.url, first_seen=when, current_hit_id=None)
        session.add(page)
    changed_text = page.text_fingerprint != item.text_fingerprint or page.title != item.title
    page.final_url, page.status, page.encoding = item.final_url, item.status, item.encoding
    page.rendered, page.sha256 = item.rendered, item.sha256
    page.text_fingerprint, page.title, page.text = item.text_fingerprint, item.title, item.text
    page.published, page.language = item.published, item.language
    page.labels = list(verdict.get("labels", ()))
    page.risk, page.score = verdict.get("risk", "none"), float(verdict.get("score", 0.0))
    page.verdict_by = item.verdict_by
    page.last_seen = page.fetched_at = when
    page.last_run_id = run_id
    _revalidation(page, item)
    return page, changed_text


def _revalidation(page: Page, item: PageItem) -> None:
    """Keep what the next patrol needs to ask for the page conditionally and follow a 304."""
    page.etag, page.last_modified, keep_links = _validators(item, page.etag, page.last_modified)
    if not keep_links:
        page.links = item.links


def _validators(item: PageItem, etag: str | None, modified: str | None) -> tuple[str | None, str | None, bool]:
    """(ETag, Last-Modified, whether the stored links stay) after this fetch of a page stored with these.

    A 304 carries no body, so it keeps the stored links; it may update the validators.
    """
    new_etag, new_modified = item.headers.get("etag"), item.headers.get("last-modified")
    if item.status == 304:
        return new_etag or etag, new_modified or modified, True
    return new_etag, new_modified, False


def _hits_by_key(session, wanted: list[tuple[int, str]]) -> dict[tuple[int, str], Hit]:
    """(page id, verdict key) → the stored hit, for those of ``wanted`` that exist."""
    if not wanted:
        return {}
    page_ids = {page_id for page_id, _ in wanted}
    rows = session.scalars(select(Hit).where(Hit.page_id.in_(page_ids)))
    keys = set(wanted)
    return {(hit.page_id, hit.verdict_key): hit for hit in rows if (hit.page_id, hit.verdict_key) in keys}


def _record_hit(session, row: _Stored, run_id, known: dict[tuple[int, str], Hit], old_hit: Hit | None,
                version: PageVersion | None) -> None:
    """The hit of the row's verdict, found in ``known`` or added to the session (and to ``known``).

    A hit that only judges the old hit's claims again (``row.by_rules``, sharing a category)
    keeps the old hit's ``first_seen`` and is no new finding (``new_hit`` False); another the
    rules bring to words already on the page is first seen when its page's ``version`` so far
    began (on a page whose counter changes on every fetch: the previous fetch)."""
    verdict, page, item, when = row.item.verdict or {}, row.page, row.item, row.when
    if not verdict.get("labels"):
        return
    key = verdict_key(verdict)
    hit = known.get((page.id, key))
    row.added = row.new_hit = hit is None
    if row.added:
        judged_again = row.by_rules and old_hit is not None and supersedes(verdict["labels"], old_hit.labels)
        if judged_again:
            first_seen = old_hit.first_seen
        elif row.by_rules and version is not None:
            first_seen = version.first_seen
        else:
            first_seen = when
        hit = Hit(
            page_id=page.id,
            target_id=page.target_id,
            url=item.url,
            verdict_key=key,
            labels=list(verdict["labels"]),
            first_seen=first_seen,
            first_run_id=run_id,
        )
        session.add(hit)
        known[(page.id, key)] = hit
        row.new_hit = not judged_again
    hit.title, hit.risk, hit.score = item.title, verdict.get("risk", "none"), verdict.get("score", 0.0)
    hit.context = verdict.get("context", "")
    hit.findings, hit.yields = verdict.get("findings", []), verdict.get("yields", [])
    hit.text_fingerprint, hit.sha256, hit.fetched_at = item.text_fingerprint, item.sha256, when
    hit.last_seen, hit.last_run_id = when, run_id
    row.reopened = reopen_hit(hit, when, row.by_rules)  # a hit just added is not removed: False
    row.hit = hit


class Revalidation(NamedTuple):
    """What asking for a page conditionally needs: its validators, and the links to follow on a 304."""

    etag: str | None
    last_modified: str | None
    links: str


def revalidations(db: StateDB, stamps: Mapping[str, str]) -> dict[tuple[str, str], Revalidation]:
    """(target id, url) → ``Revalidation`` of every page that can be asked for conditionally.

    Only pages fetched without the browser and whose links are recorded: a 304 must
    be followable without its body, and a script-built page can change behind an
    unchanged HTML shell. ``stamps`` maps the patrolled target ids to the
    ``verdict_stamp`` their pages get in this patrol: a page whose stored verdict has
    another stamp must be classified again, which a bodiless 304 would not allow. The links come in the same read, so a crawl reads nothing
    more from the state DB per 304 (what that holds in memory: ``crawler.conditional``).
    """
    with db.new_session() as session:
        rows = session.execute(
            select(Page.target_id, Page.url, Page.etag, Page.last_modified, Page.links).where(
                Page.target_id.in_(list(stamps)),
                Page.verdict_by == case(stamps, value=Page.target_id),
                Page.rendered.is_(False),
                Page.links.is_not(None),
                Page.gone_at.is_(None),
                (Page.etag.is_not(None)) | (Page.last_modified.is_not(None)),
            )
        )
        return {(t, u): Revalidation(etag, modified, links) for t, u, etag, modified, links in rows}


def stale_verdicts(db: StateDB, stamps: Mapping[str, str]) -> dict[str, int]:
    """target id → how many of its online pages hold a verdict of other rules or another kind
    than ``stamps`` gives it (``crawler.items.verdict_stamp``): the next patrol judges them again."""
    with db.new_session() as session:
        rows = session.execute(
            select(Page.target_id, func.count()).where(
                Page.target_id.in_(list(stamps)), Page.gone_at.is_(None),
                (Page.verdict_by.is_(None)) | (Page.verdict_by != case(stamps, value=Page.target_id)),
            ).group_by(Page.target_id)
        )
        return dict(rows.all())


def open_hit_urls(db: StateDB, target_ids: Iterable[str]) -> dict[str, list[str]]:
    """target id → stored URLs of its pages that are not gone and whose current hit is open.

    The site spider asks for each of these that its crawl did not reach through links,
    so a page with a live claim is checked by every patrol, whatever its depth or links.
    """
    with db.new_session() as session:
        rows = session.execute(
            select(Page.target_id, Page.url)
            .join(Hit, Hit.id == Page.current_hit_id)
            .where(Page.target_id.in_(list(target_ids)), Page.gone_at.is_(None), Hit.removed_at.is_(None))
            .order_by(Page.target_id, Page.id)
        )
        urls: dict[str, list[str]] = {}
        for target_id, url in rows:
            urls.setdefault(target_id, []).append(url)
        return urls
