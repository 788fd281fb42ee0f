"""Public-opinion early warning (三(六)): collapse and 维权 signals per institution.

A signal is a post with a hit labelled with one of ``alerts.opinion.categories``.
A post found several ways (on a target's site, on an opinion source, as a listed
snippet) is one signal. It counts for every configured institution whose name or
alias the post mentions (a forum post about 鑫盈宝 counts for 鑫盈宝, not for the
forum), else for the targets it was found on. An institution alerts when its count
of posts in the sliding ``window`` reaches ``threshold``, or reaches ``spike_factor``
× its own mean per window over the ``baseline_days`` before, with at least
``min_count``. A spike re-alerts only when the count doubles or after a window; the
first ``mass_incident`` signal of an institution (none in the baseline period
before) alerts at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from crawler.alerts.config import AlertsConfig, OpinionConfig
from crawler.alerts.records import claim_mark, get_mark
from crawler.items import listed_url, post_url
from crawler.store.db import as_utc, iso
from crawler.store.models import Hit, HitCategory, Page

logger = logging.getLogger(__name__)


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

    @property
    def found_on(self) -> list[str]:
        return list(dict.fromkeys(r.target_id for r in self.records))


@dataclass
class Spike:
    target_id: str
    count: int
    baseline_mean: float
    reason: str
    signals: list[Signal]


def mentioned(text: str, targets) -> list[str]:
    """Ids of the configured institutions whose name or an alias occurs in ``text``."""
    return [t.id for t in targets if any(n and n in text for n in (t.name, *t.aliases))]


def signals_between(session, opinion: OpinionConfig, since: datetime, until: datetime, targets) -> list[Signal]:
    """One signal per post with a hit first seen in [since, until], oldest first.

    The hits of one post (``post_url``) make one signal: its labels, snippets and
    institutions are those of all its hits.
    """
    rows = session.execute(
        select(Hit, Page.text)
        .join(Page, Page.id == Hit.page_id)
        .where(Hit.id.in_(_opinion_hit_ids(opinion)))
        .where(Hit.first_seen >= since, Hit.first_seen <= until)
        .order_by(Hit.first_seen, Hit.id)
    )
    posts: dict[str, list[tuple[Hit, str]]] = {}
    for hit, text in rows:
        posts.setdefault(post_url(hit.url), []).append((hit, text or ""))
    earlier = _first_seen_before(session, opinion, since, list(posts))
    out = [_signal(url, found, earlier.get(url), opinion, targets) for url, found in posts.items()]
    out.sort(key=lambda s: (s.first_seen, s.hit_id))
    return out


def _opinion_hit_ids(opinion: OpinionConfig):
    return select(HitCategory.hit_id).where(HitCategory.category.in_(opinion.categories))


def _first_seen_before(session, opinion: OpinionConfig, since: datetime, urls: list[str]) -> dict[str, datetime]:
    """Post URL → first seen, for the posts among ``urls`` already recorded before ``since``."""
    found: dict[str, datetime] = {}
    for start in range(0, len(urls), 400):
        chunk = urls[start:start + 400]
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


def _signal(url: str, found: list[tuple[Hit, str]], earlier: datetime | None, opinion: OpinionConfig,
            targets) -> Signal:
    hits = [hit for hit, _ in found]
    lead = min(hits, key=lambda h: (h.url != url, h.first_seen, h.id))  # the page itself before its listing
    snippets = [f.get("snippet") or f.get("text", "") for h in hits for f in h.findings
                if f.get("category") in opinion.categories and not f.get("negated")]
    records = [Record(h.id, h.target_id, as_utc(h.first_seen), tuple(h.labels)) for h in hits]
    first_seen = min([r.first_seen for r in records] + ([earlier] if earlier else []))
    signal = Signal(lead.id, lead.target_id, url, lead.title, list(dict.fromkeys(c for h in hits for c in h.labels)),
                    first_seen, list(dict.fromkeys(snippets))[:3], records)
    text = "\n".join(f"{hit.title}\n{body}" for hit, body in found)
    signal.institutions = mentioned(text, targets) or signal.found_on
    return signal


def first_mass_incidents(session, config: AlertsConfig, signals: list[Signal], new_ids: set[int], now: datetime):
    """(institution, signal) for each institution whose first mass_incident signal is new now.

    ``new_ids``: the hits first seen in this window; one of them must carry the label,
    and the post itself must be new: first seen in the window, by any of its records.
    """
    opinion = config.opinion
    if not opinion.first_mass_incident:
        return []
    quiet_period = opinion.baseline_days * 86400 + opinion.window
    window_start = now - timedelta(seconds=opinion.window)
    found = []
    for signal in signals:
        if signal.first_seen < window_start:  # an old post found again another way is no new incident
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
        current = [s for s in mine if s.first_seen >= start]
        mean = sum(1 for s in mine if baseline_start <= s.first_seen < start) / periods
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
        "labels": signal.labels, "first_seen": iso(signal.first_seen), "snippets": signal.snippets,
        "hit_ids": [r.hit_id for r in signal.records], "found_on": signal.found_on,
    }
