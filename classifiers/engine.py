"""The :class:`Classifier`: rules in, one Aho-Corasick pass per field, verdict out.

Built once (rule files parsed and validated, one automaton over every phrase and context
cue) and then reused; it holds no open resources and pickles, so worker processes can
build their own lazily. Per text: normalise, run the automaton once, run the few
regular-expression rules and the yield extractor, decide the document context, then
judge each hit against its clause (see :mod:`classifiers.context`). Cost is linear in
the text; clause work is only done around hits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import ahocorasick

from .context import KINDS, CueCounts, CueFinder, Negator, document_context
from .normalize import Normalized, normalize
from .ruleset import Rule, load_rules
from .taxonomy import CATEGORIES
from .verdict import Finding, Verdict, YieldClaim
from .yields import extract_yields

logger = logging.getLogger(__name__)

SNIPPET = 30
WITH_REACH = 30  # with_any cues may sit this far either side, across commas
MAX_HITS_PER_RULE = 50
MAX_PER_WORD = 3
CONTEXT_HEAD = 3000  # characters of each field in which context cues are counted
_SEV = {"low": 1, "medium": 2, "high": 3}
_RISK = ("none", "low", "medium", "high")
_CTX_KINDS = ("reporting", "reporting_strong", "regulator", "promotional")
YIELD_RULE = "high_yield.above_ceiling"
EVENT_CATEGORIES = frozenset({"collapse_signal", "mass_incident"})
# Investors organising (维权群, 拉横幅, 集体上访) means something already went wrong at a platform.
IMPLIES = {"mass_incident": "collapse_signal"}


class Classifier:
    """Rule-based classifier. ``extra_rule_files`` add an operator's lexicon;
    ``yield_ceiling`` is the annual % at or above which an advertised yield is high_yield.
    Raises :class:`~classifiers.ruleset.RuleFileError` on an invalid rule file."""

    def __init__(self, extra_rule_files: Sequence[str | Path] = (), yield_ceiling: float = 10.0):
        self.yield_ceiling = float(yield_ceiling)
        self.ruleset = load_rules(extra_rule_files)
        self.rules = self.ruleset.rules
        self.cues = self.ruleset.cues
        self.negator = Negator(self.cues)
        self.regex_rules = tuple(r for r in self.rules if r.pattern is not None)
        self._with = {r.id: CueFinder(r.with_any) for r in self.rules if r.with_any}
        self._without = {r.id: CueFinder(r.without_any) for r in self.rules if r.without_any}
        self.automaton = self._build()

    def _build(self) -> ahocorasick.Automaton:
        table: dict[str, list] = defaultdict(list)
        for i, rule in enumerate(self.rules):
            for term in rule.phrases:
                table[term].append(i)
        automaton = ahocorasick.Automaton()
        for term, rules in table.items():
            automaton.add_word(term, (len(term), tuple(rules)))
        automaton.make_automaton()
        ctx: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for kind in _CTX_KINDS:
            slot = {"reporting": 0, "reporting_strong": 0, "regulator": 1, "promotional": 2}[kind]
            for term in self.cues[kind]:
                ctx[term][slot] += 2 if kind == "reporting_strong" else 1
        self.context_automaton = ahocorasick.Automaton()
        for term, inc in ctx.items():
            self.context_automaton.add_word(term, tuple(inc))
        self.context_automaton.make_automaton()
        return automaton

    def _count_context(self, text: str, counts: CueCounts) -> None:
        """Context cues are counted in the head of each field only: what a document is
        (news, notice, advert) shows in its first paragraphs, and long pages stay cheap."""
        rep = reg = pro = 0
        for _end, (r, g, p) in self.context_automaton.iter(text[:CONTEXT_HEAD]):
            rep += r
            reg += g
            pro += p
        counts.reporting += rep
        counts.regulator += reg
        counts.promotional += pro

    # -- matching ---------------------------------------------------------------------
    def _scan(self, norm: Normalized, counts: CueCounts) -> list[tuple[int, int, Rule]]:
        hits: list[tuple[int, int, Rule]] = []
        per_rule = [0] * len(self.rules)
        rules = self.rules
        self._count_context(norm.text, counts)
        for end, (length, idx) in self.automaton.iter(norm.text):
            for i in idx:
                if per_rule[i] < MAX_HITS_PER_RULE:
                    per_rule[i] += 1
                    hits.append((end + 1 - length, end + 1, rules[i]))
        for rule in self.regex_rules:
            for n, m in enumerate(rule.pattern.finditer(norm.text)):
                if n >= MAX_HITS_PER_RULE:
                    break
                if m.end() > m.start():
                    hits.append((m.start(), m.end(), rule))
        return _drop_nested(hits)

    def _judge(self, norm: Normalized, start: int, end: int, rule: Rule, context: str) -> str | None | bool:
        """False when the rule does not apply; else the cancelling cue or None."""
        text = norm.text
        if rule.scope == "absorb":
            return False
        lo, hi = norm.clause(start, end)
        clause = text[lo:hi]
        window = text[max(0, start - WITH_REACH): end + WITH_REACH]
        if rule.with_any and self._with[rule.id].first(window) is None:
            return False
        if rule.without_any:
            cue = self._without[rule.id].first(clause)
            if cue:
                return cue
        promo = rule.scope == "promo"
        if rule.negatable:
            cue = self.negator.cancel(text, lo, hi, start, promo, rule.category in EVENT_CATEGORIES)
            if cue:
                return cue
        if promo and context in ("reporting", "regulator"):
            return context
        return None

    def _field(self, original: str, field: str, norm: Normalized, hits, context: str) -> list[Finding]:
        """Judge hits; a word repeated many times (spam, long pages) is judged until one
        occurrence stands, and at most MAX_PER_WORD occurrences are reported."""
        out = []
        groups: dict[tuple[str, str], list[int]] = {}  # (rule, word) -> [reported, standing]
        text = norm.text
        for start, end, rule in hits:
            g = groups.setdefault((rule.id, text[start:end]), [0, 0])
            if g[1] or g[0] >= MAX_PER_WORD:
                continue
            cue = self._judge(norm, start, end, rule, context)
            if cue is False:
                continue
            g[0] += 1
            g[1] = cue is None
            out.append(_finding(original, field, norm, start, end, rule.category, rule.id, rule.weight, cue))
        return out

    def _yields(self, original: str, field: str, norm: Normalized, context: str):
        claims, findings = [], []
        text = norm.text
        for c in extract_yields(text):
            lo, hi = norm.clause(c.start, c.end)
            clause = text[lo:hi]
            if any(s in clause for s in self.cues["shopping"]) or (
                    any(b in clause for b in self.cues["borrower"])
                    and not any(w in clause for w in ("投资", "出借", "理财", "收益", "回报", "赚", "返"))):
                continue
            promised = any(p in clause for p in self.cues["promised"])
            s, e = norm.orig_span(c.start, c.end)
            claims.append(YieldClaim(original[s:e], s, e, field, c.low, c.high, c.period, promised))
            if c.high >= self.yield_ceiling:
                cue = self.negator.cancel(text, lo, hi, c.start, True) or self.negator.generic_cue(clause)
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
            findings.extend(self._field(original, field, norm, hits, context))
            claims, yfind = self._yields(original, field, norm, context)
            yields.extend(claims)
            findings.extend(yfind)
        findings.sort(key=lambda f: (f.field != "title", f.start, f.category))
        return _verdict(findings, yields, context, self.ruleset.thresholds)


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
