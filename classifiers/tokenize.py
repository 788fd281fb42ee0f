"""Search-index tokens: the one module that imports a jieba implementation.

Why two backends: ``rjieba`` (bindings of jieba-rs: same dictionary, token-for-token the
same output as jieba's default mode) is the default because it is much faster (see
``benchmarks/classifier_speed.py``) and, more importantly, writes nothing: reference
``jieba.Tokenizer`` dumps a model cache file into the temp directory on its first
``initialize()``, and this library must not write files. When rjieba is unavailable, or
``FINPATROL_TOKENIZER=jieba`` asks for the reference, we build our own
``jieba.Tokenizer`` whose ``tmp_dir`` is a directory that does not exist, so jieba's
cache dump fails inside jieba (which catches the error; we silence its logger meanwhile)
and nothing is written; loading then costs ~1.5 s per process instead of ~0.4 s, which
is acceptable for the fallback.
``enable_paddle`` is never called (it would run pip).

Both backends get the lexicon's phrases as a user dictionary, so "保本保息" or
"资金池" stay one token. Nothing else is ever added: the same text must give the same
tokens in every process (crawl workers, the main process, serve, the CLI cutting a query),
or a query would miss pages indexed elsewhere. Names are found by :func:`word_edges`
instead. Tokens are lower-cased, and so are the dictionary words (the text is lower-cased
before it is cut); whitespace and punctuation tokens are dropped. Initialised once,
lazily, per process, under a lock.

Search terms (:func:`index_terms` for pages, :func:`query_tokens` for queries) are cut
from the text folded as :func:`fold` says (ＰＯＳ机 and pos机, １８ and 18 are the same
term); :func:`tokenize` without ``for_index`` cuts the text as written, for callers that
compare tokens with names as configured. :func:`words` is not folded: the crawler's text
fingerprint hashes it and folds on its own.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import unicodedata
from functools import lru_cache
from typing import Iterable

from classifiers.normalize import simplify

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_backend = None  # ("rjieba", Jieba) or ("jieba", Tokenizer)
_user_words: set[str] = set()  # the lexicon's words added to the dictionary, lower-cased
_user_word_sizes: set[int] = set()  # their lengths: the only substring lengths worth looking up
_LONGEST_GRAM = 3  # jieba's search mode adds the 2- and 3-character dictionary words inside a token
_NO_CACHE_DIR = os.path.join(os.sep, "nonexistent-finpatrol-jieba-cache")


def _lexicon_terms() -> list[str]:
    from .ruleset import load_rules  # local import: tokenize must not need the engine

    terms = {t for r in load_rules().rules for t in r.phrases if len(t) >= 2 and r.scope != "absorb"}
    return sorted(terms)


def _make(name: str | None = None):
    name = name or os.environ.get("FINPATROL_TOKENIZER", "rjieba")
    if name == "rjieba":
        try:
            import rjieba

            return "rjieba", rjieba.Jieba()
        except ImportError:
            logger.warning("rjieba unavailable; falling back to jieba")
    import jieba

    jlog = logging.getLogger("jieba")
    tok = jieba.Tokenizer()
    tok.tmp_dir = _NO_CACHE_DIR  # cache dump fails inside jieba and is skipped: no file written
    jlog.setLevel(logging.CRITICAL)  # silence jieba's own handler, incl. the expected dump failure
    try:
        tok.initialize()
    finally:
        jlog.setLevel(logging.WARNING)
    return "jieba", tok


def _add(backend, words: Iterable[str]) -> None:
    kind, tok = backend
    for w in words:
        w = (w or "").strip().lower()
        if not w:
            continue
        folded = fold(w).strip()  # for the folded text search terms are cut from: ＸＹ金服 adds xy金服 too
        for form in (w, folded) if folded != w and folded and " " not in folded else (w,):
            _user_words.add(form)
            _user_word_sizes.add(len(form))
            if kind == "rjieba":
                tok.add_word(form, None, None)
            else:
                tok.add_word(form)


def _get():
    global _backend
    if _backend is None:
        with _lock:
            if _backend is None:
                backend = _make()
                _add(backend, _lexicon_terms())
                _backend = backend
                logger.debug("tokenizer backend %s ready", backend[0])
    return _backend


_NOT_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=4)
def words(text: str) -> str:
    """The text lower-cased, each run of punctuation, symbols, ``_`` and whitespace one space.

    Tokens are cut from this, and the crawler's text fingerprint hashes it. Cached
    because a worker asks for both on the same page text, and this pass over a long
    page costs about as much as segmenting it.
    """
    return _NOT_WORD.sub(" ", text.lower())


# Blocks whose letters and digits have compatibility forms (full-width Ａ１, half-width ｶ,
# ①, ⑴, ², Ⅱ, ﬁ, compatibility ideographs …): runs of them are NFKC-normalised on their own,
# so a page with a few of them does not pay for normalising all of its text.
_COMPAT_BLOCKS = (
    "\u00aa-\u00be\u0132-\u0149\u2070-\u209f\u2100-\u218f\u2460-\u24ff\u2f00-\u2fdf\u3131-\u318f"
    "\u3192-\u319f\u3200-\u33ff\uf900-\ufaff\ufb00-\ufb4f\ufe70-\ufeff\uff00-\uffef"
    "\U0001d400-\U0001d7ff\U0001f100-\U0001f1ff\U0002f800-\U0002fa1f"
)
_COMPAT = re.compile(f"[{_COMPAT_BLOCKS}]+")
_COMPAT_CHAR = re.compile(f"[{_COMPAT_BLOCKS}]")


@lru_cache(maxsize=1024)
def _folded_run(run: str) -> str:
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", run).lower())


def _fold_run(m: re.Match) -> str:
    return _folded_run(m.group())  # cached: a page repeats its few full-width words


def fold(clean: str) -> str:
    """``clean`` (what :func:`words` gives) with letters and digits NFKC-normalised and lower-cased,
    and traditional characters simplified as the classifier simplifies them (聚財寶 → 聚财宝).

    Full-width ＰＯＳ１８ becomes pos18, ① becomes 1, ⑴ becomes " 1 " (what NFKC makes of
    punctuation is blanked, as :func:`words` blanks it). Search terms are cut from this,
    so a page and a query that write a word in different widths share its term. Cheap
    when there is nothing to fold (one check in C, ~40 µs for 30,000 characters); else
    only the runs of compatibility characters are normalised, and the whole text only
    when something outside those blocks (a decomposed accent) is still not normal.
    """
    clean = simplify(clean)
    if unicodedata.is_normalized("NFKC", clean):
        return clean
    folded = _COMPAT.sub(_fold_run, clean)
    if not unicodedata.is_normalized("NFKC", folded):
        folded = _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", folded)).lower()
    return folded


def _fold_char(m: re.Match) -> str:
    normal = unicodedata.normalize("NFKC", m.group())
    return normal if len(normal) == 1 else m.group()


def fold_chars(text: str) -> str:
    """``text`` with each compatibility character whose NFKC form is one character replaced
    by it (Ａ → A, １ → 1, ％ → %) and traditional characters simplified, so offsets in the
    result are offsets in ``text``: for finding a folded term in a page's own words (search snippets)."""
    return simplify(_COMPAT_CHAR.sub(_fold_char, text))


