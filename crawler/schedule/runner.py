"""Run one crawl as a ``scrapy crawl <spider>`` subprocess (site_patrol, ad_channel, opinion) and judge it by its run record.

Twisted's reactor cannot restart, so every crawl gets a fresh process:
``python -m scrapy crawl site_patrol -s FINPATROL_CONFIG=... -s FINPATROL_TARGETS=...``
(and ``FINPATROL_CONFIG_TEXT``: the config text the service accepted)
with ``SCRAPY_SETTINGS_MODULE=crawler.settings`` and the repository as cwd, so
every path handed to it is absolute. The crawl's log goes to
``state_dir/logs/crawl-<job>-<time>.log``, its stdout and stderr (the traceback of a
crawl that could not start) to the ``.err`` file next to it. ``scrapy crawl`` exits 0 even after a
bad crawl, so health comes from ``patrol_runs.status`` (ok | partial | failed),
which the store pipeline writes; the run id is read from the stats dump in the
log. A crawl past its timeout, or still running at shutdown, gets SIGTERM (Scrapy
closes the spider and records the run), then SIGKILL to its whole process group
after ``stop_grace``; a run left ``running`` by a killed crawl is recorded as failed
here. The crawl leads a process group of its own (``start_new_session``): once it has
exited, whatever is left of the group (its forkserver and analysis workers) is killed,
so no crawl leaves orphans behind.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from crawler.config import PatrolConfig
from crawler.store.db import StateDB, utcnow
from crawler.store.models import PatrolRun

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
RUN_ID = re.compile(r"'patrol/run_id':\s*(\d+)")


@dataclass
class CrawlOutcome:
    job_id: str
    returncode: int | None
    run_id: int | None
    status: str
    """ok | partial | failed (from the run record), or failed when there is none."""
    reason: str
    """finished, timeout, stopped, killed, no_run, exit_<code> ..."""
    log_file: str
    err_file: str = ""
    """The crawl's stdout and stderr: the traceback of a crawl that could not start or crashed."""

    @property
    def healthy(self) -> bool:
        return self.status == "ok"

    @property
    def crashed(self) -> bool:
        """It did not start, exited non-zero, left no run record or had to be killed."""
        return self.reason in ("not_started", "no_run", "killed") or self.reason.startswith("exit_")

    def files(self) -> dict[str, str]:
        """The files that tell what happened: ``stderr`` when it holds anything (a crash's
        traceback), then ``log`` when it exists."""
        found = {}
        if self.err_file and _size(self.err_file) > 0:
            found["stderr"] = self.err_file
        if Path(self.log_file).is_file():
            found["log"] = self.log_file
        return found or {"log": self.log_file}


