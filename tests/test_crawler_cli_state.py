"""The CLI before any patrol: its version, and read commands on a state DB that does not exist."""

from __future__ import annotations

from importlib.metadata import version

from tests.conftest import cli

CONFIG = """\
state_dir: patrolled-nowhere
targets:
  - id: local
    name: 本地测试
    business: p2p
    urls: ["http://127.0.0.1:9/"]
"""


def test_a_mistyped_state_dir_is_named_not_answered_with_no_hits(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    for command in (("hits",), ("search", "保本保息"), ("runs",), ("show", "1"), ("alerts", "list")):
        result = cli(*command, "--config", str(config))
        assert result.returncode == 1, command
        assert "no state DB at" in result.stderr and "patrolled-nowhere" in result.stderr, command
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "patrolled-nowhere").exists(), "a read command must not create the state DB"
    listed = cli("schedule", "list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr


def test_version_is_the_installed_package_version():
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"finpatrol {version('finpatrol')}"


def test_check_config_warns_of_start_urls_the_guard_will_refuse(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    result = cli("check-config", "--config", str(config))
    assert result.returncode == 0 and "OK, 1 target(s)" in result.stdout
    assert "warning: targets[0].urls[0]: 127.0.0.1 is a loopback or private address" in result.stderr
    config.write_text(CONFIG + "    allow_private_networks: true\n", encoding="utf-8")
    assert "warning" not in cli("check-config", "--config", str(config)).stderr
    config.write_text("targets:\n", encoding="utf-8")
    assert "warning: no targets yet" in cli("check-config", "--config", str(config)).stderr
