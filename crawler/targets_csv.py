"""Import the office's target spreadsheet (CSV) into the config's ``targets:`` list.

The spreadsheet may use English or Chinese column names and be saved as UTF-8
(with or without BOM) or GB18030, as Excel does on Chinese Windows. Every row is
validated as a Target before anything is written; the config file is rewritten
with ruamel.yaml so the operator's comments and ordering survive.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml import YAML

from crawler.config import ConfigError, Target, field_path, load_config

logger = logging.getLogger(__name__)

COLUMNS = {
    "id": ("id", "编号", "标识"),
    "name": ("name", "机构名称", "名称", "企业名称"),
    "aliases": ("aliases", "简称", "别名"),
    "credit_code": ("credit_code", "统一社会信用代码", "信用代码"),
    "business": ("business", "业态", "业务类型"),
    "urls": ("urls", "网址", "网站"),
    "allowed_domains": ("allowed_domains", "域名"),
    "max_pages": ("max_pages", "最大页数"),
    "max_depth": ("max_depth", "最大深度"),
    "render": ("render", "渲染"),
}
LISTS = ("aliases", "urls", "allowed_domains")
BUSINESS_ZH = {
    "P2P网络借贷": "p2p", "网络借贷": "p2p", "P2P": "p2p", "股权众筹": "crowdfunding",
    "互联网保险": "insurance", "第三方支付": "payment", "资产管理": "asset_management",
    "互联网资产管理": "asset_management", "其他": "other",
}
_SPLIT = re.compile(r"[;；,，\s|]+")


def read_csv(path: Path) -> list[dict]:
    """Rows as target mappings; raises ConfigError naming the CSV line and column."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="strict")
    reader = csv.DictReader(io.StringIO(text))
    mapping = _map_columns(path, reader.fieldnames or [])
    targets, problems = [], []
    for line_no, row in enumerate(reader, start=2):
        entry = _entry(row, mapping)
        if not any(entry.values()):
            continue
        try:
            Target.model_validate(entry)
        except ValidationError as e:
            for err in e.errors():
                column = mapping.get(err["loc"][0], err["loc"][0]) if err["loc"] else "?"
                problems.append(f"line {line_no}, column {column!r} ({field_path(err['loc'])}): {err['msg']}")
            continue
        targets.append(entry)
    if problems:
        raise ConfigError(path, problems)
    return targets


def _map_columns(path: Path, headers: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for header in headers:
        key = next((k for k, names in COLUMNS.items() if header.strip() in names), None)
        if key is None:
            raise ConfigError(path, [f"line 1: unknown column {header!r}; expected one of "
                                     + ", ".join(n for names in COLUMNS.values() for n in names[:2])])
        mapping[key] = header
    missing = [k for k in ("id", "name", "business", "urls") if k not in mapping]
    if missing:
        raise ConfigError(path, [f"line 1: missing column(s) {', '.join(missing)}"])
    return mapping


def _entry(row: dict, mapping: dict[str, str]) -> dict:
    entry: dict = {}
    for key, header in mapping.items():
        value = (row.get(header) or "").strip()
        if not value:
            continue
        if key in LISTS:
            entry[key] = [v for v in _SPLIT.split(value) if v]
        elif key == "business":
            entry[key] = BUSINESS_ZH.get(value, value.lower())
        elif key in ("max_pages", "max_depth") and value.isdigit():
            entry[key] = int(value)
        else:
            entry[key] = value
    return entry


def import_targets(config_file: Path, csv_file: Path) -> tuple[int, int]:
    """Merge CSV rows into the config by id; returns (added, updated). Atomic write."""
    entries = read_csv(csv_file)
    yaml = YAML()
    yaml.preserve_quotes = True
    document = yaml.load(config_file.read_text(encoding="utf-8")) if config_file.exists() else None
    document = document if document is not None else {}
    existing = document.setdefault("targets", [])
    by_id = {t.get("id"): i for i, t in enumerate(existing)}
    added = updated = 0
    for entry in entries:
        if entry["id"] in by_id:
            existing[by_id[entry["id"]]].update(entry)
            updated += 1
        else:
            existing.append(entry)
            added += 1
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    tmp = config_file.with_name(config_file.name + ".tmp")
    tmp.write_text(buffer.getvalue(), encoding="utf-8")
    try:
        load_config(tmp)  # never replace a good config with one that does not load
    except ConfigError:
        tmp.unlink()
        raise
    os.replace(tmp, config_file)
    return added, updated
