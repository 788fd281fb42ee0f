"""Search-index tokenizer: lexicon terms stay whole, punctuation dropped, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from classifiers.tokenize import backend_name, index_terms, tokenize

REPO = Path(__file__).resolve().parent.parent


def test_tokens_keep_lexicon_terms_and_drop_punctuation():
    toks = tokenize("承诺保本保息，年化收益率高达18%！ P2P 平台")
    assert "保本保息" in toks
    assert "p2p" in toks
    assert not any(t in ("，", "！", " ", "") for t in toks)
    assert tokenize("") == []


def test_index_terms_are_search_mode_words_separated_by_single_spaces():
    text = "  承诺保本保息，\t年化收益率高达18%！\n\n P2P_平台 "
    terms = index_terms(text)
    assert terms.split(" ") == tokenize(text, for_index=True), "no empty or doubled separators"
    assert {"保本", "保息", "保本保息", "p2p", "平台"} <= set(terms.split(" "))


def test_index_terms_hold_lexicon_words_inside_longer_lexicon_words():
    # pos机办理 is one lexicon phrase; search mode alone adds only 2- and 3-character inner words
    assert "pos机办理" in tokenize("个人POS机办理")
    assert "pos机" not in tokenize("个人POS机办理"), "precise mode, as queries use, keeps it whole"
    assert {"pos机办理", "pos机", "办理"} <= set(index_terms("个人POS机办理").split(" "))
    assert "四方支付" in index_terms("第四方支付").split(" "), "a 4-character word inside a 5-character token"


def test_a_hostile_run_of_letters_does_not_stall_the_index_terms():
    # jieba keeps a run of letters as one token; looking up every substring of it
    # would take hours here (the suite's timeout fails the test), not 50 ms
    assert index_terms("q" * 50_000 + "保本保息").split(" ")[0] == "q" * 50_000


def test_jieba_reference_backend_writes_no_cache_file(tmp_path):
    code = ("from classifiers.tokenize import tokenize, backend_name;"
            "print(backend_name(), '/'.join(tokenize('小资钱包承诺保本保息')))")
    env = os.environ | {"PYTHONPATH": str(REPO), "FINPATROL_TOKENIZER": "jieba", "TMPDIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("jieba ")
    assert "保本保息" in r.stdout
    assert list(tmp_path.iterdir()) == []
    assert "Dump cache" not in r.stderr


def test_default_backend_matches_reference_tokens():
    assert backend_name() in ("rjieba", "jieba")
    text = "近日，某网贷平台全面逾期，投资人纷纷维权"
    code = f"from classifiers.tokenize import tokenize; print('/'.join(tokenize({text!r})))"
    env = os.environ | {"PYTHONPATH": str(REPO), "FINPATROL_TOKENIZER": "jieba", "TMPDIR": tempfile.mkdtemp()}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "/".join(tokenize(text))


def test_index_terms_fold_full_width_letters_and_digits_as_the_classifier_does():
    assert index_terms("ＰＯＳ机办理").split(" ") == index_terms("POS机办理").split(" ")
    assert "pos机" in index_terms("个人ＰＯＳ机").split(" ")
    assert "18" in index_terms("年化收益率高达１８％").split(" ")
    assert {"月息", "2"} <= set(index_terms("月息２分").split(" "))
    assert "1" in index_terms("⑴保本保息").split(" "), "what NFKC makes punctuation of is blanked"
    assert not any("ｐ" in t or "１" in t for t in index_terms("ＰＯＳ１８").split(" "))


def test_queries_are_folded_like_pages_but_plain_tokens_and_words_are_not():
    from classifiers.tokenize import query_tokens, words

    assert query_tokens("１８％") == query_tokens("18%") == ["18"]
    assert query_tokens("ＰＯＳ机") == ["pos机"]
    assert query_tokens("") == []
    # words() feeds crawler.extract.fingerprint, which folds on its own: it stays as it was
    assert words("个人ＰＯＳ机，１８％") == "个人ｐｏｓ机 １８ "
    assert tokenize("个人ＰＯＳ机") == ["个人", "ｐ", "ｏ", "ｓ", "机"], "as written: a caller folds first (attribution uses fold_chars)"


def test_the_text_fingerprint_is_what_it_was_before_search_terms_were_folded():
    from crawler.extract import fingerprint

    # pinned: SHA-256 of "年化收益率高达18个人pos机"; a change here would mark every stored
    # page as changed text after an upgrade
    assert fingerprint("年化收益率高达１８％，个人ＰＯＳ机") == fingerprint("年化收益率高达18%, 个人POS机") == (
        "3f3f73ecab2140e1d6cad45230abacd08b8017902f10ca84f9a36a881f5d1a94")


def test_letter_and_digit_runs_inside_longer_tokens_are_terms_of_their_own():
    terms = index_terms("个人POS机办理，维权qq群，会员突破200人").split(" ")
    assert {"pos", "qq", "200", "pos机办理", "pos机", "维权qq群", "突破200人"} <= set(terms)
    assert terms.count("pos") == 1, "once per token, not again for the lexicon words inside it"
    assert index_terms("P2P平台 abc123").split(" ").count("p2p") == 1, "a token of its own already"
    assert "abc" not in index_terms("abc123").split(" "), "a run of letters and digits stays one word, as queries cut it"
    assert tokenize("个人POS机办理") == ["个人", "pos机办理"], "queries keep precise mode"