def _cut(clean: str, for_index: bool) -> list[str]:
    kind, tok = _get()
    if kind == "rjieba":
        tokens = tok.cut_for_search(clean, True) if for_index else tok.cut(clean, True)
    else:
        tokens = tok.lcut_for_search(clean, HMM=True) if for_index else tok.lcut(clean, HMM=True)
    return [token for token in tokens if token and token != " "]


def tokenize(text: str, *, for_index: bool = False) -> list[str]:
    """Lower-cased word tokens, no whitespace or punctuation tokens.

    Without ``for_index``: jieba's precise mode over the text as written (lower-cased).
    ``for_index=True`` is what the search index stores: the text is folded (:func:`fold`)
    and cut in jieba's search mode, which also emits the shorter words inside long ones
    (保本保息 → 保本, 保息, 保本保息), so a query for 保本 finds a page that says 保本保息;
    then come the user-dictionary words of 4+ characters inside longer tokens
    (:func:`_user_words_inside`) and the letter and digit runs inside tokens that hold
    other characters too (:func:`_latin_runs_inside`: pos in pos机办理).
    Punctuation is blanked before segmentation (:func:`words`), which keeps the hot
    path in the Rust backend; what comes back between words is a lone " " token.
    """
    if not text:
        return []
    if not for_index:
        return _cut(words(text), False)
    tokens = _cut(fold(words(text)), True)
    runs = _latin_runs_inside(tokens)  # not of the user words inside: those repeat their token's runs
    tokens.extend(_user_words_inside([token for token in tokens if len(token) > _LONGEST_GRAM + 1]))
    tokens.extend(runs)
    return tokens


