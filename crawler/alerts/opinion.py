"""Public-opinion early warning (三(六)): collapse and 维权 signals per institution.

A signal is a post with a hit labelled with one of ``alerts.opinion.categories``.
A post found several ways (on a target's site, on an opinion source, as a listed
snippet) is one signal. It counts for the institution it is attributed to: the
``hit_attributions`` the patrol stored for its source and channel hits (by advertiser
or name; the dossier lists those hits there too), else the same ``Attributor``'s name
test on its title and text, the institutions named most (all of them on a tie). On a
target's own site (the pages patrolled for it, or attributed to it by domain) the
site's name in each page's title and header does not count: a forum page about 鑫盈宝
counts for 鑫盈宝, not for the forum (the dossier still files the page under the site
it is on), and 鑫盈宝's own notice counts for 鑫盈宝 though it names its bank once. A post
attributed to no one counts for where it was found.

A signal happened when it was first seen, unless its publish date (its listing's
``posted_at``, else the date extracted from its page) is earlier: a post published
years ago and first seen on a forum's first patrol is no new signal. An institution
alerts when its count of posts in the sliding ``window`` reaches ``threshold``, or
reaches ``spike_factor`` × its own mean per window over the ``baseline_days``
before, with at least ``min_count``. A spike re-alerts only when the count doubles
or after a window; the first ``mass_incident`` signal of an institution (none in the
baseline period before) alerts at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, inspect, select

from crawler.alerts.config import AlertsConfig, OpinionConfig
from crawler.alerts.records import claim_mark, get_mark
from crawler.discovery.attribution import Attributor
from crawler.discovery.listed import listed_publish_times
from crawler.discovery.models import HitAttribution
from crawler.items import listed_url, post_url
from crawler.store.db import IN_CHUNK, as_utc, in_chunks, iso, parse_time
from crawler.store.models import Hit, HitCategory, Page

logger = logging.getLogger(__name__)
SLACK = timedelta(days=1)
"""Time zones: a publish time may be a day off (a date alone: the end of that day, plus this)."""


@dataclass(frozen=True)
class Record:
    """One hit of a post: a post can be a target's page, a source's page and a listed snippet."""

    hit_id: int
    target_id: str
    first_seen: datetime
    labels: tuple[str, ...]


@dataclass
class Signal:
    """One post with opinion labels, counted once however many hits record it."""

    hit_id: int
    """The hit that stands for the post: its page's earliest hit, else its earliest listed snippet."""
    target_id: str
    url: str
    """The post's URL (``post_url``: no ``#listed``)."""
    title: str
    labels: list[str]
    first_seen: datetime
    """When the post was first seen, by any of its hits, also before the period read."""
    snippets: list[str]
    records: list[Record] = field(default_factory=list)
    institutions: list[str] = field(default_factory=list)
    published: str | None = None
    """The post's publish date as its listing gives it (``posted_at``), else as found on its
    page (``pages.published``); the latest of its records'. None when unknown."""
    new_on_known_page: bool = False
    """A record's hit came to a page stored before it (a new reply in an old thread): the
    publish date, the thread's, says nothing of when this appeared."""

    @property
    def found_on(self) -> list[str]:
        return list(dict.fromkeys(r.target_id for r in self.records))

    @property
    def at(self) -> datetime:
        """When the post appeared, as far as known: first seen, or its publish date (plus
        ``SLACK``) when that is earlier and the post's pages are new to the patrol (a forum's
        first patrol). Windows and baselines count posts by this."""
        published = None if self.new_on_known_page else published_by(self.published)
        return min(self.first_seen, published) if published else self.first_seen


def published_by(value: str | None) -> datetime | None:
    """The latest moment a post published at ``value`` (ISO 8601) can have appeared, plus ``SLACK``."""
    if not value:
        return None
    try:
        when = parse_time(value.strip())
    except ValueError:
        return None
    return when + SLACK + (timedelta(days=1) if len(value.strip()) <= 10 else timedelta(0))


@dataclass
class Spike:
    target_id: str
    count: int
    baseline_mean: float
    reason: str
    signals: list[Signal]


