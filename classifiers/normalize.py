"""Text normalisation with an offset map back to the caller's original string.

Matching runs on a normalised copy: full-width digits, letters and number signs folded
to half-width, ASCII upper case folded to lower case, traditional characters folded to
simplified (穩賺不賠 matches 稳赚不赔), line separators unified to ``\\n`` (all 1:1 character
maps, so offsets do not move), then whitespace, control characters, zero-width characters, lone
surrogates, emoji and decoration symbols (★, ※, ♥ …) deleted, so that "保 本 保 息" or
"保★本" still match "保本保息". Deleted runs are recorded so that an offset in the
normalised text maps back to the original in O(log n) (:meth:`Normalized.orig_span`)
without building a per-character table: the hot path stays in C (``str.translate`` and
``re.sub``). Clause boundaries (。！？；, newlines, commas not inside numbers) scope
negation and context cues; the enumeration comma 、 is not a boundary, so "不得自融自保、
承诺保本保息" keeps its 不得 in scope.
"""

from __future__ import annotations

import bisect
import logging
import re
from itertools import accumulate

logger = logging.getLogger(__name__)


# Full-width digits, letters and number signs fold to ASCII; Chinese punctuation (，：！？；（）)
# is left alone (the boundary pattern knows both forms). Only these characters are touched,
# through a regex that finds them, because str.translate over every CJK character was the
# slowest step of classify().
_FOLDED = "０１２３４５６７８９％．～＋－／＃＠＆"
_TABLE = {ord(c): chr(ord(c) - 0xFEE0) for c in _FOLDED}
_TABLE.update({c: chr(c - 0xFEE0 + 32) for c in range(0xFF21, 0xFF3B)})  # Ａ-Ｚ -> a-z
_TABLE.update({c: chr(c - 0xFEE0) for c in range(0xFF41, 0xFF5B)})  # ａ-ｚ -> a-z
_TABLE.update({c: chr(c + 32) for c in range(ord("A"), ord("Z") + 1)})
_TABLE[0x3000] = " "
for _c in ("\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"):
    _TABLE[ord(_c)] = "\n"


class _Traditional:
    """Traditional -> simplified, one character for one, from OpenCC's t2s dictionary, for
    every CJK ideograph it changes: 財 -> 财, and also 於 -> 于, 後 -> 后, which are in GB2312
    (the simplified set) too and are folded only in a text that is traditional (:func:`simplify`).
    Built on first use (some 25 ms): a command that never reads a text does not pay for it."""

    def __init__(self):
        import opencc

        ideographs = [chr(c) for c in (*range(0x3400, 0x4DC0), *range(0x4E00, 0xA000))]
        simplified = opencc.OpenCC("t2s").convert("\n".join(ideographs)).split("\n")
        if len(simplified) != len(ideographs):  # OpenCC joined or split lines: every verdict would differ
            raise RuntimeError(f"OpenCC t2s gave {len(simplified)} lines for {len(ideographs)} characters")
        self.table = {ord(t): s for t, s in zip(ideographs, simplified) if len(s) == 1 and s != t}
        # A character only traditional text uses makes a text traditional. Searching for one
        # character of a class takes re's fast path: 4x faster than for a run of them.
        self.marker = re.compile("[" + "".join(chr(c) for c in sorted(self.table) if not _in_gb2312(chr(c))) + "]")
        self.runs = re.compile("[" + "".join(map(chr, sorted(self.table))) + "]+")

    def _run(self, m: re.Match) -> str:
        return m.group().translate(self.table)

    def simplify(self, text: str) -> str:
        return self.runs.sub(self._run, text) if self.marker.search(text) else text


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


_traditional: _Traditional | None = None


def simplify(text: str) -> str:
    """``text`` folded to simplified characters, one for one (offsets stay), when it holds a
    character only traditional text uses (個, 財): then its 於, 後 and 乾 are folded too, so
    不屬於 reads 不属于. A simplified text is returned as it is, its 著名 and 乾坤 untouched.
    :func:`normalize` folds so before matching, and search terms are cut from this."""
    global _traditional
    if _traditional is None:
        _traditional = _Traditional()
    return _traditional.simplify(text)