def word_edges(clean: str) -> set[int]:
    """Offsets in ``clean`` (what :func:`words` gives) where a word begins or ends, the text cut
    with the dictionary alone (no HMM guess for unknown characters).

    For finding a name (鑫盈宝) as a whole word without adding it to the dictionary: it counts
    where both its ends are edges, so 金服 is not found in 金服务 (服务 is a word), while an
    unknown name is, since without the guess its characters are cut one by one (with it,
    在鑫盈宝 is cut 在鑫/盈宝).
    """
    kind, tok = _get()
    pieces = tok.cut(clean, False) if kind == "rjieba" else tok.lcut(clean, HMM=False)
    edges, at = {0}, 0
    for piece in pieces:
        at += len(piece)
        edges.add(at)
    return edges


def query_tokens(query: str) -> list[str]:
    """A search query's words: jieba's precise mode over the folded query.

    Each is a term of the index of a page that says the query (the search mode that
    cuts pages emits every precise-mode word too), so pages can be asked for all of them.
    """
    return _cut(fold(words(query)), False) if query else []


_ASCII_RUN = re.compile(r"[0-9a-z]+")


def _latin_runs_inside(tokens: list[str]) -> list[str]:
    """Runs of ASCII letters and digits inside tokens that also hold other characters.

    jieba keeps a dictionary word such as pos机办理, 维权qq群 or 突破200人 whole, so
    without these a query for pos, qq or 200 (which jieba cuts as one word: it keeps a
    run of letters and digits together) misses the page. Each distinct token gives its
    runs once: the page is found, and a token repeated on the page does not repeat them
    (looking at every occurrence cost twice as much, ~0.8 ms for 30,000 characters).
    One scan in C of the distinct tokens joined; only runs are looked at in Python.
    """
    distinct = " ".join(dict.fromkeys(tokens))
    end = len(distinct)
    return [m.group() for m in _ASCII_RUN.finditer(distinct)
            if (m.start() and distinct[m.start() - 1] != " ") or (m.end() < end and distinct[m.end()] != " ")]


def _user_words_inside(long_tokens: list[str]) -> list[str]:
    """User-dictionary words (the lexicon's) of 4+ characters inside longer tokens.

    Search mode does not emit them: 办理pos机 and pos机办理 are lexicon phrases, so a
    page saying "pos机办理" would otherwise be missed by a query for "pos机". Only the
    lengths of such words are looked up, so a hostile run of thousands of letters (one
    token) costs time in proportion to its length.
    """
    sizes = sorted(size for size in _user_word_sizes if size > _LONGEST_GRAM)
    found = []
    for token in long_tokens:
        for size in sizes:
            if size >= len(token):
                break
            found.extend(w for w in (token[i:i + size] for i in range(len(token) - size + 1)) if w in _user_words)
    return found


def index_terms(text: str) -> str:
    """What a search index stores for a text: its index tokens (``for_index``) joined by spaces."""
    return " ".join(tokenize(text, for_index=True))


def backend_name() -> str:
    """``"rjieba"`` or ``"jieba"``: which backend this process uses."""
    return _get()[0]