def signals_between(session, opinion: OpinionConfig, since: datetime, until: datetime, targets) -> list[Signal]:
    """One signal per post with a hit first seen in [since, until], oldest first.

    The hits of one post (``post_url``) make one signal: its labels, snippets,
    publish date and institutions are those of all its hits.
    """
    rows = session.execute(
        select(Hit, Page.text, Page.published, Page.first_seen)
        .join(Page, Page.id == Hit.page_id)
        .where(Hit.id.in_(_opinion_hit_ids(opinion)))
        .where(Hit.first_seen >= since, Hit.first_seen <= until)
        .order_by(Hit.first_seen, Hit.id)
    )
    posts: dict[str, list[tuple[Hit, str]]] = {}
    published: dict[int, str | None] = {}  # page id → its publish date: as listed, else as found on it
    renewed: set[str] = set()  # posts with a hit that came to a page stored before it
    for hit, text, date, page_first_seen in rows:
        posts.setdefault(post_url(hit.url), []).append((hit, text or ""))
        published[hit.page_id] = date
        if as_utc(page_first_seen) < as_utc(hit.first_seen):
            renewed.add(post_url(hit.url))
    hits = [hit for found in posts.values() for hit, _ in found]
    published.update(listed_publish_times(session, [h.page_id for h in hits]))
    attributed = {hit_id: (a.target_id, a.reason)
                  for hit_id, a in attributions(session, [h.id for h in hits]).items()}
    earlier = _first_seen_before(session, opinion, since, list(posts))
    attribution = PostInstitutions(targets, attributed)
    out = []
    for url, found in posts.items():
        signal = _signal(url, found, earlier.get(url), opinion)
        signal.published = _latest(published[hit.page_id] for hit, _ in found)
        signal.new_on_known_page = url in renewed
        signal.institutions = attribution.institutions(signal, found)
        out.append(signal)
    out.sort(key=lambda s: (s.first_seen, s.hit_id))
    return out


class PostInstitutions:
    """The institutions a post counts for: the stored attribution, else the names in its text,
    a site's own name in its titles and headers discounted."""

    def __init__(self, targets, attributed: dict[int, tuple[str, str]]):
        self.targets = targets
        self.ids = {t.id for t in targets}
        self.attributed = attributed
        self._attributor: Attributor | None = None

    def institutions(self, signal: Signal, found: list[tuple[Hit, str]]) -> list[str]:
        stored = [self.attributed[r.hit_id] for r in signal.records if r.hit_id in self.attributed]
        # the target's own site: the pages patrolled for it, or attributed to it by domain
        own = list(dict.fromkeys([t for t in signal.found_on if t in self.ids]
                                 + [t for t, reason in stored if reason == "domain"]))
        named = [t for t, reason in stored if reason != "domain" and t not in own]
        if not named:
            text = "\n".join(f"{hit.title}\n{body}" for hit, body in found)
            named = self.named(text, own, [hit.title for hit, _ in found])
        return list(dict.fromkeys(named)) or own or signal.found_on

    def named(self, text: str, own: list[str], titles: list[str]) -> list[str]:
        """The institutions ``text`` names most often (``Attributor.mentions``; all of them on a
        tie). A site's own name stands in each of its pages' title and header whatever the page
        says: the mentions of an ``own`` target in the ``titles`` and one per page are taken off,
        so a forum thread about 鑫盈宝 counts for 鑫盈宝, while 鑫盈宝's own notice that names its
        depository bank once counts for 鑫盈宝."""
        lowered = text.lower()
        if not any(n and n.lower() in lowered for t in self.targets if t.id not in own
                   for n in (t.name, *t.aliases)):
            return []  # names are tokens of the text only if they are in it: no need to cut it
        if self._attributor is None:
            self._attributor = Attributor(self.targets)
        counts = self._attributor.mentions(text)
        for title in titles if own else ():
            in_title = self._attributor.mentions(title)
            for target_id in own:
                counts[target_id] -= in_title[target_id] + 1
        counts = +counts  # drops what is left at zero or below
        most = max(counts.values(), default=0)
        return [target_id for target_id, n in counts.items() if n == most] if most else []


def attributions(session, hit_ids: list[int]) -> dict[int, HitAttribution]:
    """hit id → its attribution to a registered institution, as the attribute pipeline stored it
    (a channel's or source's result, a post on a forum registered as a target); hits without one
    are not in it. Hit alerts and opinion signals both count a hit for the institution it names."""
    if not inspect(session.connection()).has_table(HitAttribution.__tablename__):
        return {}
    attributed: dict[int, HitAttribution] = {}
    for some in in_chunks(hit_ids):
        attributed.update((a.hit_id, a) for a in session.scalars(
            select(HitAttribution).where(HitAttribution.hit_id.in_(some))))
    return attributed


def _latest(dates) -> str | None:
    """The latest of ISO 8601 publish dates (unreadable ones left out), as written; of one
    day's, the one with a time (a listing's ``2016-10-12T20:31:00+08:00`` over its page's ``2016-10-12``)."""
    readable = [d.strip() for d in dates if published_by(d)]
    return max(readable, key=lambda d: (d[:10], len(d))) if readable else None


