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


RULES = """category: guaranteed_return
rules:
  - id: local.{rule}
    weight: 1.0
    phrases: [{phrase}]
"""
BROKEN_RULES = "category: guaranteed_return\nrules:\n  - id: local.bad\n    weight: heavy\n    phrases: [稳赚]\n"


def test_a_rule_file_edit_is_judged_as_a_config_edit_and_crawls_classify_with_the_accepted_rules(tmp_path):
    path, rules = tmp_path / "patrol.yaml", tmp_path / "local-rules.yaml"
    write(rules, RULES.format(rule="a", phrase="稳赚不赔"))
    write(path, CONFIG.format(max_pages=5) + "rules_files: [local-rules.yaml]\n")
    watch = ConfigWatch(path)
    first = watch.load()
    accepted = crawl_config(settings_of(path, first)).rules_files
    assert [p.read_text(encoding="utf-8") for p in accepted] == [rules.read_text(encoding="utf-8")]
    assert accepted[0].parent == first.text_file.parent

    write(rules, RULES.format(rule="b", phrase="包赚"))
    second = watch.check(first).version
    assert second is not None and second.digest != first.digest, "the config file itself did not change"
    assert "包赚" in crawl_config(settings_of(path, second)).rules_files[0].read_text(encoding="utf-8")

    write(rules, BROKEN_RULES)
    refused = watch.check(second)
    assert refused.version is None
    assert refused.problems and refused.problems[0].startswith(f"rules_files[0] ({rules}) line 4:"), refused.problems
    assert watch.check(second) is None, "judged once"
    # a crawl started now still classifies with the rules in effect, and the refused texts are not kept
    assert "包赚" in crawl_config(settings_of(path, second)).rules_files[0].read_text(encoding="utf-8")
    assert sorted(p.name for p in second.text_file.parent.iterdir()) == sorted(
        p.name for v in (first, second) for p in (v.text_file, v.text_file.with_name(f"{v.text_file.stem}.rules-0.yaml")))

    rules.unlink()
    gone = watch.check(second)
    assert gone.version is None and gone.problems == [f"rules_files[0]: cannot read {rules}: "
                                                      f"[Errno 2] No such file or directory: '{rules}'"]


def test_serve_does_not_start_with_a_rule_file_that_does_not_load(tmp_path):
    path, rules = tmp_path / "patrol.yaml", tmp_path / "local-rules.yaml"
    write(rules, BROKEN_RULES)
    write(path, CONFIG.format(max_pages=5) + "rules_files: [local-rules.yaml]\n")
    with pytest.raises(ConfigError) as raised:
        ConfigWatch(path).load()
    assert str(raised.value) == (f"{path}: rules_files[0] ({rules}) line 4: "
                                 "rule 'local.bad': weight must be a number in (0, 1], got 'heavy'")
    assert list((tmp_path / "state" / "serve").iterdir()) == [], "nothing kept of a version refused"
