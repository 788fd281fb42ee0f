"""Worker processes for CPU-bound page work: extraction, search tokens, classification.

They are pure Python and hold the GIL, so threads would not use the second core;
worker processes do. Workers are started with ``forkserver`` (forking a process that
runs Twisted and asyncio is unsafe) and import trafilatura and the classifier once each.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

_WARM_UP_PAGE = "<html><head><title>预热</title></head><body><p>平台承诺保本保息，年化收益率8%。</p></body></html>".encode()


def start_pool(workers: int, rule_files: tuple[str, ...], ceiling: float) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes started with forkserver, every one warmed up at once.

    A pool starts a process for each job that finds no idle one, and a worker imports
    trafilatura and loads the classifier at its own first page: half a second each, during
    which the first pages of the patrol wait. Started here, while the first pages are fetched.
    """
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=warm_up, initargs=(rule_files, ceiling))
    for _ in range(workers):  # a forkserver pool starts one process per job that finds none idle
        pool.submit(int)
    return pool


def warm_up(rule_files: tuple[str, ...], ceiling: float) -> None:
    """Run one small page through the whole job, so every import and table is loaded."""
    try:
        analyse_job(_WARM_UP_PAGE, "utf-8", "http://warm-up.invalid/", None, None, rule_files, ceiling)
    except Exception:  # never break the pool: the first real page reports the error with its URL
        logger.warning("worker warm-up failed", exc_info=True)


async def run(pool: ProcessPoolExecutor, fn, *args):
    return await asyncio.wrap_future(pool.submit(fn, *args))


def analyse_job(body: bytes, encoding: str, url: str, listed: tuple[str, str] | None, kind: str | None,
                rule_files: tuple[str, ...], ceiling: float, indexed: bytes | None = None):
    """(``Extracted``, verdict dict) of one page, in one round trip.

    ``listed`` is the (title, snippet) of a listed result, which is analysed instead of
    the HTML ``body`` (its list page, kept only as evidence). ``indexed`` is the
    ``text_key`` of the stored page's title and text fingerprint: when the page still
    has both, its search-index terms stand and are not cut again (the tokens stay None);
    else the ``Extracted`` carries the new tokens. A page whose markup
    changes on every fetch (a timestamp, a session token) mostly keeps its text.
    """
    from dataclasses import replace

    from classifiers.tokenize import index_terms
    from crawler.extract import extract, extract_listed
    from crawler.items import text_key

    result = extract_listed(*listed) if listed is not None else extract(body, encoding, url)
    if indexed != text_key(result.title, result.text_fingerprint):
        result = replace(result, title_tokens=index_terms(result.title), text_tokens=index_terms(result.text))
    verdict = load_classifier(rule_files, ceiling).classify(result.text, title=result.title, url=url, kind=kind)
    return result, verdict.to_dict()


@lru_cache(maxsize=4)
def load_classifier(rule_files: tuple[str, ...], ceiling: float):
    from classifiers import Classifier

    return Classifier(extra_rule_files=[Path(p) for p in rule_files], yield_ceiling=ceiling)