class Runner:
    """Starts crawl processes and can stop all of them (on SIGTERM of the service)."""

    def __init__(self, stop_grace: float = 60):
        self.stop_grace = stop_grace
        self._procs: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def command(self, config: PatrolConfig, targets: tuple[str, ...], log_file: Path,
                spider: str = "site_patrol", config_text: Path | None = None) -> list[str]:
        settings = {
            "FINPATROL_CONFIG": str(Path(config.source).resolve()),
            "FINPATROL_CONFIG_TEXT": str(config_text.resolve()) if config_text else "",
            "FINPATROL_TARGETS": ",".join(targets),
            "LOG_FILE": str(log_file),
            "LOG_LEVEL": "INFO",
            "CONCURRENT_REQUESTS_PER_DOMAIN": str(config.concurrency_per_domain),
            "DOWNLOAD_TIMEOUT": str(config.download_timeout),
        }
        cmd = [sys.executable, "-m", "scrapy", "crawl", spider]
        for key, value in settings.items():
            cmd += ["-s", f"{key}={value}"]
        return cmd

    def run(self, config: PatrolConfig, job_id: str, targets: tuple[str, ...], timeout: float,
            spider: str = "site_patrol", config_text: Path | None = None) -> CrawlOutcome:
        """One crawl; ``config_text``: a file holding the text ``config`` was read from, which the
        crawl reads instead of the config file (``crawler.crawl_config``)."""
        log_dir = config.state_dir.absolute() / "logs"  # the crawl runs in another directory
        log_dir.mkdir(parents=True, exist_ok=True)
        started = utcnow()
        log_file = log_dir / f"crawl-{job_id}-{started:%Y%m%dT%H%M%S}.log"
        err_file = log_file.with_suffix(".err")
        env = os.environ | {
            "SCRAPY_SETTINGS_MODULE": "crawler.settings",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        }
        db = StateDB(config.db_url)
        try:
            before = _max_run_id(db)
            if self.stopping.is_set():
                return CrawlOutcome(job_id, None, None, "failed", "stopped", str(log_file), str(err_file))
            with open(err_file, "wb") as err:
                try:
                    proc = subprocess.Popen(
                        self.command(config, targets, log_file, spider, config_text), cwd=REPO, env=env, start_new_session=True,
                        stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                    )
                except OSError as e:
                    err.write(f"could not start the crawl: {e!r}\n".encode())
                    return CrawlOutcome(job_id, None, None, "failed", "not_started", str(log_file), str(err_file))
            with self._lock:
                self._procs[proc.pid] = proc
            logger.info("crawl %s started: pid %s, log %s", job_id, proc.pid, log_file)
            try:
                reason = self._wait(proc, timeout)
            finally:
                _kill_group(proc.pid)
                with self._lock:
                    self._procs.pop(proc.pid, None)
            run_id = _run_id_from_log(log_file) or _run_after(db, before)
            status = _settle(db, run_id, reason)
            if reason == "finished" and proc.returncode != 0:
                reason = f"exit_{proc.returncode}"
            if run_id is None:
                reason = reason if reason != "finished" else "no_run"
            outcome = CrawlOutcome(job_id, proc.returncode, run_id, status, reason, str(log_file), str(err_file))
            logger.info("crawl %s ended: %s", job_id, outcome)
            return outcome
        finally:
            db.close()

    def _wait(self, proc: subprocess.Popen, timeout: float) -> str:
        try:
            proc.wait(timeout=timeout)
            return "stopped" if self.stopping.is_set() else "finished"
        except subprocess.TimeoutExpired:
            logger.warning("crawl pid %s over its %ss timeout: stopping it", proc.pid, timeout)
            return "timeout" if self._terminate(proc) else "killed"

    def _terminate(self, proc: subprocess.Popen) -> bool:
        """SIGTERM, then SIGKILL to its process group after ``stop_grace``; True when it exited by itself.

        SIGTERM goes to the crawl alone: Scrapy closes the spider, its analysis workers still
        serving; the rest of the group is killed once the crawl has exited (:func:`_kill_group`)."""
        if proc.poll() is not None:
            return True
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self.stop_grace)
            return True
        except subprocess.TimeoutExpired:
            logger.error("crawl pid %s ignored SIGTERM for %ss: killing its process group", proc.pid, self.stop_grace)
            _kill_group(proc.pid)
            proc.wait()
            return False

    def stop_all(self) -> None:
        """Stop every running crawl (SIGTERM, SIGKILL after the grace time) and start no more."""
        self.stopping.set()
        with self._lock:
            procs = list(self._procs.values())
        threads = [threading.Thread(target=self._terminate, args=(p,)) for p in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _kill_group(pgid: int) -> None:
    """SIGKILL every process left in the crawl's process group (its forkserver, analysis workers)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return  # nothing left: the usual case after a clean exit
    except PermissionError as e:  # pragma: no cover - a group we cannot signal is not ours any more
        logger.warning("could not kill process group %s of a crawl: %s", pgid, e)
        return
    logger.info("crawl process group %s: killed what was left of it", pgid)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _max_run_id(db: StateDB) -> int:
    with db.new_session() as session:
        return session.scalar(select(func.max(PatrolRun.id))) or 0


def _run_after(db: StateDB, before: int) -> int | None:
    """Fallback when the log has no stats dump: the first run started after ours began."""
    with db.new_session() as session:
        return session.scalar(select(func.min(PatrolRun.id)).where(PatrolRun.id > before))


def _run_id_from_log(log_file: Path) -> int | None:
    try:
        matches = RUN_ID.findall(log_file.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return int(matches[-1]) if matches else None


def _settle(db: StateDB, run_id: int | None, reason: str) -> str:
    """The run's status; a run a killed crawl left ``running`` is recorded as failed."""
    if run_id is None:
        return "failed"
    with db.new_session() as session, session.begin():
        run = session.get(PatrolRun, run_id)
        if run is None:
            return "failed"
        if run.status == "running":
            run.status, run.finish_reason, run.finished_at = "failed", reason, utcnow()
        return run.status
