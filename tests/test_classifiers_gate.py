"""Evaluation gate (trafilatura style): quality on the labelled corpus must not drop.

Floors sit a little under the measured values so that a rule change that loses quality
fails here; raise them when the rules improve. The corpus is hand-written for this repo
(tests/data/classifier_corpus.jsonl); the shared dev corpora stay outside the repo and are
measured by hand with ``python -m classifiers.evaluate``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.evaluate import evaluate
from classifiers.taxonomy import CATEGORIES, PROMOTIONAL

CORPUS = Path(__file__).resolve().parent / "data" / "classifier_corpus.jsonl"

MICRO_F1_ALL = 0.93
MICRO_F1_PROMOTIONAL = 0.94
MAX_FP_RATE_UNLABELLED = 0.06
CATEGORY_F1_FLOOR = 0.75


@pytest.fixture(scope="module")
def report():
    return evaluate(str(CORPUS))


def test_corpus_is_big_and_covers_every_category(report):
    assert report.items >= 410
    assert report.unlabelled >= 100
    for cat, k in report.per_category.items():
        assert k.tp + k.fn >= 5, f"{cat} has too few gold items"


def test_micro_f1_floors(report):
    assert report.micro(CATEGORIES)[2] >= MICRO_F1_ALL
    assert report.micro(PROMOTIONAL)[2] >= MICRO_F1_PROMOTIONAL


def test_false_positive_rate_on_unlabelled(report):
    assert report.fp_rate <= MAX_FP_RATE_UNLABELLED


@pytest.mark.parametrize("cat", list(CATEGORIES))
def test_per_category_f1_floor(report, cat):
    p, r, f = report.per_category[cat].prf()
    assert f >= CATEGORY_F1_FLOOR, (cat, p, r, f)
