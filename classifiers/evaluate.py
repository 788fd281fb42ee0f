"""Evaluate the classifier on a labelled JSON-lines corpus (run by hand or by the gate test).

    python -m classifiers.evaluate CORPUS.jsonl [--ceiling 10] [--errors N]
    python -m classifiers.evaluate --finnsp finnsp_train.jsonl

Default mode reads objects with ``text`` and ``labels`` (and optional ``title``, ``kind``:
``kind`` values outside the classifier's set, e.g. ``other``, are passed as None) and
prints precision, recall and F1 per category, micro-F1 over all and over the promotional
categories, and the false-positive rate on items with no label (any label predicted on
an unlabelled item is a false positive). ``--finnsp`` reads FinNSP rows (``title``,
``text``, ``negative``) and scores "the verdict has one of collapse_signal,
mass_incident, illegal_fundraising, fund_pool, self_financing" against ``negative``.
Nothing is written; the corpus path is an argument so dev corpora stay outside the repo.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field

from .context import KINDS
from .engine import Classifier
from .taxonomy import CATEGORIES, PROMOTIONAL

logger = logging.getLogger(__name__)

FINNSP_SET = frozenset({"collapse_signal", "mass_incident", "illegal_fundraising", "fund_pool", "self_financing"})


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def prf(self) -> tuple[float, float, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class Report:
    per_category: dict[str, Counts] = field(default_factory=lambda: {c: Counts() for c in CATEGORIES})
    items: int = 0
    unlabelled: int = 0
    unlabelled_fp: int = 0
    errors: list[tuple[str, list, list]] = field(default_factory=list)

    def micro(self, cats) -> tuple[float, float, float]:
        total = Counts()
        for c in cats:
            k = self.per_category[c]
            total.tp, total.fp, total.fn = total.tp + k.tp, total.fp + k.fp, total.fn + k.fn
        return total.prf()

    @property
    def fp_rate(self) -> float:
        return self.unlabelled_fp / self.unlabelled if self.unlabelled else 0.0


def _rows(path: str):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def evaluate(path: str, classifier: Classifier | None = None) -> Report:
    clf = classifier or Classifier()
    rep = Report()
    for row in _rows(path):
        kind = row.get("kind") if row.get("kind") in KINDS else None
        v = clf.classify(row.get("text") or "", title=row.get("title") or "", kind=kind)
        gold, pred = set(row.get("labels") or ()), set(v.labels)
        rep.items += 1
        if not gold:
            rep.unlabelled += 1
            rep.unlabelled_fp += bool(pred)
        for c in CATEGORIES:
            k = rep.per_category[c]
            k.tp += c in gold and c in pred
            k.fp += c in pred and c not in gold
            k.fn += c in gold and c not in pred
        if gold != pred:
            rep.errors.append((row.get("id", "?"), sorted(gold), sorted(pred)))
    return rep


def evaluate_finnsp(path: str, classifier: Classifier | None = None) -> tuple[Counts, list]:
    clf = classifier or Classifier()
    k, errors = Counts(), []
    for row in _rows(path):
        title, text = row.get("title") or "", row.get("text") or ""
        v = clf.classify(text, title=title)
        pred, gold = bool(FINNSP_SET & set(v.labels)), bool(row.get("negative"))
        k.tp += pred and gold
        k.fp += pred and not gold
        k.fn += gold and not pred
        if pred != gold:
            errors.append((row.get("id"), gold, sorted(v.labels), (title + " " + text)[:160]))
    return k, errors


def format_report(rep: Report) -> str:
    lines = [f"{'category':22} {'P':>6} {'R':>6} {'F1':>6} {'tp':>4} {'fp':>4} {'fn':>4}"]
    for c, k in rep.per_category.items():
        p, r, f = k.prf()
        lines.append(f"{c:22} {p:6.3f} {r:6.3f} {f:6.3f} {k.tp:4d} {k.fp:4d} {k.fn:4d}")
    for name, cats in (("micro (all)", CATEGORIES), ("micro (promotional)", PROMOTIONAL)):
        p, r, f = rep.micro(cats)
        lines.append(f"{name:22} {p:6.3f} {r:6.3f} {f:6.3f}")
    lines.append(f"items {rep.items}; unlabelled {rep.unlabelled}; "
                 f"false-positive rate on unlabelled {rep.fp_rate:.3f} ({rep.unlabelled_fp})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m classifiers.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--finnsp", action="store_true", help="FinNSP mode: score the negative flag")
    ap.add_argument("--ceiling", type=float, default=10.0, help="yield ceiling, annual %% (default 10)")
    ap.add_argument("--rules", action="append", default=[], help="extra rule file (repeatable)")
    ap.add_argument("--errors", type=int, default=0, help="print up to N misclassified items")
    args = ap.parse_args(argv)
    clf = Classifier(args.rules, yield_ceiling=args.ceiling)
    if args.finnsp:
        k, errors = evaluate_finnsp(args.corpus, clf)
        p, r, f = k.prf()
        print(f"FinNSP negative: precision {p:.3f} recall {r:.3f} F1 {f:.3f} (tp {k.tp} fp {k.fp} fn {k.fn})")
        for e in errors[: args.errors]:
            print("  ", json.dumps(e, ensure_ascii=False))
        return 0
    rep = evaluate(args.corpus, clf)
    print(format_report(rep))
    for e in rep.errors[: args.errors]:
        print("  ", json.dumps(e, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
