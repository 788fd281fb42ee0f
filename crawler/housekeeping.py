"""Housekeeping of a state_dir: a crawl's diagnostics removed after the ``retention:`` ages.

What goes: the two log files of a scheduled crawl in ``state_dir/logs/``
(``crawl-<job>-<UTC start>.log`` and ``.err``, written by ``crawler.schedule.runner``),
and the Scrapy stats in an old run's record, cut to :data:`SUMMARY_STATS`. A crawl
counts as healthy only when its ``.err`` is empty and its log names a run whose status
is ``ok``; any other (failed, partial, crashed, still running, a run the state DB does
not hold) is kept for ``unhealthy_crawl_logs_days``. Files in ``logs/`` not named so are
never touched.

What never goes, whatever the config says: pages and their versions, hits, changes,
WARC evidence, alerts and the outbox, run records and their per-target counts. An
investigator may need a page as it was years ago; none of that is diagnostics.

``finpatrol prune`` runs :func:`prune`; ``finpatrol serve`` calls :func:`daily`.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from crawler.config import PatrolConfig
from crawler.schedule.runner import RUN_ID
from crawler.store.db import StateDB, as_utc, in_chunks, iso, utcnow
from crawler.store.models import PatrolRun

logger = logging.getLogger(__name__)

LOG_NAME = re.compile(r"^(?P<crawl>crawl-.+-(?P<time>\d{8}T\d{6}))\.(?:log|err)$")
SUMMARY_STATS = (
    "start_time", "finish_time", "finish_reason", "elapsed_time_seconds", "item_scraped_count",
    "downloader/request_count", "downloader/response_count", "log_count/WARNING", "log_count/ERROR",
    "patrol/run_id",
)
"""The Scrapy stats an old run keeps; its per-target outcome stays in ``run_targets``."""
THINNED = "retention/thinned_at"
"""Added to stats cut to the summary: when, so a reader knows the rest was removed, not never there."""
STAMP = "last-prune"
"""In state_dir: when the last prune ran, so serve prunes once a day across restarts."""
LOG_TAIL = 1 << 20
"""Bytes read from the end of a log to find the stats dump that names the run."""


@dataclass(frozen=True)
class CrawlLogs:
    """The log files of one scheduled crawl."""

    crawl: str
    """``crawl-<job>-<UTC start>``: the files' common name."""
    started: datetime
    files: tuple[str, ...]
    bytes: int
    healthy: bool
    why: str
    """How its health was told: ``run 12 ok``, ``run 12 partial``, ``stderr not empty``…"""


@dataclass(frozen=True)
class ThinnedRun:
    run_id: int
    started_at: datetime
    status: str
    bytes: int
    """Bytes of stats JSON removed."""


@dataclass
class PruneResult:
    dry_run: bool
    logs: list[CrawlLogs] = field(default_factory=list)
    """Removed (or, in a dry run, would be)."""
    kept_unhealthy: list[CrawlLogs] = field(default_factory=list)
    """Older than ``crawl_logs_days`` but kept: the crawl went wrong or cannot be told."""
    runs: list[ThinnedRun] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def log_bytes(self) -> int:
        return sum(c.bytes for c in self.logs)

    @property
    def stats_bytes(self) -> int:
        return sum(r.bytes for r in self.runs)

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        files = sum(len(c.files) for c in self.logs)
        text = (f"{verb} {files} log file(s) of {len(self.logs)} crawl(s) ({size(self.log_bytes)}); "
                f"{'would cut' if self.dry_run else 'cut'} the Scrapy stats of {len(self.runs)} run(s) "
                f"to a summary ({size(self.stats_bytes)})")
        if self.kept_unhealthy:
            text += (f"; kept the logs of {len(self.kept_unhealthy)} older crawl(s) that went wrong or cannot "
                     "be told (retention.unhealthy_crawl_logs_days)")
        if self.errors:
            text += f"; {len(self.errors)} error(s)"
        return text

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "summary": self.summary(),
                "log_bytes": self.log_bytes, "stats_bytes": self.stats_bytes,
                "logs": [_jsonable(c) for c in self.logs],
                "kept_unhealthy": [_jsonable(c) for c in self.kept_unhealthy],
                "runs": [_jsonable(r) for r in self.runs], "errors": self.errors}


def prune(config: PatrolConfig, db: StateDB, now: datetime | None = None, dry_run: bool = False) -> PruneResult:
    """Remove the crawl diagnostics older than ``config.retention`` allows; a dry run only says what."""
    now = now or utcnow()
    result = PruneResult(dry_run)
    healthy_cut, unhealthy_cut = (_cutoff(now, config.retention.crawl_logs_days),
                                  _cutoff(now, config.retention.unhealthy_crawl_logs_days))
    if healthy_cut is None:  # then unhealthy ones are kept forever too (config_retention)
        return result
    if not dry_run:
        _write_stamp(config.state_dir, now, result.errors)
    for crawl in old_crawl_logs(config.state_dir / "logs", healthy_cut, db):
        due = crawl.healthy or (unhealthy_cut is not None and crawl.started < unhealthy_cut)
        (result.logs if due else result.kept_unhealthy).append(crawl)
    result.runs = _runs_to_thin(db, healthy_cut, unhealthy_cut, now)
    if not dry_run:
        for crawl in result.logs:
            _remove(crawl, result.errors)
        _thin(db, [r.run_id for r in result.runs], now)
    return result


