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

The config's ``rules_files`` are part of its version: an edit of one is judged as an edit of
the config is (a rule file that does not load is refused, naming its line), their texts are
kept beside the config's (``crawler.crawl_config.rules_copy``) and the crawls classify with
those, so a half-written or broken rule file never fails a scheduled crawl.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from crawler.config import ConfigError, PatrolConfig, parse_config, read_config_text
from crawler.crawl_config import rules_copy
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
    """The accepted text, for the crawls (``FINPATROL_CONFIG_TEXT``); its rule files' texts beside it."""
    digest: str
    """Of the config's text and its rule files' texts."""
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
        """The version to start with; ConfigError when it, or a rule file of it, is unreadable or invalid."""
        stamp = _stat(self.path)
        text = read_config_text(self.path)
        config = parse_config(text, self.path)
        rule_stamps = [_stat(p) for p in config.rules_files]
        rules = _read_rules(config)
        digest = _digest(text, rules)
        version, problems = _accept(config, text, rules, digest)
        if version is None:
            raise ConfigError(self.path, problems)
        self._stamp = (stamp, *rule_stamps)
        self._judged = digest
        _drop_others(version)
        return version

    def check(self, current: Version, forced: bool = False) -> Change | None:
        """The judgement of the file's version when it is one not judged yet (any, when
        ``forced``); None when neither the file nor a rule file of the version in effect changed."""
        stamp = (_stat(self.path), *(_stat(p) for p in current.config.rules_files))
        if stamp == self._stamp and not forced:
            return None
        if time.time_ns() - max((s[0] for s in stamp if s), default=0) < SETTLE_NS and not forced:
            return None  # still being written, maybe
        self._stamp = stamp
        try:
            text = read_config_text(self.path)
            config = parse_config(text, self.path)
        except ConfigError as e:
            return self._judge(_digest("\n".join(e.problems)), forced, lambda d: Change(d, problems=e.problems))
        try:
            rules = _read_rules(config)
        except ConfigError as e:
            return self._judge(_digest(text, ["\n".join(e.problems)]), forced, lambda d: Change(d, problems=e.problems))
        return self._judge(_digest(text, rules), forced, lambda d: _judge(current, config, text, rules, d))

    def _judge(self, digest: str, forced: bool, judge) -> Change | None:
        if digest == self._judged and not forced:
            return None
        self._judged = digest
        return judge(digest)


def _stat(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev


def _read_rules(config: PatrolConfig) -> list[str]:
    """The texts of the config's rule files; ConfigError naming each one that cannot be read."""
    texts, problems = [], []
    for i, path in enumerate(config.rules_files):
        try:
            texts.append(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            problems.append(f"rules_files[{i}]: cannot read {path}: {e}")
    if problems:
        raise ConfigError(config.source, problems)
    return texts


def _judge(current: Version, config: PatrolConfig, text: str, rules: list[str], digest: str) -> Change:
    if digest == current.digest:
        return Change(digest, version=current)
    moved = [f"{name}: {getattr(current.config, name)} → {getattr(config, name)}"
             for name in PINNED if getattr(config, name) != getattr(current.config, name)]
    if moved:
        return Change(digest, problems=moved, needs_restart=True)
    version, problems = _accept(config, text, rules, digest)
    return Change(digest, version=version, problems=problems)


def _accept(config: PatrolConfig, text: str, rules: list[str], digest: str) -> tuple[Version | None, list[str]]:
    """Keep the texts where crawls read them, each written whole (a temporary file renamed) before
    use; then the rule files' copies must load, or the version is refused and its files go."""
    folder = config.state_dir.absolute() / ACCEPTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    text_file = folder / f"patrol-{digest[:16]}.yaml"
    copies = [rules_copy(text_file, i) for i in range(len(rules))]
    for path, content in ((text_file, text), *zip(copies, rules)):
        if not path.exists():
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(content, encoding="utf-8")
            partial.replace(path)
    problems = _rule_problems(config, copies)
    if problems:
        for path in (text_file, *copies):
            path.unlink(missing_ok=True)
        return None, problems
    return Version(config, text_file, digest, utcnow()), []


def _rule_problems(config: PatrolConfig, copies: list[Path]) -> list[str]:
    """What the classifier says of the rule files, named as configured (not as copied)."""
    if not copies:
        return []
    from classifiers import Classifier, RuleFileError  # only when there are rule files: it loads the rules

    try:
        Classifier(extra_rule_files=copies, yield_ceiling=config.yield_ceiling)
    except RuleFileError as e:
        i = next((i for i, copy in enumerate(copies) if str(copy) == e.path), None)
        where = f"rules_files[{i}] ({config.rules_files[i]})" if i is not None else e.path
        return [f"{where}{f' line {e.line}' if e.line else ''}: {e.message}"]
    return []


def _drop_others(version: Version) -> None:
    """At start no crawl of this service runs: earlier versions' texts can go."""
    for old in version.text_file.parent.glob("patrol-*"):
        if not old.name.startswith(version.text_file.stem + "."):
            old.unlink(missing_ok=True)


def _digest(text: str, rules: list[str] = ()) -> str:
    """Of the config's text alone when it has no rule files (as before rule files were watched)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    for content in rules:
        digest.update(b"\0rules\0" + content.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
