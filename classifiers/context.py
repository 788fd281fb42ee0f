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

import bisect
import logging
from dataclasses import dataclass

import ahocorasick_rs

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


class CueIndex:
    """Every cue list (and each rule's ``with_any``/``without_any``) in one automaton.

    A document is scanned once (:meth:`scan`) when it has a hit to judge; clause
    questions are then answered from the sorted cue positions, so no per-hit substring
    is built or searched. Groups are named; each gets a bit."""

    def __init__(self, groups: dict[str, tuple[str, ...]]):
        self.bits = {name: 1 << i for i, name in enumerate(groups)}
        table: dict[str, int] = {}
        for name, terms in groups.items():
            for term in terms:
                table[term] = table.get(term, 0) | self.bits[name]
        self.terms = tuple(table)
        self.masks = tuple(table.values())
        self._automaton = None

    def __getstate__(self):
        return {"bits": self.bits, "terms": self.terms, "masks": self.masks}

    def __setstate__(self, state):
        self.__dict__.update(state, _automaton=None)

    def scan(self, text: str) -> "DocCues":
        if not self.terms or not text:
            return DocCues([])
        if self._automaton is None:
            self._automaton = ahocorasick_rs.AhoCorasick(list(self.terms))
        terms, masks = self.terms, self.masks
        found = [(e, s, masks[i], terms[i])
                 for i, s, e in self._automaton.find_matches_as_indexes(text, overlapping=True)]
        found.sort()  # by end, then longest first: the order a left-to-right scan reports
        return DocCues(found)


class DocCues:
    """Cue occurrences of one document, sorted by (end, start)."""

    __slots__ = ("cues", "ends", "cache")

    def __init__(self, cues: list):
        self.cues = cues
        self.ends = [c[0] for c in cues]
        self.cache: dict = {}

    def iter(self, bit: int, lo: int, hi: int):
        """(start, term) of the cues of group ``bit`` lying wholly inside [lo, hi)."""
        cues = self.cues
        for k in range(bisect.bisect_left(self.ends, lo + 1), len(cues)):
            e, s, mask, term = cues[k]
            if e > hi:
                return
            if mask & bit and s >= lo:
                yield s, term

    def first(self, bit: int, lo: int, hi: int) -> str | None:
        for _s, term in self.iter(bit, lo, hi):
            return term
        return None


class Negator:
    """Finds the cue (if any) that cancels a hit; cue lists come from the rule files."""

    GROUPS = ("negation_near", "negation_clause", "compliance", "generic", "attribution")

    def __init__(self, index: CueIndex):
        bits = index.bits
        self.near, self.clause, self.compliance = bits["negation_near"], bits["negation_clause"], bits["compliance"]
        self.generic, self.attribution = bits["generic"], bits["attribution"]
        self._not_neg = frozenset(("不断", "不仅", "不少", "不同", "不错", "不久", "不妨", "不过",
                                   "不论", "无忧", "无限", "非常", "无论", "不一", "无需", "无须",
                                   "不停", "不用", "无门", "不了", "不到"))

    def near_cue(self, doc: DocCues, text: str, lo: int, start: int) -> str | None:
        best = None
        for pos, cue in doc.iter(self.near, max(lo, start - NEAR), start):
            if len(cue) == 1 and pos + 2 < start:  # single characters must (nearly) touch: 不保本, 不为…
                continue
            if text[pos: pos + 2] in self._not_neg and cue != text[pos: pos + 2]:
                continue
            if best is None or len(cue) > len(best):
                best = cue
        return best

    def generic_cue(self, doc: DocCues, lo: int, hi: int) -> str | None:
        cue = doc.first(self.generic, lo, hi)
        return "generic:" + cue if cue else None

    def cancel(self, doc: DocCues, text: str, lo: int, hi: int, start: int, promo: bool,
               event: bool = False) -> str | None:
        """The cue cancelling a hit at ``start`` inside clause [lo, hi), or None."""
        cue = self.near_cue(doc, text, lo, start) or doc.first(self.clause, lo, start)
        if cue:
            return cue
        key = (lo, hi, promo)
        cached = doc.cache.get(key, 0)
        if cached == 0:
            if promo:
                cached = doc.first(self.compliance, lo, hi) or doc.first(self.attribution, lo, hi)
            else:
                cached = self.generic_cue(doc, lo, hi)
            doc.cache[key] = cached
        if cached:
            return cached
        if event and not promo:
            clause = text[lo:hi]
            if clause.endswith(_ASK) and any(w in clause for w in _ASK_WORDS):
                return "question"
        return None
