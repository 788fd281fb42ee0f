"""Worker processes for CPU-bound page work: extraction, search tokens, classification.

They are pure Python and hold the GIL, so threads would not use the second core;
worker processes do. Workers are started with ``forkserver`` (forking a process that
runs Twisted and asyncio is unsafe) and import trafilatura and the classifier once each.
A worker ends when the patrol process does, even on ``kill -9`` (:func:`die_with_patrol`:
a thread waiting on a pidfd of the patrol); the forkserver and resource tracker then
see their pipes close and exit too, so nothing of ~250 MB per worker outlives a patrol.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import select
import time
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
                               initializer=warm_up, initargs=(rule_files, ceiling, os.getpid()))
    for _ in range(workers):  # a forkserver pool starts one process per job that finds none idle
        pool.submit(int)
    return pool


def die_with_patrol(patrol_pid: int) -> None:
    """End this worker as soon as the patrol process ``patrol_pid`` has exited, however it ended.

    A worker's parent is the forkserver, not the patrol, and the forkserver outlives a
    patrol killed with ``kill -9`` while workers live (each holds the pipe whose end tells it
    the patrol is gone), so neither ``PR_SET_PDEATHSIG`` nor the pool's pipes end it. A thread
    waits on a pidfd of the patrol (Linux ≥ 5.3: readable once the process has exited, even
    unreaped), else checks every few seconds that the patrol still exists."""
    import threading

    try:
        fd = os.pidfd_open(patrol_pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # not Linux, or an old kernel: poll
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while _exists(patrol_pid):
                time.sleep(2)
        os._exit(1)

    threading.Thread(target=watch, name="finpatrol-patrol-watch", daemon=True).start()


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def warm_up(rule_files: tuple[str, ...], ceiling: float, patrol_pid: int | None = None) -> None:
    """Die with the patrol, then run one small page through the whole job, so every import and table is loaded."""
    if patrol_pid is not None:
        die_with_patrol(patrol_pid)
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