def daily(config: PatrolConfig, db: StateDB, now: datetime | None = None) -> PruneResult | None:
    """:func:`prune` when the last one (by serve or ``finpatrol prune``) is a day old; for serve's
    alert tick. Never raises: housekeeping must not stop the service. None when not due."""
    now = now or utcnow()
    last = last_prune(config.state_dir)
    if last is not None and timedelta(0) <= now - last < timedelta(days=1):
        return None
    try:
        result = prune(config, db, now)
    except Exception:  # batch boundary: the stamp is written first, so it is tried again in a day
        logger.exception("housekeeping failed (retention); trying again in a day")
        return None
    if result.errors:
        logger.warning("housekeeping: %s:\n  %s", result.summary(), "\n  ".join(result.errors))
    elif result.logs or result.runs:
        logger.info("housekeeping: %s", result.summary())
    return result


def last_prune(state_dir: Path) -> datetime | None:
    try:
        return as_utc(datetime.fromisoformat((state_dir / STAMP).read_text(encoding="ascii").strip()))
    except (OSError, ValueError):
        return None


def old_crawl_logs(log_dir: Path, before: datetime, db: StateDB) -> list[CrawlLogs]:
    """The crawls started before ``before`` whose log files are in ``log_dir``, oldest first, health told."""
    found: dict[tuple[str, datetime], list[Path]] = defaultdict(list)
    try:
        entries = list(log_dir.iterdir())
    except FileNotFoundError:
        return []
    for path in entries:
        match = LOG_NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        started = datetime.strptime(match["time"], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        if started < before:
            found[(match["crawl"], started)].append(path)
    run_ids = {key: _run_id(files) for key, files in found.items()}
    statuses = _statuses(db, {r for r in run_ids.values() if r is not None})
    out = []
    for (crawl, started), files in sorted(found.items(), key=lambda item: item[0][1]):
        healthy, why = _health(files, run_ids[(crawl, started)], statuses)
        out.append(CrawlLogs(crawl, started, tuple(str(p) for p in sorted(files)),
                             sum(_size(p) for p in files), healthy, why))
    return out


def _health(files: list[Path], run_id: int | None, statuses: dict[int, str]) -> tuple[bool, str]:
    err = next((p for p in files if p.suffix == ".err"), None)
    if err is not None and _size(err) > 0:
        return False, "stderr not empty"
    if run_id is None:
        return False, "no run recorded in its log"
    status = statuses.get(run_id)
    if status is None:
        return False, f"run {run_id} not in the state DB"
    return status == "ok", f"run {run_id} {status}"


def _run_id(files: list[Path]) -> int | None:
    """The run named by the stats dump at the end of the crawl's log (as the runner reads it)."""
    log = next((p for p in files if p.suffix == ".log"), None)
    if log is None:
        return None
    try:
        with open(log, "rb") as f:
            f.seek(max(0, _size(log) - LOG_TAIL))
            matches = RUN_ID.findall(f.read().decode("utf-8", errors="replace"))
    except OSError:
        return None
    return int(matches[-1]) if matches else None


def _statuses(db: StateDB, run_ids: set[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    with db.new_session() as session:
        for chunk in in_chunks(sorted(run_ids)):
            out.update(session.execute(select(PatrolRun.id, PatrolRun.status).where(PatrolRun.id.in_(chunk))).all())
    return out


def _runs_to_thin(db: StateDB, healthy_cut: datetime, unhealthy_cut: datetime | None,
                  now: datetime) -> list[ThinnedRun]:
    """Finished runs past their age whose stats are not cut yet, with the bytes cutting frees."""
    out = []
    query = (select(PatrolRun.id, PatrolRun.started_at, PatrolRun.status, PatrolRun.stats)
             .where(PatrolRun.started_at < healthy_cut, PatrolRun.status != "running").order_by(PatrolRun.id))
    with db.new_session() as session:
        for run_id, started_at, status, stats in session.execute(query):
            started_at = as_utc(started_at)
            cut = healthy_cut if status == "ok" else unhealthy_cut
            if cut is None or started_at >= cut or not stats or THINNED in stats:
                continue
            freed = len(json.dumps(stats)) - len(json.dumps(summary_stats(stats, now)))
            if freed > 0:
                out.append(ThinnedRun(run_id, started_at, status, freed))
    return out


def summary_stats(stats: dict, now: datetime) -> dict:
    return {key: stats[key] for key in SUMMARY_STATS if key in stats} | {THINNED: iso(now)}


def _thin(db: StateDB, run_ids: list[int], now: datetime) -> None:
    for chunk in in_chunks(run_ids):
        with db.new_session() as session, session.begin():
            rows = session.execute(select(PatrolRun.id, PatrolRun.stats).where(PatrolRun.id.in_(chunk))).all()
            for run_id, stats in rows:
                session.execute(update(PatrolRun).where(PatrolRun.id == run_id)
                                .values(stats=summary_stats(stats or {}, now)))


def _remove(crawl: CrawlLogs, errors: list[str]) -> None:
    for name in crawl.files:
        try:
            Path(name).unlink()
        except FileNotFoundError:
            pass  # gone already (another prune): what was asked
        except OSError as e:
            errors.append(f"cannot remove {name}: {e.strerror or e}")


def _write_stamp(state_dir: Path, now: datetime, errors: list[str]) -> None:
    try:
        (state_dir / STAMP).write_text(iso(now) + "\n", encoding="ascii")
    except OSError as e:
        errors.append(f"cannot write {state_dir / STAMP}: {e.strerror or e}")


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def size(n: float) -> str:
    """``812 B``, ``96.3 KB``, ``1.4 MB`` (powers of 1024)."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024:
            break
    return f"{n:.1f} {unit}"


def _jsonable(item) -> dict:
    return {key: iso(value) if isinstance(value, datetime) else value for key, value in asdict(item).items()}
