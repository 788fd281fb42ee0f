"""Shared test helpers: write a patrol config, run the real CLI in a subprocess, read the state DB."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None, timeout: float = 240, env: dict | None = None):
    """Run ``finpatrol`` as a new process (Twisted's reactor cannot restart in-process)."""
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    full_env = os.environ | {"PYTHONPATH": pythonpath, "COLUMNS": "200"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: a site that is down (connection refused)."""
    from crawler.demo.server import SiteServer, routes

    server = SiteServer(routes({})).start()
    url = server.url("/")
    server.stop()
    return url


def wait_until(predicate, timeout: float = 120, what: str = "condition"):
    """``predicate()``'s first true value, asked every 0.2 s; an AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def tamper_warc_record(path: Path, record_id: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` (same length in UTF-8) inside one WARC record, as someone editing
    a handed-over file would, leaving every gzip member readable."""
    members, rest = [], path.read_bytes()
    while rest:
        decompressor = zlib.decompressobj(31)
        members.append(decompressor.decompress(rest))
        rest = decompressor.unused_data
    own = f"WARC-Record-ID: {record_id}".encode()
    assert sum(own in m for m in members) == 1 and len(old.encode()) == len(new.encode())
    path.write_bytes(b"".join(gzip.compress(m.replace(old.encode(), new.encode()) if own in m else m)
                              for m in members))


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def make_config(tmp_path):
    """Write a patrol.yaml in a fresh directory; returns its path."""

    def write(targets: list[dict], **top) -> Path:
        document = {"state_dir": "state", "allow_private_networks": True, "download_timeout": 5} | top
        document["targets"] = [
            {"name": t["id"], "business": "p2p", "max_pages": 50} | t for t in targets
        ]
        path = tmp_path / "patrol.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def patrol(make_config):
    """Patrol with the real CLI; returns (completed process, config path)."""

    def run(config: Path, *extra: str):
        result = cli("patrol", "--config", str(config), *extra)
        return result

    return run


@pytest.fixture
def sink():
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""
    from smtp_fixtures import SmtpSink

    with SmtpSink() as server:
        yield server
