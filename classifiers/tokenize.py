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
"资金池" stay one token, and :func:`add_words` adds more (e.g. target names). Tokens are
lower-cased, and so are the dictionary words (the text is lower-cased before it is cut);
whitespace and punctuation tokens are dropped. Initialised once, lazily, per process,
under a lock.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from functools import lru_cache
from typing import Iterable

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_backend = None  # ("rjieba", Jieba) or ("jieba", Tokenizer)
_pending: list[str] = []
_user_words: set[str] = set()  # words added to this process's dictionary (lexicon, add_words), lower-cased
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
        _user_words.add(w)
        _user_word_sizes.add(len(w))
        if kind == "rjieba":
            tok.add_word(w, None, None)
        else:
            tok.add_word(w)


def _get():
    global _backend
    if _backend is None:
        with _lock:
            if _backend is None:
                backend = _make()
                _add(backend, _lexicon_terms())
                _add(backend, _pending)
                _backend = backend
                logger.debug("tokenizer backend %s ready", backend[0])
    return _backend


def add_words(words: Iterable[str]) -> None:
    """Add words (e.g. institution names) so they are kept as single tokens."""
    words = list(words)
    with _lock:
        if _backend is None:
            _pending.extend(words)
            return
    _add(_backend, words)


_NOT_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=4)
def words(text: str) -> str:
    """The text lower-cased, each run of punctuation, symbols, ``_`` and whitespace one space.

    Tokens are cut from this, and the crawler's text fingerprint hashes it. Cached
    because a worker asks for both on the same page text, and this pass over a long
    page costs about as much as segmenting it.
    """
    return _NOT_WORD.sub(" ", text.lower())


def tokenize(text: str, *, for_index: bool = False) -> list[str]:
    """Lower-cased word tokens, no whitespace or punctuation tokens.

    Queries use jieba's precise mode. ``for_index=True`` uses its search mode,
    which also emits the shorter words inside long ones (保本保息 → 保本, 保息,
    保本保息), so a query for 保本 finds a page that says 保本保息; then come the
    user-dictionary words of 4+ characters inside longer tokens (:func:`_user_words_inside`).
    Punctuation is blanked before segmentation (:func:`words`), which keeps the hot
    path in the Rust backend; what comes back between words is a lone " " token.
    """
    if not text:
        return []
    kind, tok = _get()
    clean = words(text)
    if kind == "rjieba":
        tokens = tok.cut_for_search(clean, True) if for_index else tok.cut(clean, True)
    else:
        tokens = tok.lcut_for_search(clean, HMM=True) if for_index else tok.lcut(clean, HMM=True)
    tokens = [token for token in tokens if token and token != " "]
    if for_index:
        tokens.extend(_user_words_inside([token for token in tokens if len(token) > _LONGEST_GRAM + 1]))
    return tokens


def _user_words_inside(long_tokens: list[str]) -> list[str]:
    """User-dictionary words (lexicon, ``add_words``) of 4+ characters inside longer tokens.

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
