"""Attribute a channel or opinion result to a registered institution (一户一档).

In order: **domain** — the page (or the ad's link, or a hop of its landing chain)
is inside a target's ``allowed_domains``, the list's own host excluded, so a forum
post is not "about" the forum, and so are the domains of targets registered with a
``kind`` other than ``platform_page`` (a forum, a complaint board: their pages are posts
about others, attributed by name with that target left out); **advertiser** — the slot's advertiser names a
target (name or alias); **name** — the title or text names a target. Names are
found as whole words (``classifiers.tokenize.word_edges``: 金服 is not in 金服务), without
adding them to jieba's dictionary, which would make this process cut search terms
differently from the others; full registered names also as substrings. With several targets named, the most often named wins and the
others are listed in the detail. Pure: targets in, decision out.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from classifiers.tokenize import fold_chars, word_edges, words
from crawler.config import Target, in_scope

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attribution:
    target_id: str
    reason: str
    """domain | advertiser | name"""
    detail: str


def netloc(url: str) -> str:
    """``host`` or ``host:port`` when the URL names a port, lower-cased."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


class Attributor:
    def __init__(self, targets: tuple[Target, ...] | list[Target]):
        self.targets = [t for t in targets if t.enabled]
        self.names: dict[str, str] = {}
        for target in self.targets:
            for name in (target.name, *target.aliases):
                if name and len(name) >= 2:
                    self.names.setdefault(fold_chars(name).lower(), target.id)
        # the names as the text they are looked for in is written: punctuation one space
        self.words = {clean: target_id for name, target_id in self.names.items() if (clean := words(name).strip())}
        # registered names long enough to be looked for as substrings too, folded as texts are
        self.full_names = {t.id: full for t in self.targets if len(full := fold_chars(t.name).lower()) >= 6}

    def by_domain(self, urls: list[str], exclude_host: str = "") -> Attribution | None:
        for url in urls:
            if not urlsplit(url).hostname or netloc(url) == exclude_host:
                continue
            for target in self.targets:
                if target.kind == "platform_page" and in_scope(url, target.allowed_domains):
                    return Attribution(target.id, "domain", urlsplit(url).netloc)
        return None

    def post_sites(self, urls: list[str]) -> set[str]:
        """Ids of the targets of posts about others (``kind`` not ``platform_page``) whose
        domains hold one of ``urls``: their own names are in every page's header."""
        return {t.id for t in self.targets if t.kind != "platform_page"
                and any(in_scope(url, t.allowed_domains) for url in urls if urlsplit(url).hostname)}

    def by_advertiser(self, advertiser: str) -> Attribution | None:
        text = fold_chars(advertiser or "").lower()
        if not text:
            return None
        for name, target_id in sorted(self.names.items(), key=lambda kv: -len(kv[0])):
            if name in text:
                return Attribution(target_id, "advertiser", f"{advertiser} ⊇ {name}")
        return None

    def mentions(self, text: str) -> Counter:
        """target id → how often its names occur in ``text`` (whole words, full names as substrings).

        The text is folded as search terms are (full width, traditional characters: 鑫盈寶
        is 鑫盈宝), one character for one, so a Big5 post names the institution too."""
        text = fold_chars(text)
        clean = words(text)
        edges = word_edges(clean)
        counts: Counter = Counter()
        for name, target_id in self.words.items():
            at = clean.find(name)
            while at >= 0:
                if at in edges and at + len(name) in edges:
                    counts[target_id] += 1
                at = clean.find(name, at + len(name))
        lowered = text.lower()
        for target_id, full in self.full_names.items():
            if full in lowered and not counts[target_id]:
                counts[target_id] += lowered.count(full)
        return +counts

    def by_name(self, text: str, exclude: Collection[str] = ()) -> Attribution | None:
        """The institution the text names most; ``exclude``: the site's own target ids, whose
        names are in every page's header (a forum registered as a target names itself)."""
        counts = self.mentions(text)
        for target_id in exclude:
            counts.pop(target_id, None)
        if not counts:
            return None
        ranked = counts.most_common()
        detail = ", ".join(f"{self._label(t)}×{n}" for t, n in ranked)
        return Attribution(ranked[0][0], "name", detail)

    def _label(self, target_id: str) -> str:
        names = [n for n, t in self.names.items() if t == target_id]
        return min(names, key=len) if names else target_id

    def attribute(self, urls: list[str], advertiser: str, text: str, exclude_host: str = "") -> Attribution | None:
        """``exclude_host``: the list's own ``host[:port]``, whose pages are not attributed by domain."""
        return (self.by_domain(urls, exclude_host) or self.by_advertiser(advertiser)
                or self.by_name(text, exclude=self.post_sites(urls)))