def _opinion_hit_ids(opinion: OpinionConfig):
    return select(HitCategory.hit_id).where(HitCategory.category.in_(opinion.categories))


def _first_seen_before(session, opinion: OpinionConfig, since: datetime, urls: list[str]) -> dict[str, datetime]:
    """Post URL → first seen, for the posts among ``urls`` already recorded before ``since``."""
    found: dict[str, datetime] = {}
    for chunk in in_chunks(urls, IN_CHUNK // 2):  # two parameters a post: its URL and its listing
        stored = [*chunk, *(listed_url(u) for u in chunk)]
        rows = session.execute(
            select(Hit.url, func.min(Hit.first_seen))
            .where(Hit.url.in_(stored), Hit.first_seen < since, Hit.id.in_(_opinion_hit_ids(opinion)))
            .group_by(Hit.url)
        )
        for url, first in rows:
            key, first = post_url(url), as_utc(first)
            found[key] = min(found.get(key, first), first)
    return found


def _signal(url: str, found: list[tuple[Hit, str]], earlier: datetime | None, opinion: OpinionConfig) -> Signal:
    hits = [hit for hit, _ in found]
    lead = min(hits, key=lambda h: (h.url != url, h.first_seen, h.id))  # the page itself before its listing
    snippets = [f.get("snippet") or f.get("text", "") for h in hits for f in h.findings
                if f.get("category") in opinion.categories and not f.get("negated")]
    records = [Record(h.id, h.target_id, as_utc(h.first_seen), tuple(h.labels)) for h in hits]
    first_seen = min([r.first_seen for r in records] + ([earlier] if earlier else []))
    return Signal(lead.id, lead.target_id, url, lead.title, list(dict.fromkeys(c for h in hits for c in h.labels)),
                  first_seen, list(dict.fromkeys(snippets))[:3], records)


def first_mass_incidents(session, config: AlertsConfig, signals: list[Signal], new_ids: set[int], now: datetime):
    """(institution, signal) for each institution whose first mass_incident signal is new now.

    ``new_ids``: the hits first seen in this window; one of them must carry the label,
    and the post itself must be new: first seen in the window, by any of its records,
    and not published before it (``Signal.at``).
    """
    opinion = config.opinion
    if not opinion.first_mass_incident:
        return []
    quiet_period = opinion.baseline_days * 86400 + opinion.window
    window_start = now - timedelta(seconds=opinion.window)
    found = []
    for signal in signals:
        if signal.at < window_start:  # an old post, found again another way or first now, is no new incident
            continue
        if not any(r.hit_id in new_ids and "mass_incident" in r.labels for r in signal.records):
            continue
        for inst in signal.institutions:
            if claim_mark(session, inst, "mass_incident_first", "first", now, quiet_period):
                found.append((inst, signal))
    return found


def spikes(session, config: AlertsConfig, signals: list[Signal], institutions: set[str], now: datetime) -> list[Spike]:
    """Institutions (among ``institutions``) whose window count of posts passes threshold or baseline."""
    opinion = config.opinion
    window = timedelta(seconds=opinion.window)
    start = now - window
    baseline_start = start - timedelta(days=opinion.baseline_days)
    periods = opinion.baseline_days * 86400 / opinion.window
    out = []
    for inst in sorted(institutions):
        mine = [s for s in signals if inst in s.institutions]
        current = [s for s in mine if s.at >= start]
        mean = sum(1 for s in mine if baseline_start <= s.at < start) / periods
        count = len(current)
        if count >= opinion.threshold:
            reason = "threshold"
        elif count >= opinion.min_count and count >= opinion.spike_factor * mean:
            reason = "spike"
        else:
            continue
        mark = get_mark(session, inst, "opinion_spike", "window")
        if mark is not None and now - as_utc(mark.last_alerted) < window and count < 2 * mark.count:
            continue
        claim_mark(session, inst, "opinion_spike", "window", now, 0)
        get_mark(session, inst, "opinion_spike", "window").count = count
        out.append(Spike(inst, count, round(mean, 2), reason, current))
    return out


def signal_dict(signal: Signal) -> dict:
    return {
        "hit_id": signal.hit_id, "target": signal.target_id, "url": signal.url, "title": signal.title,
        "labels": signal.labels, "first_seen": iso(signal.first_seen), "published": signal.published,
        "snippets": signal.snippets,
        "hit_ids": [r.hit_id for r in signal.records], "found_on": signal.found_on,
    }
