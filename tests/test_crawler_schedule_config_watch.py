"""How ``serve`` judges edits of its config file (``crawler.schedule.config_watch``) and what crawls read."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest

from crawler.config import ConfigError
from crawler.crawl_config import crawl_config
from crawler.schedule.config_watch import ConfigWatch

CONFIG = """state_dir: state
allow_private_networks: true
targets:
  - id: xyb
    name: 重庆鑫盈宝网络科技有限公司
    business: p2p
    urls: ["http://127.0.0.1:9/"]
    max_pages: {max_pages}
"""


EDITS = itertools.count()


def write(path: Path, text: str, seconds_ago: float = 10) -> None:
    """Save ``path`` as an editor would, ``seconds_ago`` (each save a later mtime than the one before)."""
    path.write_text(text, encoding="utf-8")
    mtime = time.time_ns() - int(seconds_ago * 1e9) + next(EDITS) * 1000
    os.utime(path, ns=(mtime, mtime))


def settings_of(path: Path, version) -> dict:
    return {"FINPATROL_CONFIG": str(path), "FINPATROL_CONFIG_TEXT": str(version.text_file)}


def test_each_version_is_judged_once_and_crawls_read_the_accepted_one(tmp_path):
    path = tmp_path / "patrol.yaml"
    write(path, CONFIG.format(max_pages=5))
    watch = ConfigWatch(path)
    first = watch.load()
    assert first.text_file.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
    assert watch.check(first) is None, "unchanged"
    write(path, CONFIG.format(max_pages=5))
    assert watch.check(first) is None, "rewritten with the same text"

    write(path, CONFIG.format(max_pages=7), seconds_ago=0)
    assert watch.check(first) is None, "not while it may still be being written"
    write(path, CONFIG.format(max_pages=7))
    change = watch.check(first)
    assert change.version is not None and change.version.config.targets[0].max_pages == 7
    second = change.version

    write(path, CONFIG.format(max_pages="many"))
    refused = watch.check(second)
    assert refused.version is None and not refused.needs_restart
    assert any("targets[0].max_pages" in p for p in refused.problems), refused.problems
    write(path, CONFIG.format(max_pages="many") + "\n")
    write(path, CONFIG.format(max_pages="many"))
    assert watch.check(second) is None, "a refused version is judged once"
    assert watch.check(second, forced=True).problems == refused.problems, "unless asked again (SIGHUP)"
    # What a crawl started now reads: the accepted version, not the broken file.
    assert crawl_config(settings_of(path, second)).targets[0].max_pages == 7
    with pytest.raises(ConfigError):
        crawl_config({"FINPATROL_CONFIG": str(path), "FINPATROL_CONFIG_TEXT": ""})

    write(path, CONFIG.format(max_pages=7))
    assert watch.check(second).version is second, "back to the version in effect"


def test_a_moved_state_needs_a_restart_and_a_deleted_file_is_refused_once(tmp_path):
    path = tmp_path / "patrol.yaml"
    write(path, CONFIG.format(max_pages=5))
    watch = ConfigWatch(path)
    current = watch.load()
    write(path, CONFIG.format(max_pages=5).replace("state_dir: state", "state_dir: other"))
    moved = watch.check(current)
    assert moved.needs_restart and moved.problems == [f"state_dir: {tmp_path / 'state'} → {tmp_path / 'other'}"]
    assert not (tmp_path / "other").exists()
    path.unlink()
    gone = watch.check(current)
    assert gone.version is None and gone.problems == ["file not found"]
    assert watch.check(current) is None


def test_start_drops_the_texts_of_earlier_versions(tmp_path):
    path = tmp_path / "patrol.yaml"
    write(path, CONFIG.format(max_pages=5))
    watch = ConfigWatch(path)
    first = watch.load()
    write(path, CONFIG.format(max_pages=6))
    second = watch.check(first).version
    assert first.text_file.exists() and second.text_file.exists(), "a crawl may still be starting with the first"
    restarted = ConfigWatch(path).load()
    assert sorted(restarted.text_file.parent.iterdir()) == [second.text_file]
