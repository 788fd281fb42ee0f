"""Restricted-name screen, seed 三(一): names and business scopes of non-financial firms.

A non-financial enterprise whose registered name or business scope uses one of the
listed words goes on the key-supervision list. Matching is on normalised text (full-width
and case folded, spaces removed) so "Ｐ２Ｐ" and "p2p" count. The words are returned in
the seed's order, longest form only when a shorter listed word is part of it and found
at the same place (基金管理 rather than 基金 + 基金管理); both are reported when the
shorter also occurs on its own elsewhere.
"""

from __future__ import annotations

import logging

from .normalize import normalize

logger = logging.getLogger(__name__)

RESTRICTED_WORDS = ("交易所", "交易中心", "金融", "资产管理", "理财", "基金", "基金管理", "投资管理",
                    "财富管理", "股权投资基金", "网贷", "网络借贷", "P2P", "股权众筹", "互联网保险", "支付")


def screen_name(name: str, business_scope: str = "") -> tuple[str, ...]:
    """The restricted words found in ``name`` or ``business_scope`` (seed order)."""
    text = normalize(f"{name or ''}\n{business_scope or ''}").text
    spans: dict[str, list[tuple[int, int]]] = {}
    for word in RESTRICTED_WORDS:
        w = word.lower()
        i = text.find(w)
        while i >= 0:
            spans.setdefault(word, []).append((i, i + len(w)))
            i = text.find(w, i + 1)
    found = []
    for word, occurrences in spans.items():
        longer = [s for other, ss in spans.items() if other != word and word.lower() in other.lower() for s in ss]
        if any(not any(a <= s and e <= b for a, b in longer) for s, e in occurrences):
            found.append(word)
    return tuple(found)
