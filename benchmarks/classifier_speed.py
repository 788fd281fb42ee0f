"""Speed of ``classify()`` against a jieba-segmentation baseline, in one process.

    .venv/bin/python benchmarks/classifier_speed.py [CORPUS.jsonl ...] [--mb 5]

Builds at least ``--mb`` MB (UTF-8) of mixed Chinese text by cycling the texts of the
given JSON-lines files (default: the repo's labelled corpus), in documents of ~2-4 KB,
then times:

* ``classify()`` on every document (normalisation, Aho-Corasick, context, yields);
* the baseline: segment every document with reference jieba (own ``Tokenizer``) and look
  each token up in the same lexicon (a set of all rule phrases), i.e. what a tokenise-
  then-match classifier would cost before doing any of the real work;
* for information, rjieba segmentation of the same text (the tokenizer backend).

Prints MB/s of each (wall clock and process CPU time) and the ratio. Run by hand; never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from classifiers import Classifier  # noqa: E402
from classifiers.ruleset import load_rules  # noqa: E402


def _documents(paths: list[str], mb: float) -> list[str]:
    texts = []
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            texts += [t for t in ((json.loads(x).get("title") or "") + (json.loads(x).get("text") or "")
                                  for x in fh if x.strip()) if t]
    docs, cur, total, i = [], [], 0, 0
    while total < mb * 1e6:
        t = texts[i % len(texts)]
        i += 1
        cur.append(t)
        if sum(len(x) for x in cur) > 800 + (i % 3) * 400:
            doc = "\n".join(cur)
            docs.append(doc)
            total += len(doc.encode("utf-8"))
            cur = []
    return docs


def _rate(fn, docs, nbytes) -> tuple[float, float]:
    """(MB/s by wall clock, MB/s by this process's CPU time: steadier on a shared machine)."""
    w0, c0 = time.perf_counter(), time.process_time()
    for d in docs:
        fn(d)
    return nbytes / 1e6 / (time.perf_counter() - w0), nbytes / 1e6 / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="*", default=[str(REPO / "tests/data/classifier_corpus.jsonl")])
    ap.add_argument("--mb", type=float, default=5.0)
    args = ap.parse_args()
    docs = _documents(args.corpus, args.mb)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    print(f"{len(docs)} documents, {nbytes / 1e6:.2f} MB UTF-8")

    clf = Classifier()
    clf.classify("预热")
    ours = _rate(lambda d: clf.classify(d), docs, nbytes)

    import jieba
    import rjieba

    logging.getLogger("jieba").setLevel(logging.CRITICAL)
    lexicon = {t for r in load_rules().rules for t in r.phrases}
    tok = jieba.Tokenizer()
    tok.tmp_dir = "/nonexistent-finpatrol-bench"  # no cache file written
    tok.initialize()
    for w in lexicon:
        tok.add_word(w)

    def baseline(d: str) -> int:
        return sum(1 for t in tok.cut(d) if t in lexicon)

    base = _rate(baseline, docs, nbytes)
    rj = rjieba.Jieba()
    for w in lexicon:
        rj.add_word(w, None, None)
    rjs = _rate(lambda d: rj.cut(d, True), docs, nbytes)

    print(f"{'':26} {'wall MB/s':>10} {'cpu MB/s':>10}")
    print(f"{'classify()':26} {ours[0]:10.2f} {ours[1]:10.2f}")
    print(f"{'baseline jieba + lookup':26} {base[0]:10.2f} {base[1]:10.2f}")
    print(f"{'ratio classify/baseline':26} {ours[0] / base[0]:9.1f}x {ours[1] / base[1]:9.1f}x")
    print(f"{'rjieba segmentation only':26} {rjs[0]:10.2f} {rjs[1]:10.2f}")


if __name__ == "__main__":
    main()
