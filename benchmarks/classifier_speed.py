"""Speed of ``classify()`` against a jieba-segmentation baseline, in one process.

    .venv/bin/python benchmarks/classifier_speed.py [CORPUS.jsonl ...] [--mb 5] [--baseline-mb 1]

Rows of the JSON-lines files (default: the repo's labelled corpus, plus
``../shared/corpus/finnsp_train.jsonl`` when it exists; read in place, never copied) are
split into *risk* rows (non-empty ``labels`` or ``negative`` = 1) and *neutral* rows, and
glued into documents of ~2-4 KB (a crawled page's extracted text) in two mixes:

* **typical**: ~95 % neutral text by characters, a risk row now and then — what the
  crawler mostly sees (web pages are mostly not risk words, even on finance sites);
* **risk-dense**: risk rows only, in turn: the worst case, many hits per page to judge.

For each mix it times ``classify()`` on every document and the baseline on a prefix of
the same documents (``--baseline-mb``): reference jieba (own ``Tokenizer``) segmentation
plus a lookup of each token in the lexicon (a set of all rule phrases), i.e. what a
tokenise-then-match classifier costs before doing any of the real work; for information
also rjieba segmentation. Prints MB/s (wall clock and process CPU time, steadier on a
shared machine) and the ratio classify/baseline measured in this run. By hand only; never
part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from classifiers import Classifier  # noqa: E402
from classifiers.ruleset import load_rules  # noqa: E402

FINNSP = REPO.parent / "shared" / "corpus" / "finnsp_train.jsonl"


def _rows(paths: list[str]) -> tuple[list[str], list[str]]:
    risk, neutral = [], []
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                title, text = row.get("title") or "", row.get("text") or ""
                t = text if title == text or title in text else title + "\n" + text
                if t.strip():
                    (risk if row.get("labels") or row.get("negative") else neutral).append(t)
    return risk, neutral


def _documents(risk: list[str], neutral: list[str], mb: float, risk_share: float | None,
               seed: int = 7) -> tuple[list[str], float]:
    """Documents of ~2-4 KB; ``risk_share`` None cycles the risk rows in order (risk-dense)."""
    rnd = random.Random(seed)
    risky = set(risk)
    docs, cur, total, i, risk_chars, chars = [], [], 0, 0, 0, 0
    while total < mb * 1e6:
        if risk_share is None:
            t = risk[i % len(risk)]
        else:
            chars_so_far = chars + sum(len(x) for x in cur)
            want_risk = risk_chars < risk_share * chars_so_far and rnd.random() < 0.5
            t = rnd.choice(risk if want_risk else neutral)
        i += 1
        if t in risky:
            risk_chars += len(t)
        cur.append(t)
        if sum(len(x) for x in cur) > 800 + (i % 3) * 400:
            doc = "\n".join(cur)
            docs.append(doc)
            chars += sum(len(x) for x in cur)
            total += len(doc.encode("utf-8"))
            cur = []
    return docs, risk_chars / max(1, chars)


def _rate(fn, docs) -> tuple[float, float]:
    """(MB/s by wall clock, MB/s by this process's CPU time)."""
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    w0, c0 = time.perf_counter(), time.process_time()
    for d in docs:
        fn(d)
    return nbytes / 1e6 / (time.perf_counter() - w0), nbytes / 1e6 / (time.process_time() - c0)


def _prefix(docs: list[str], mb: float) -> list[str]:
    out, total = [], 0
    for d in docs:
        if total >= mb * 1e6:
            break
        out.append(d)
        total += len(d.encode("utf-8"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="*")
    ap.add_argument("--mb", type=float, default=5.0, help="MB of text per mix (default 5)")
    ap.add_argument("--baseline-mb", type=float, default=1.0, help="MB timed for the baselines (default 1)")
    ap.add_argument("--typical-risk", type=float, default=0.05, help="risk share of the typical mix")
    args = ap.parse_args()
    paths = args.corpus or [str(REPO / "tests/data/classifier_corpus.jsonl")] + (
        [str(FINNSP)] if FINNSP.exists() else [])
    risk, neutral = _rows(paths)
    print(f"rows: {len(risk)} risk, {len(neutral)} neutral from {', '.join(paths)}")

    t0 = time.perf_counter()
    clf = Classifier()
    clf.classify("预热")
    print(f"Classifier() built in {time.perf_counter() - t0:.3f} s")

    import jieba
    import rjieba

    logging.getLogger("jieba").setLevel(logging.CRITICAL)
    lexicon = {t for r in load_rules().rules for t in r.phrases}
    tok = jieba.Tokenizer()
    tok.tmp_dir = "/nonexistent-finpatrol-bench"  # no cache file written
    tok.initialize()
    for w in lexicon:
        tok.add_word(w)
    rj = rjieba.Jieba()
    for w in lexicon:
        rj.add_word(w, None, None)

    def baseline(d: str) -> int:
        return sum(1 for t in tok.cut(d) if t in lexicon)

    for name, share in (("typical", args.typical_risk), ("risk-dense", None)):
        docs, real_share = _documents(risk, neutral, args.mb, share)
        nbytes = sum(len(d.encode("utf-8")) for d in docs)
        hits = sum(len(clf.classify(d).findings) for d in docs[:200]) / min(200, len(docs))
        print(f"\n== {name}: {len(docs)} documents, {nbytes / 1e6:.2f} MB UTF-8, "
              f"risk rows {real_share:.0%} of characters, {hits:.1f} findings per document")
        ours = _rate(clf.classify, docs)
        base = _rate(baseline, _prefix(docs, args.baseline_mb))
        rjs = _rate(lambda d: rj.cut(d, True), _prefix(docs, args.baseline_mb))
        print(f"{'':26} {'wall MB/s':>10} {'cpu MB/s':>10}")
        print(f"{'classify()':26} {ours[0]:10.2f} {ours[1]:10.2f}")
        print(f"{'baseline jieba + lookup':26} {base[0]:10.2f} {base[1]:10.2f}")
        print(f"{'ratio classify/baseline':26} {ours[0] / base[0]:9.1f}x {ours[1] / base[1]:9.1f}x")
        print(f"{'rjieba segmentation only':26} {rjs[0]:10.2f} {rjs[1]:10.2f}")


if __name__ == "__main__":
    main()
