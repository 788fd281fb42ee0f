"""Why a hit counts or not: negation, compliance, attribution and document context.

A rule hit is cancelled (kept in the verdict, ``negated=True``) when:

* a *near* negation cue (不, 非, 无, 并非, 不承诺 …) ends at most ``NEAR`` characters before
  it in the same clause, e.g. 不保本, 非保本浮动收益, 不承诺保本保息;
* a *clause* negation cue (不得, 严禁, 禁止, 谨防, 警惕 …) precedes it anywhere in the clause
  ("不得自融自保、代替客户承诺保本保息" is the law, not an offer);
* a compliance statement (理财非存款, 产品有风险, 投资须谨慎, 不代表未来表现 …) is in the clause
  of a promotional hit;
* for event categories (collapse, mass incident), the clause is generic or a question
  (一些平台…, 如何避免…, …跑路了吗？), which is advice rather than a report;
* for promotional hits, the document is a report or a regulator notice, or the clause
  attributes the wording to someone else (号称, 宣称, 打着…旗号, 以…为诱饵).

The document context is inferred from counts of reporting, regulator and promotional
cues, with the caller's ``kind`` as a strong prior.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ahocorasick

logger = logging.getLogger(__name__)

NEAR = 6
_ASK = ("吗", "么", "呢")
_ASK_WORDS = ("怎么", "如何", "哪", "是否", "是不是", "会不会", "有没有", "能不能")
REPORTING_KINDS = {"news": "reporting", "regulator": "regulator"}
PROMO_KINDS = {"ad", "platform_page"}
KINDS = ("ad", "platform_page", "social_post", "news", "regulator", "forum", "complaint")


@dataclass
class CueCounts:
    """Context cue counts over title and text."""

    reporting: int = 0
    regulator: int = 0
    promotional: int = 0


def document_context(kind: str | None, counts: CueCounts, url: str = "") -> str:
    """``"promotional" | "reporting" | "regulator" | "neutral"`` for the whole document."""
    if kind in REPORTING_KINDS:
        return REPORTING_KINDS[kind]
    host = url.split("://", 1)[-1].split("/", 1)[0].lower()
    if kind is None and (host.endswith(".gov.cn") or host == "gov.cn"):
        return "regulator"
    rep = counts.reporting + counts.regulator
    pro = counts.promotional
    label = "regulator" if counts.regulator >= 2 and counts.regulator * 2 >= rep else "reporting"
    if kind in PROMO_KINDS:
        return label if rep >= 4 and rep > 3 * pro else "promotional"
    if rep >= 2 and rep > pro:
        return label
    return "promotional" if pro >= 1 else "neutral"


class CueFinder:
    """First cue of a list found in a string, via one small Aho-Corasick automaton (fast on
    the short clauses we test, where a Python loop of ``in`` over 100 cues was the hot spot)."""

    def __init__(self, cues: tuple[str, ...]):
        self.automaton = ahocorasick.Automaton()
        for cue in cues:
            self.automaton.add_word(cue, cue)
        self.empty = not cues
        if not self.empty:
            self.automaton.make_automaton()

    def first(self, segment: str) -> str | None:
        if self.empty or not segment:
            return None
        for _end, cue in self.automaton.iter(segment):
            return cue
        return None

    def all_in(self, segment: str) -> list[tuple[int, str]]:
        """(start, cue) of every cue in ``segment``."""
        if self.empty or not segment:
            return []
        return [(end + 1 - len(cue), cue) for end, cue in self.automaton.iter(segment)]


class Negator:
    """Finds the cue (if any) that cancels a hit; cue lists come from the rule files."""

    def __init__(self, cues: dict[str, tuple[str, ...]]):
        self.near = CueFinder(cues["negation_near"])
        self.clause = CueFinder(cues["negation_clause"])
        self.compliance = CueFinder(cues["compliance"])
        self.generic = CueFinder(cues["generic"])
        self.attribution = CueFinder(cues["attribution"])
        self._cache: dict = {}  # (clause span, promo, text) -> clause-level cue; bounded
        self._not_neg = frozenset(("不断", "不仅", "不少", "不同", "不错", "不久", "不妨", "不过",
                                   "不论", "无忧", "无限", "非常", "无论", "不一", "无需", "无须",
                                   "不停", "不用", "无门", "不了", "不到"))

    def near_cue(self, text: str, lo: int, start: int) -> str | None:
        base = max(lo, start - NEAR)
        best = None
        for i, cue in self.near.all_in(text[base: start]):
            pos = base + i
            if len(cue) == 1 and pos + 2 < start:  # single characters must (nearly) touch: 不保本, 不为…
                continue
            if text[pos: pos + 2] in self._not_neg and cue != text[pos: pos + 2]:
                continue
            if best is None or len(cue) > len(best):
                best = cue
        return best

    @staticmethod
    def _first(finder: CueFinder, segment: str) -> str | None:
        return finder.first(segment)

    def generic_cue(self, clause: str) -> str | None:
        cue = self.generic.first(clause)
        return "generic:" + cue if cue else None

    def cancel(self, text: str, lo: int, hi: int, start: int, promo: bool, event: bool = False) -> str | None:
        """The cue cancelling a hit at ``start`` inside clause [lo, hi), or None."""
        cue = self.near_cue(text, lo, start)
        if cue:
            return cue
        before = text[lo:start]
        cue = self._first(self.clause, before)
        if cue:
            return cue
        key = (lo, hi, promo, text)
        cached = self._cache.get(key, 0)
        if cached == 0:
            clause = text[lo:hi]
            if promo:
                cached = self._first(self.compliance, clause) or self._first(self.attribution, clause)
            else:
                cue = self._first(self.generic, clause)
                cached = "generic:" + cue if cue else None
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = cached
        if cached:
            return cached
        if not promo:
            clause = text[lo:hi]
            if event and clause.endswith(_ASK) and any(w in clause for w in _ASK_WORDS):
                return "question"
        return None