_FOLD_CLASS = "[" + "".join(re.escape(chr(c)) for c in sorted(_TABLE)) + "]"
_FOLD_CHAR, _FOLD = re.compile(_FOLD_CLASS), re.compile(_FOLD_CLASS + "+")


def _fold(m: re.Match) -> str:
    return m.group().translate(_TABLE)

_NOISE = re.compile(
    "[\x00-\x09\x0e-\x1f\x7f \t\u00a0\u1680\u2000-\u200f\u202a-\u202f\u205f-\u206f"
    "\ufeff\ufe0e\ufe0f\ud800-\udfff\u2600-\u27bf\u2b00-\u2bff\u25a0-\u25ff\u2190-\u21ff"
    "\u3010\u3011\u3016\u3017\u300e\u300f\u300c\u300d\"'*`^|\\\\"
    "\u201c\u201d\u2018\u2019\u00b7\u2022\u203b\u2605\u2606"
    "\U0001f000-\U0001faff\U000e0000-\U000e007f]+"
)

_NOISE_SPLIT = re.compile("(" + _NOISE.pattern + ")")
_BOUNDARY = re.compile(r"[。！？；!?;\n]|(?<!\d)[，,]|[，,](?!\d)|\.(?!\d)|…")


class Normalized:
    """A normalised string plus what is needed to map offsets back (built lazily: most
    texts have no finding, so the deleted-run table is only computed when an offset is
    first mapped)."""

    __slots__ = ("text", "_pieces", "_runs")

    def __init__(self, text: str, pieces: list[str] | None = None):
        self.text = text
        self._pieces = pieces  # kept, deleted, kept, ... pieces of the folded text, if any deleted
        self._runs: tuple[tuple[int, ...], tuple[int, ...]] | None = None if pieces else ((), ())

    def __eq__(self, other) -> bool:
        return isinstance(other, Normalized) and other.text == self.text and other._map() == self._map()

    __hash__ = None  # type: ignore[assignment]

    def _map(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if self._runs is None:  # kept pieces and deleted runs alternate; sums stay in C
            pieces = self._pieces
            self._runs = (tuple(accumulate(map(len, pieces[0:-1:2]))),
                          tuple(accumulate(map(len, pieces[1::2]))))
        return self._runs

    def orig_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised [start, end) span to the original string."""
        run_pos, run_cum = self._runs if self._runs is not None else self._map()
        if not run_pos:
            return start, end
        i = bisect.bisect_right(run_pos, start)
        j = bisect.bisect_left(run_pos, end)
        s = start + (run_cum[i - 1] if i else 0)
        e = end + (run_cum[j - 1] if j else 0)
        return s, max(s, e)

    def clause(self, start: int, end: int, reach: int = 40) -> tuple[int, int]:
        """The clause around [start, end): from just after the last boundary at or before
        ``start`` to the first boundary at or after ``end``, at most ``reach`` characters
        either side. Boundaries are single characters whose look-arounds see one
        neighbour, so they are searched only in that neighbourhood (plus one character):
        splitting a whole long page at every comma cost more than classifying it."""
        text = self.text
        lo = max(0, start - reach)
        for m in _BOUNDARY.finditer(text, lo, start + 2):
            if m.start() <= start:
                lo = m.start() + 1
        m = _BOUNDARY.search(text, end, end + reach + 1)
        hi = m.start() if m and m.start() < end + reach else min(len(text), end + reach)
        return lo, max(hi, end)

    def sentence_end(self, pos: int) -> int:
        """Offset of the first boundary at or after ``pos``."""
        m = _BOUNDARY.search(self.text, pos)
        return m.start() if m else len(self.text)


def normalize(original: str) -> Normalized:
    """Fold and clean ``original``; never raises on any ``str``."""
    folded = simplify(original)
    folded = _FOLD.sub(_fold, folded) if _FOLD_CHAR.search(folded) else folded
    pieces = _NOISE_SPLIT.split(folded)
    if len(pieces) == 1:
        return Normalized(folded)
    return Normalized("".join(pieces[0::2]), pieces)


def normalize_term(term: str) -> str:
    """Normalise a lexicon term exactly as texts are normalised."""
    return normalize(term).text
