"""The config a crawl process reads: its file, or the text ``finpatrol serve`` accepted.

``serve`` validates ``patrol.yaml`` at start and whenever the file changes, and hands each
crawl it starts the text it accepted (Scrapy setting ``FINPATROL_CONFIG_TEXT``: a file under
``state_dir/serve/`` holding that text). An edit it refused (invalid, or one that needs a
restart) so never reaches a crawl, and every component of one crawl reads one version.
Relative paths in the text resolve against the config file's directory (``FINPATROL_CONFIG``)
as when the file itself is read.
"""

from __future__ import annotations

from pathlib import Path

from crawler.config import ConfigError, PatrolConfig, load_config, parse_config


def crawl_config(settings) -> PatrolConfig:
    """The crawl's config from its Scrapy settings; ConfigError when it cannot be read or is invalid."""
    path = settings.get("FINPATROL_CONFIG")
    accepted = settings.get("FINPATROL_CONFIG_TEXT")
    if not accepted:
        return load_config(path)
    try:
        text = Path(accepted).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(accepted, [f"cannot read the config text serve accepted: {e}"]) from e
    return parse_config(text, path)
