"""The config a crawl process reads: its file, or the text ``finpatrol serve`` accepted.

``serve`` validates ``patrol.yaml`` at start and whenever the file changes, and hands each
crawl it starts the text it accepted (Scrapy setting ``FINPATROL_CONFIG_TEXT``: a file under
``state_dir/serve/`` holding that text). An edit it refused (invalid, or one that needs a
restart) so never reaches a crawl, and every component of one crawl reads one version.
Relative paths in the text resolve against the config file's directory (``FINPATROL_CONFIG``)
as when the file itself is read, except ``rules_files``: serve accepted their texts too, and
the crawl reads the copies kept beside the config's text (:func:`rules_copy`).
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
    config = parse_config(text, path)
    copies = tuple(rules_copy(Path(accepted), i) for i in range(len(config.rules_files)))
    return config.model_copy(update={"rules_files": copies})


def rules_copy(text_file: Path, index: int) -> Path:
    """Where serve keeps the text of rule file ``index`` of the config text ``text_file``."""
    return text_file.with_name(f"{text_file.stem}.rules-{index}.yaml")
