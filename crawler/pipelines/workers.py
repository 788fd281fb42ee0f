"""A process pool for CPU-bound page work, shared by the pipelines of one crawl.

Extraction and classification are pure Python and hold the GIL, so threads
would not use the second core; worker processes do. Workers are started with
``forkserver`` (forking a process that runs Twisted and asyncio is unsafe) and
import trafilatura and the classifier once each.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

_pool: ProcessPoolExecutor | None = None
_users = 0


def acquire(workers: int) -> ProcessPoolExecutor:
    """The crawl's pool, created by the first pipeline that opens."""
    global _pool, _users
    if _pool is None:
        context = multiprocessing.get_context("forkserver")
        _pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    _users += 1
    return _pool


def release() -> None:
    """Shut the pool down when the last pipeline closes."""
    global _pool, _users
    _users -= 1
    if _users <= 0 and _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool, _users = None, 0


async def run(pool: ProcessPoolExecutor, fn, *args):
    return await asyncio.wrap_future(pool.submit(fn, *args))


def extract_job(body: bytes, encoding: str, url: str):
    """Extraction plus the search-index tokens, so jieba never runs on the reactor thread."""
    from dataclasses import replace

    from classifiers.tokenize import tokenize
    from crawler.extract import extract

    result = extract(body, encoding, url)
    return replace(
        result,
        title_tokens=" ".join(tokenize(result.title, for_index=True)),
        text_tokens=" ".join(tokenize(result.text, for_index=True)),
    )


@lru_cache(maxsize=4)
def load_classifier(rule_files: tuple[str, ...], ceiling: float):
    from classifiers import Classifier

    return Classifier(extra_rule_files=[Path(p) for p in rule_files], yield_ceiling=ceiling)


def classify_job(title: str, text: str, url: str, rule_files: tuple[str, ...], ceiling: float,
                 kind: str | None = "platform_page"):
    verdict = load_classifier(rule_files, ceiling).classify(text, title=title, url=url, kind=kind)
    return verdict.to_dict()
