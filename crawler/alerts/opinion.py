"""Public-opinion early warning (三(六)): collapse and 维权 signals per institution.

A signal is a hit labelled with one of ``alerts.opinion.categories``. It counts
for every configured institution whose name or alias the page mentions (a forum
post about 鑫盈宝 counts for 鑫盈宝, not for the forum), else for the target it
was found on. An institution alerts when its count in the sliding ``window``
reaches ``threshold``, or reaches ``spike_factor`` × its own mean per window over
the ``baseline_days`` before, with at least ``min_count``. A spike re-alerts only
when the count doubles or after a window; the first ``mass_incident`` signal of
an institution (none in the baseline period before) alerts at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from crawler.alerts.config import AlertsConfig, OpinionConfig
from crawler.alerts.records import claim_mark, get_mark
from crawler.store.db import as_utc, iso
from crawler.store.models import Hit, HitCategory, Page

logger = logging.getLogger(__name__)


@dataclass
class Signal:
    hit_id: int
    target_id: str
    url: str
    title: str
    labels: list[str]
    first_seen: datetime
    snippets: list[str]
    institutions: list[str] = field(default_factory=list)


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
    rows = session.execute(
        select(Hit, Page.text)
        .join(Page, Page.id == Hit.page_id)
        .where(Hit.id.in_(select(HitCategory.hit_id).where(HitCategory.category.in_(opinion.categories))))
        .where(Hit.first_seen >= since, Hit.first_seen <= until)
        .order_by(Hit.first_seen)
    )
    out = []
    for hit, text in rows:
        snippets = [f.get("snippet") or f.get("text", "") for f in hit.findings
                    if f.get("category") in opinion.categories and not f.get("negated")]
        signal = Signal(hit.id, hit.target_id, hit.url, hit.title, list(hit.labels),
                        as_utc(hit.first_seen), snippets[:3])
        signal.institutions = mentioned(f"{hit.title}\n{text or ''}", targets) or [hit.target_id]
        out.append(signal)
    return out


def first_mass_incidents(session, config: AlertsConfig, signals: list[Signal], new_ids: set[int], now: datetime):
    """(institution, signal) for each institution whose first mass_incident signal is new now."""
    opinion = config.opinion
    if not opinion.first_mass_incident:
        return []
    quiet_period = opinion.baseline_days * 86400 + opinion.window
    found = []
    for signal in signals:
        if signal.hit_id not in new_ids or "mass_incident" not in signal.labels:
            continue
        for inst in signal.institutions:
            if claim_mark(session, inst, "mass_incident_first", "first", now, quiet_period):
                found.append((inst, signal))
    return found


def spikes(session, config: AlertsConfig, signals: list[Signal], institutions: set[str], now: datetime) -> list[Spike]:
    """Institutions (among ``institutions``) whose window count passes threshold or baseline."""
    opinion = config.opinion
    window = timedelta(seconds=opinion.window)
    start = now - window
    periods = opinion.baseline_days * 86400 / opinion.window
    out = []
    for inst in sorted(institutions):
        mine = [s for s in signals if inst in s.institutions]
        current = [s for s in mine if s.first_seen >= start]
        baseline = len(mine) - len(current)
        mean = baseline / periods
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
    }
