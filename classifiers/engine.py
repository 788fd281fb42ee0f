"""The :class:`Classifier`: rules in, one Aho-Corasick pass per field, verdict out.

Built once (rule files parsed and validated; ahocorasick-rs automata over every phrase,
the context cues and the clause cues) and then reused; it pickles (the native automata
are rebuilt on unpickling), so worker processes can build their own lazily. Per text:
normalise, run the phrase automaton once (overlapping matches; it also finds the literals
that regular-expression rules ``require``, and those run only near them), run the yield
extractor, decide the document context, then, only if something was found, scan the cue
automaton once and judge each hit against its clause (see :mod:`classifiers.context`).
Cost is linear in the text; clause work is only done around hits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import ahocorasick_rs

from .context import KINDS, CueCounts, CueIndex, DocCues, Negator, document_context
from .normalize import Normalized, normalize
from .ruleset import Rule, fingerprint, load_rules
from .taxonomy import CATEGORIES
from .verdict import Finding, Verdict, YieldClaim
from .yields import extract_yields

logger = logging.getLogger(__name__)

SNIPPET = 30
WITH_REACH = 30  # with_any cues may sit this far either side, across commas
MAX_HITS_PER_RULE = 50
MAX_PER_WORD = 3
REQUIRES_REACH = 100  # a pattern with `requires` is run within this many characters of one
CONTEXT_HEAD = 3000  # characters of each field in which context cues are counted
_SEV = {"low": 1, "medium": 2, "high": 3}
_RISK = ("none", "low", "medium", "high")
_CTX_KINDS = ("reporting", "reporting_strong", "regulator", "promotional")
YIELD_RULE = "high_yield.above_ceiling"
EVENT_CATEGORIES = frozenset({"collapse_signal", "mass_incident"})
# Investors organising (维权群, 拉横幅, 集体上访) means something already went wrong at a platform.
IMPLIES = {"mass_incident": "collapse_signal"}
_YIELD_GROUPS = ("shopping", "borrower", "promised")
_INVEST = ("投资", "出借", "理财", "收益", "回报", "赚", "返")  # a borrower clause that also sells returns


class Classifier:
    """Rule-based classifier. ``extra_rule_files`` add an operator's lexicon;
    ``yield_ceiling`` is the annual % at or above which an advertised yield is high_yield.
    Raises :class:`~classifiers.ruleset.RuleFileError` on an invalid rule file."""

    def __init__(self, extra_rule_files: Sequence[str | Path] = (), yield_ceiling: float = 10.0):
        self.yield_ceiling = float(yield_ceiling)
        self.ruleset = load_rules(extra_rule_files)
        self.fingerprint = fingerprint(extra_rule_files, self.yield_ceiling)
        """Changes whenever this classifier may judge a text differently: ``ruleset.fingerprint``."""
        self.rules = self.ruleset.rules
        self.cues = self.ruleset.cues
        self.regex_rules = tuple(r for r in self.rules if r.pattern is not None)
        groups = {k: self.cues[k] for k in Negator.GROUPS + _YIELD_GROUPS}
        groups["invest"] = _INVEST
        for r in self.rules:
            if r.with_any:
                groups["with:" + r.id] = r.with_any
            if r.without_any:
                groups["without:" + r.id] = r.without_any
        self.cue_index = CueIndex(groups)
        self.negator = Negator(self.cue_index)
        bits = self.cue_index.bits
        self._with = {r.id: bits["with:" + r.id] for r in self.rules if r.with_any}
        self._without = {r.id: bits["without:" + r.id] for r in self.rules if r.without_any}
        table: dict[str, list] = defaultdict(list)
        for i, rule in enumerate(self.rules):
            for term in rule.phrases:
                table[term].append(i)
        trig: dict[str, list[int]] = defaultdict(list)  # required literal -> regex rules it enables
        for k, rule in enumerate(self.regex_rules):
            for term in rule.requires:
                trig[term].append(k)
        for term in trig:
            table.setdefault(term, [])
        self._terms = tuple(table)
        self._term_rules = tuple(tuple(self.rules[i] for i in idx) for idx in table.values())
        self._triggers = {n: tuple(trig[t]) for n, t in enumerate(self._terms) if t in trig}
        ctx: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for kind in _CTX_KINDS:
            slot = {"reporting": 0, "reporting_strong": 0, "regulator": 1, "promotional": 2}[kind]
            for term in self.cues[kind]:
                ctx[term][slot] += 2 if kind == "reporting_strong" else 1
        self._ctx_terms = tuple(ctx)
        self._ctx_inc = tuple(tuple(v) for v in ctx.values())
        self._automata()

    def _automata(self) -> None:
        """The automata are native objects: built here and again after unpickling."""
        self.automaton = ahocorasick_rs.AhoCorasick(list(self._terms)) if self._terms else None
        self.context_automaton = ahocorasick_rs.AhoCorasick(list(self._ctx_terms)) if self._ctx_terms else None

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("automaton", None)
        state.pop("context_automaton", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._automata()

    def _count_context(self, text: str, counts: CueCounts) -> None:
        """Context cues are counted in the head of each field only: what a document is
        (news, notice, advert) shows in its first paragraphs, and long pages stay cheap."""
        if self.context_automaton is None:
            return
        rep = reg = pro = 0
        inc = self._ctx_inc
        for i, _s, _e in self.context_automaton.find_matches_as_indexes(text[:CONTEXT_HEAD], overlapping=True):
            r, g, p = inc[i]
            rep += r
            reg += g
            pro += p
        counts.reporting += rep
        counts.regulator += reg
        counts.promotional += pro

    # -- matching ---------------------------------------------------------------------
    def _scan(self, norm: Normalized, counts: CueCounts) -> list[tuple[int, int, Rule]]:
        text = norm.text
        self._count_context(text, counts)
        hits: list[tuple[int, int, Rule]] = []
        seen: dict[int, list[int]] = {}  # regex rule -> where one of its required literals is
        if self.automaton is not None:
            term_rules = self._term_rules
            matches = self.automaton.find_matches_as_indexes(text, overlapping=True)
            if len(matches) > MAX_HITS_PER_RULE:  # long or spammy pages: cap each rule
                per_rule: dict[str, int] = defaultdict(int)
                for i, s, e in matches:
                    for rule in term_rules[i]:
                        if per_rule[rule.id] < MAX_HITS_PER_RULE:
                            per_rule[rule.id] += 1
                            hits.append((s, e, rule))
            else:
                hits = [(s, e, rule) for i, s, e in matches for rule in term_rules[i]]
            triggers = self._triggers
            if triggers:
                for i, s, _e in matches:
                    if i in triggers:
                        for k in triggers[i]:
                            seen.setdefault(k, []).append(s)
        for k, rule in enumerate(self.regex_rules):
            if rule.requires:
                if k not in seen:
                    continue
                spans = _windows(seen[k], REQUIRES_REACH, len(text))
            else:
                spans = ((0, len(text)),)
            n = 0
            for lo, hi in spans:
                for m in rule.pattern.finditer(text, lo, hi):
                    if m.end() > m.start() and n < MAX_HITS_PER_RULE:
                        n += 1
                        hits.append((m.start(), m.end(), rule))
        return _drop_nested(hits) if len(hits) > 1 else hits

    def _judge(self, norm: Normalized, doc: DocCues, start: int, end: int, rule: Rule,
               context: str) -> str | None | bool:
        """False when the rule does not apply; else the cancelling cue or None."""
        if rule.scope == "absorb":
            return False
        lo, hi = norm.clause(start, end)
        if rule.with_any and doc.first(self._with[rule.id], max(0, start - WITH_REACH), end + WITH_REACH) is None:
            return False
        if rule.without_any:
            cue = doc.first(self._without[rule.id], lo, hi)
            if cue:
                return cue
        promo = rule.scope == "promo"
        if rule.negatable:
            cue = self.negator.cancel(doc, norm.text, lo, hi, start, promo, rule.category in EVENT_CATEGORIES)
            if cue:
                return cue
        if promo and context in ("reporting", "regulator"):
            return context
        return None

    def _field(self, original: str, field: str, norm: Normalized, doc: DocCues, hits,
               context: str) -> list[Finding]:
        """Judge hits; a word repeated many times (spam, long pages) is judged until one
        occurrence stands, and at most MAX_PER_WORD occurrences are reported."""
        out = []
        groups: dict[tuple[str, str], list[int]] = {}  # (rule, word) -> [reported, standing]
        text = norm.text
        for start, end, rule in hits:
            if rule.scope == "absorb":
                continue
            g = groups.setdefault((rule.id, text[start:end]), [0, 0])
            if g[1] or g[0] >= MAX_PER_WORD:
                continue
            cue = self._judge(norm, doc, start, end, rule, context)
            if cue is False:
                continue
            g[0] += 1
            g[1] = cue is None
            out.append(_finding(original, field, norm, start, end, rule.category, rule.id, rule.weight, cue))
        return out

    def _yields(self, original: str, field: str, norm: Normalized, doc_of, context: str):
        claims, findings = [], []
        text = norm.text
        raw = extract_yields(text)
        if not raw:
            return claims, findings
        doc = doc_of()
        bits = self.cue_index.bits
        for c in raw:
            lo, hi = norm.clause(c.start, c.end)
            if doc.first(bits["shopping"], lo, hi) or (
                    doc.first(bits["borrower"], lo, hi) and not doc.first(bits["invest"], lo, hi)):
                continue
            promised = doc.first(bits["promised"], lo, hi) is not None
            s, e = norm.orig_span(c.start, c.end)
            claims.append(YieldClaim(original[s:e], s, e, field, c.low, c.high, c.period, promised))
            if c.high >= self.yield_ceiling:
                cue = (self.negator.cancel(doc, text, lo, hi, c.start, True)
                       or self.negator.generic_cue(doc, lo, hi))
                if not cue and context in ("reporting", "regulator"):
                    cue = context
                findings.append(_finding(original, field, norm, c.start, c.end, "high_yield", YIELD_RULE, 1.0, cue))
        return claims, findings

    # -- public -----------------------------------------------------------------------
    def classify(self, text: str, *, title: str = "", url: str = "", kind: str | None = None) -> Verdict:
        """Classify ``text`` (and ``title``). ``kind`` is one of ad, platform_page,
        social_post, news, regulator, forum, complaint, or None to infer the context."""
        text, title, url = _as_str(text, "text"), _as_str(title, "title"), _as_str(url, "url")
        if kind is not None and kind not in KINDS:
            logger.debug("unknown kind %r treated as None", kind)
            kind = None
        fields = [("text", text)]
        if title.strip() and title.strip() not in text:
            fields.insert(0, ("title", title))
        counts = CueCounts()
        scanned = []
        for field, original in fields:
            norm = normalize(original)
            scanned.append((field, original, norm, self._scan(norm, counts)))
        context = document_context(kind, counts, url)
        findings: list[Finding] = []
        yields: list[YieldClaim] = []
        for field, original, norm, hits in scanned:
            doc_of = _lazy(self.cue_index.scan, norm.text)
            if hits:
                findings.extend(self._field(original, field, norm, doc_of(), hits, context))
            claims, yfind = self._yields(original, field, norm, doc_of, context)
            yields.extend(claims)
            findings.extend(yfind)
        findings.sort(key=lambda f: (f.field != "title", f.start, f.category))
        return _verdict(findings, yields, context, self.ruleset.thresholds)


def _windows(positions: list[int], reach: int, size: int) -> list[tuple[int, int]]:
    """Merged [p - reach, p + reach) windows around sorted-ish positions."""
    out: list[list[int]] = []
    for p in sorted(positions):
        lo, hi = max(0, p - reach), min(size, p + reach)
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def _lazy(fn, arg):
    """``fn(arg)`` computed on first call only."""
    box: list = []

    def get():
        if not box:
            box.append(fn(arg))
        return box[0]
    return get


def _as_str(value, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, got {type(value).__name__}")
    return value


def _drop_nested(hits):
    """Keep the longest hit when hits of the same category overlap (保本 inside 保本保息)."""
    hits.sort(key=lambda h: (h[2].category, h[0], -(h[1] - h[0])))
    out, last = [], {}
    for h in hits:
        prev = last.get(h[2].category)
        if prev is not None and h[0] >= prev[0] and h[1] <= prev[1]:
            continue
        if prev is None or h[1] > prev[1]:
            last[h[2].category] = h
        out.append(h)
    out.sort(key=lambda h: h[0])
    return out


def _finding(original, field, norm, start, end, category, rule_id, weight, cue) -> Finding:
    s, e = norm.orig_span(start, end)
    snippet = original[max(0, s - SNIPPET): e + SNIPPET].replace("\n", " ")
    return Finding(category, rule_id, original[s:e], s, e, field, snippet, weight, cue is not None, cue)


def _verdict(findings, yields, context, thresholds) -> Verdict:
    partial: dict[str, float] = {}
    sums: dict[str, float] = defaultdict(float)
    keep: dict[str, float] = defaultdict(lambda: 1.0)
    seen: set[tuple[str, str]] = set()
    for f in findings:  # a repeated word (spam) counts once per rule
        if not f.negated and (f.rule_id, f.text) not in seen:
            seen.add((f.rule_id, f.text))
            sums[f.category] += f.weight
            keep[f.category] *= 1.0 - f.weight
    partial.update({c: 1.0 - k for c, k in keep.items()})
    fired = {c for c, s in sums.items() if s >= thresholds.get(c, 1.0) - 1e-9}
    for cat, implied in IMPLIES.items():
        if cat in fired and implied not in fired:
            fired.add(implied)
            partial[implied] = max(partial.get(implied, 0.0), 1.0 - keep[cat])
    labels = tuple(sorted(fired))
    if labels:
        score = max(partial[c] for c in labels)
        sev = max(_SEV[CATEGORIES[c].severity] for c in labels)
        risk = _RISK[sev if score >= 0.75 else max(1, sev - 1)]
    else:
        score, risk = 0.5 * max(partial.values(), default=0.0), "none"
    return Verdict(labels, round(min(1.0, score), 4), risk, tuple(findings), tuple(yields), context)
