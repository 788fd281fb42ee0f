"""``patrol.yaml`` as ``serve`` runs it: the version in effect, and edits noticed while it runs.

The service asks every few seconds and on SIGHUP (``Service.run``). The file is read only
when its stat changed, and not while it was written in the last second (a file being saved
is not judged half-written); each version is judged once, by its content (SHA-256): touching
the file, or an editor writing the same text again, is no change, and a broken version is
refused once rather than every few seconds. A version is refused when it is invalid, or
when it moves what the service holds open (``state_dir``, the state DB): that needs a
restart. The text of an accepted version is kept under ``state_dir/serve/`` (named by its
hash) and handed to every crawl the service starts (``crawler.crawl_config``), so a crawl
never reads a version the service refused.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from crawler.config import ConfigError, PatrolConfig, parse_config, read_config_text
from crawler.store.db import utcnow

ACCEPTED_DIR = "serve"
PINNED = ("state_dir", "database_url")
"""Settings the service holds open: its lock and DB (by default in state_dir), its DB engine."""
SETTLE_NS = 1_000_000_000
"""A file modified more recently is looked at again on the next check."""


@dataclass(frozen=True)
class Version:
    """A config the service runs with."""

    config: PatrolConfig
    text_file: Path
    """The accepted text, for the crawls (``FINPATROL_CONFIG_TEXT``)."""
    digest: str
    read_at: datetime


@dataclass(frozen=True)
class Change:
    """The judgement of a new version of the file: ``version`` when accepted, else why not."""

    digest: str
    version: Version | None = None
    problems: list[str] = field(default_factory=list)
    needs_restart: bool = False


class ConfigWatch:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._judged: str | None = None

    def load(self) -> Version:
        """The version to start with; ConfigError when it is unreadable or invalid."""
        self._stamp = self._stat()
        text = read_config_text(self.path)
        digest = _digest(text)
        version = _accept(parse_config(text, self.path), text, digest)
        self._judged = digest
        _drop_others(version)
        return version

    def check(self, current: Version, forced: bool = False) -> Change | None:
        """The judgement of the file's version when it is one not judged yet (any, when
        ``forced``); None when the file did not change."""
        stamp = self._stat()
        if stamp == self._stamp and not forced:
            return None
        if stamp is not None and time.time_ns() - stamp[0] < SETTLE_NS and not forced:
            return None  # still being written, maybe
        self._stamp = stamp
        try:
            text = read_config_text(self.path)
        except ConfigError as e:
            return self._judge(_digest("\n".join(e.problems)), forced, lambda d: Change(d, problems=e.problems))
        return self._judge(_digest(text), forced, lambda d: _judge(current, self.path, text, d))

    def _judge(self, digest: str, forced: bool, judge) -> Change | None:
        if digest == self._judged and not forced:
            return None
        self._judged = digest
        return judge(digest)

    def _stat(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev


def _judge(current: Version, path: Path, text: str, digest: str) -> Change:
    if digest == current.digest:
        return Change(digest, version=current)
    try:
        config = parse_config(text, path)
    except ConfigError as e:
        return Change(digest, problems=e.problems)
    moved = [f"{name}: {getattr(current.config, name)} → {getattr(config, name)}"
             for name in PINNED if getattr(config, name) != getattr(current.config, name)]
    if moved:
        return Change(digest, problems=moved, needs_restart=True)
    return Change(digest, version=_accept(config, text, digest))


def _accept(config: PatrolConfig, text: str, digest: str) -> Version:
    """Keep the text where crawls read it: written whole (a temporary file renamed) before use."""
    folder = config.state_dir.absolute() / ACCEPTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    text_file = folder / f"patrol-{digest[:16]}.yaml"
    if not text_file.exists():
        partial = text_file.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(text_file)
    return Version(config, text_file, digest, utcnow())


def _drop_others(version: Version) -> None:
    """At start no crawl of this service runs: earlier versions' texts can go."""
    for old in version.text_file.parent.glob("patrol-*"):
        if old != version.text_file:
            old.unlink(missing_ok=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
