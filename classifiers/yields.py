"""Extract advertised returns and normalise them to a simple annual percentage.

Structure matters here (numbers, ranges, units), so this is the one place that uses
regular expressions rather than the lexicon automaton. Supported forms, on normalised
text (half-width digits, no spaces):

* annual:   年化12%, 年化收益率高达18%, 预期收益8%-12%, 最高15%, 年息1分 (=10%), 8%高收益
* seven-day: 七日年化3.2%
* monthly:  月息2分 (=2%/month), 月息1分2 (=1.2%/month), 月息8厘, 月利率1.5%, 月收益3% -> x12
* daily:    日息0.5%, 日息千分之五, 日化1% -> x365
* amounts:  投资1万元每月返息300元 -> 300/10000 x 12 = 36%

分 and 厘 depend on the period, as in Chinese lending usage: 年息1分 = 10 %/year,
月息1分 = 1 %/month, 日息1分 = 0.1 %/day; 1 厘 is a tenth of 1 分. Borrowing costs
(借款年利率, 日息 of a cash-loan app) are not advertised returns and are skipped when
the clause talks about borrowing and not about investing.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_NUM = r"\d+(?:\.\d+)?"
_RANGE = rf"(?P<a>{_NUM})%?(?:(?:-|~|至|到|—|–)(?P<b>{_NUM}))?"
_CN_DIGIT = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
             "八": 8, "九": 9, "十": 10}
_PERMILLE = re.compile(r"千分之(?P<a>[\d一二两三四五六七八九十]+(?:\.\d+)?)")
_FEN = re.compile(rf"(?P<a>{_NUM}|[一二两三四五六七八九十])(?P<u>分|厘)"
                  r"(?P<t>[1-9一二三四五六七八九](?![\d%.秒天个期年月日]))?"  # 1分2 = 1.2 分
                  r"(?!钟|期|红|享|配|成|钱|之)")

_ANNUAL_KW = (r"七日年化|7日年化|万份收益|年化|年收益|年利率|年息|年回报|预期收益|"
              r"预计收益|参考收益|收益率|回报率|利率|年化利率|回报|收益|利息|返息|分红|返利|"
              r"月息|月利率|月收益|月化|月回报|月返|每个月|每月|日息|日利率|日收益|日化|日回报|日返|每天|每日")
_KW = re.compile(_ANNUAL_KW)
_PCT_AFTER = re.compile(rf"(?P<pre>最高|高达|可达|达到|达|约|为|:|超过|不低于|稳定|固定|保底)?{_RANGE}%"
                        rf"(?:\+(?P<c>{_NUM})%?(?:(?:-|~|至)(?P<d>{_NUM}))?%)?")
_PCT_BEFORE = re.compile(rf"{_RANGE}%(?:\+[^,，。;；]{{0,6}}?)?(?P<kw>的?(?:高收益|高回报|收益|回报|年化|利息|分红))")
_PCT_KW = re.compile(r"%(?:\+[^,，。;；]{0,6}?)?的?(?:高收益|高回报|收益|回报|年化|利息|分红)")  # anchors _PCT_BEFORE
_AMOUNT_RET = re.compile(r"(?P<per>每月|月|每天|每日|日|每周|周|每年|年)(?:可|能|就|都)?"
                         r"(?:[^，,。；;\d]{0,4}?)(?:返还|返息|返利|返现|返|收益|利息|分红|赚|领|拿|得|到账)(?P<r>\d+(?:\.\d+)?)(?P<ru>万)?(?:元|块)")
_PRINCIPAL = re.compile(r"(?:投资|投入|投|存入|存|出借|本金|买入|认购|入金)(?P<p>\d+(?:\.\d+)?|[一二两三四五六七八九十])(?P<pu>万|千|百)?(?:元|块)")
_STOP = re.compile(r"[，。；;!?！？\n]")
_FIGURE = re.compile(r"[\d一二两三四五六七八九十]")  # every figure the claim patterns read has one
_PERIOD_WORDS = ("年", "月", "日", "每", "七日", "7日", "万份")  # yield words that name their period
_SAFETY = ("安全", "保障", "保证", "保本", "兑付", "赔付", "担保", "本息", "无风险", "零风险")  # 100%安全: no yield
_REACH = 24  # characters after a yield word where its figure may stand
_PERIOD_DAYS = {"year": 1.0, "month": 12.0, "day": 365.0, "week": 52.0, "seven_day": 1.0}
_FEN_VALUE = {"year": 10.0, "month": 1.0, "day": 0.1, "week": 0.1, "seven_day": 10.0}


@dataclass(frozen=True)
class RawClaim:
    """A claim on normalised text; the engine maps offsets back and adds ``promised``."""

    start: int
    end: int
    low: float
    high: float
    period: str


def _period(kw: str) -> str:
    if kw.startswith(("七日", "7日", "万份")):
        return "seven_day"
    if kw.startswith(("月", "每月", "每个月")):
        return "month"
    if kw.startswith(("日", "每天", "每日")):
        return "day"
    return "year"


def _num(s: str) -> float:
    if s in _CN_DIGIT:
        return float(_CN_DIGIT[s])
    if s and all(c in _CN_DIGIT for c in s):  # 十五 / 二十
        if s.startswith("十"):
            return 10.0 + (_CN_DIGIT.get(s[1:], 0) if len(s) > 1 else 0)
        return _CN_DIGIT[s[0]] * 10.0 + (_CN_DIGIT.get(s[2:], 0) if len(s) > 2 else 0)
    return float(s)


def _claim(start: int, end: int, a: float, b: float | None, period: str) -> RawClaim | None:
    lo, hi = (a, b) if b is not None else (a, a)
    if lo > hi:
        lo, hi = hi, lo
    k = _PERIOD_DAYS[period]
    lo, hi = round(lo * k, 4), round(hi * k, 4)
    if hi <= 0 or hi > 100000:
        return None
    return RawClaim(start, end, lo, hi, period)


def _after_keyword(text: str, m: re.Match, limit: int) -> RawClaim | None:
    """The nearest figure within a few characters after a yield keyword.

    A figure after another yield word that names its own period is that word's
    (月息2分（年化24% is 2 % a month, not 24 %; 收益每月2% and a heading run into its text,
    高收益 月化收益率3%, are 2 % and 3 % a month), unless both words name a period and run on
    (年化收益率18%, where 收益率 names none, is one term anyway); a percentage followed by a
    safety word (利息100%安全) is a guarantee, not a yield.
    """
    period = _period(m.group())
    tail = text[m.end(): m.end() + limit]
    stop = _STOP.search(tail)
    if stop:
        tail = tail[: stop.start()]
    chain = 0  # yield words right after this one (年化|收益率) belong to it
    names_period = m.group().startswith(_PERIOD_WORDS)
    for other in _KW.finditer(tail):
        if other.group().startswith(_PERIOD_WORDS) and (other.start() > chain or not names_period):
            tail = tail[: other.start()]
            break
        chain = other.end()
    kw = m.group()
    found = []
    for rx, needle in ((_PCT_AFTER, "%"), (_PERMILLE, "千分之"), (_FEN, "分"), (_FEN, "厘")):
        if needle not in tail or (rx is _FEN and not ("息" in kw or "利" in kw)):
            continue
        hit = rx.search(tail)
        if not hit or hit.start() > 10:
            continue
        if rx is _PCT_AFTER and text.startswith(_SAFETY, m.end() + hit.end()):
            continue
        found.append((hit.start(), rx, hit))
    if found:
        _, rx, hit = min(found, key=lambda f: f[0])
        end = m.end() + hit.end()
        if rx is _PCT_AFTER:
            a, b = float(hit.group("a")), float(hit.group("b") or hit.group("a"))
            if hit.group("c"):  # 8%+0~15%: fixed part plus a floating part
                c = float(hit.group("c"))
                a, b = a + c, b + float(hit.group("d") or c)
            return _claim(m.start(), end, a, b, period)
        if rx is _PERMILLE:
            return _claim(m.start(), end, _num(hit.group("a")) / 10.0, None, period)
        unit = _FEN_VALUE[period] / (10.0 if hit.group("u") == "厘" else 1.0)
        per_period = (_num(hit.group("a")) + (_num(hit.group("t")) / 10.0 if hit.group("t") else 0.0)) * unit
        return _claim(m.start(), end, per_period, None, period)
    return None


def _amount_claims(text: str) -> list[RawClaim]:
    out = []
    for m in _AMOUNT_RET.finditer(text):
        window = text[max(0, m.start() - 30): m.start()] + "|" + text[m.end(): m.end() + 20]
        p = _PRINCIPAL.search(window)
        if not p:
            continue
        principal = _num(p.group("p")) * {"万": 1e4, "千": 1e3, "百": 1e2, None: 1}[p.group("pu")]
        ret = float(m.group("r")) * (1e4 if m.group("ru") else 1)
        if principal <= 0:
            continue
        per = {"月": "month", "每": "month", "天": "day", "日": "day", "周": "week", "年": "year"}
        period = per.get(m.group("per")[-1], "month") if m.group("per") != "每月" else "month"
        if m.group("per") in ("每天", "每日", "日"):
            period = "day"
        claim = _claim(m.start(), m.end(), ret / principal * 100.0, None, period)
        if claim:
            out.append(claim)
    return out


def _pct_before(text: str):
    """Matches of _PCT_BEFORE, searched only just before a "%…收益" (a literal-prefix
    search) instead of at every digit of the text."""
    last = 0
    for k in _PCT_KW.finditer(text):
        lo = max(last, k.start() - 40)
        for m in _PCT_BEFORE.finditer(text, lo, k.end()):
            if m.end() > k.start():
                last = m.end()
                yield m
                break


def extract_yields(text: str) -> list[RawClaim]:
    """All yield claims in normalised ``text``, in order, without overlaps."""
    claims: list[RawClaim] = []
    figures = [f.start() for f in _FIGURE.finditer(text)]
    for m in _KW.finditer(text):
        # Yield words are common in finance pages, most with no figure in reach:
        # those are skipped with one bisect instead of trying every claim pattern.
        i = bisect_left(figures, m.end())
        if i == len(figures) or figures[i] >= m.end() + _REACH:
            continue
        c = _after_keyword(text, m, _REACH)
        if c:
            claims.append(c)
    for m in _pct_before(text):
        b = m.group("b")
        c = _claim(m.start(), m.end() - len(m.group("kw")), float(m.group("a")), float(b) if b else None, "year")
        if c:
            claims.append(c)
    if "元" in text or "块" in text:
        claims.extend(_amount_claims(text))
    claims.sort(key=lambda c: (c.start, -c.end))
    out: list[RawClaim] = []
    for c in claims:
        if out and c.start < out[-1].end:
            continue
        out.append(c)
    return out
