"""Import the office's target spreadsheet (CSV) into the config's ``targets:`` list.

The spreadsheet may use English or Chinese column names and come from any of
Excel's exports: CSV as UTF-8 (with or without BOM) or GB18030 (Chinese Windows),
or "Unicode text" (UTF-16, tab-separated). Every row is validated as a Target
before anything is written, and errors name the CSV line and column, since the
operator fixes them in the spreadsheet. The config is rewritten with ruamel.yaml,
so comments and ordering survive, and replaced atomically.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from crawler.config import BUSINESS_TYPES, ConfigError, Target, parse_config
from crawler.config_yaml import explain, follows_from

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
WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
""".xlsx (zip) and .xls (OLE): a workbook given where its CSV export was meant."""
_SPLIT = re.compile(r"[;；,，\s|]+")


def read_csv(path: Path) -> list[dict]:
    """Rows as target mappings; raises ConfigError naming the CSV line, column and value."""
    text = _decode(path)
    header_line = text.partition("\n")[0]
    delimiter = "\t" if header_line.count("\t") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    targets, problems, first_line = [], [], {}
    try:
        header = next(reader, None)
        if header is None:
            raise ConfigError(path, ["the file is empty: expected a header row of column names"])
        columns = _map_columns(path, header)
        line = reader.line_num + 1  # a row is reported at its first physical line
        for cells in reader:
            entry, row_problems = _check_row(line, cells, header, columns)
            problems += row_problems
            if entry and entry["id"] in first_line:
                problems.append(f"line {line}, column {header[columns['id']]!r}: duplicate id {entry['id']!r} "
                                f"(first on line {first_line[entry['id']]})")
            elif entry:
                first_line[entry["id"]] = line
                targets.append(entry)
            line = reader.line_num + 1
    except csv.Error as e:
        raise ConfigError(path, [f"line {reader.line_num}: not readable as CSV: {e}"]) from None
    if problems:
        raise ConfigError(path, problems)
    return targets


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(path, [f"cannot read: {e.strerror}"]) from None
    if raw.startswith(WORKBOOK_MAGIC):
        raise ConfigError(path, ["this is an Excel workbook, not CSV: in Excel save it as \"CSV UTF-8\""])
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as e:
            raise ConfigError(path, [f"not valid UTF-16 despite its byte-order mark: {e.reason}"]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(path, [f"line {line}: byte 0x{raw[e.start]:02x} is neither UTF-8 nor GB18030 text: "
                                 "save the sheet as \"CSV UTF-8\""]) from None


def _map_columns(path: Path, header: list[str]) -> dict[str, int]:
    """Field name → column index; two columns for one field are an error, never a silent choice."""
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        if not name.strip():
            continue  # Excel exports columns that were once used as blank ones
        key = next((k for k, names in COLUMNS.items() if name.strip() in names), None)
        if key is None:
            raise ConfigError(path, [f"line 1: unknown column {name!r}; expected one of "
                                     + ", ".join(n for names in COLUMNS.values() for n in names[:2])])
        if key in columns:
            raise ConfigError(path, [f"line 1: columns {header[columns[key]]!r} and {name!r} both give "
                                     f"{key}: keep one of them"])
        columns[key] = index
    missing = [k for k in ("id", "name", "business", "urls") if k not in columns]
    if missing:
        raise ConfigError(path, [f"line 1: missing column(s) {', '.join(missing)}"])
    return columns


def _check_row(line: int, cells: list[str], header: list[str],
               columns: dict[str, int]) -> tuple[dict | None, list[str]]:
    """A valid target entry (None for a blank row), or the row's problems naming line and column."""
    named = set(columns.values())
    stray = [i for i, c in enumerate(cells) if c.strip() and i not in named]
    if stray:
        return None, [f"line {line}, column {stray[0] + 1}: value {_shown(cells[stray[0]])} under no column name"]
    cell = {key: (cells[i] if i < len(cells) else "").strip() for key, i in columns.items()}
    if not any(cell.values()):
        return None, []
    entry = _entry(cell)
    try:
        Target.model_validate(entry)
    except ValidationError as e:
        errors = e.errors()
        return None, [_describe(line, header[columns[err["loc"][0]]], cell[err["loc"][0]], err)
                      for err in errors if not follows_from(err, errors)]
    return entry, []


def _entry(cell: dict[str, str]) -> dict:
    entry: dict = {}
    for key, value in cell.items():
        if not value:
            continue
        if key in LISTS:
            entry[key] = [v for v in _SPLIT.split(value) if v]
        elif key == "business":
            entry[key] = BUSINESS_ZH.get(value, value.lower())
        elif key == "render":  # a spreadsheet capitalises: "Auto", "NEVER"
            entry[key] = value.lower()
        elif key in ("max_pages", "max_depth") and value.isdigit():
            entry[key] = int(value)
        else:
            entry[key] = value
    return entry


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _describe(line: int, column: str, value: str, err: dict) -> str:
    """One problem in the operator's words, with the cell as written (shortened when long)."""
    shown = _shown(value)
    if err["type"] == "missing":
        why = "empty, but required"
    elif err["loc"][0] == "business":
        why = f"expected one of {', '.join(BUSINESS_TYPES)} or {', '.join(BUSINESS_ZH)}, got {shown}"
    else:
        why = explain(err, err["loc"], Target)
        if "got " not in why:
            why += f", got {shown}"
    return f"line {line}, column {column!r}: {why}"


def import_targets(config_file: Path, csv_file: Path) -> tuple[int, int]:
    """Merge CSV rows into the config by id; returns (added, updated). Atomic write."""
    entries = read_csv(csv_file)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # no re-wrapping of long lines: the operator's layout and line numbers stay
    yaml.indent(mapping=2, sequence=4, offset=2)  # the README's layout: "  - id: ..." under targets
    text = _read(config_file)
    document = _load(yaml, config_file, text)
    if isinstance(document, dict) and document.get("targets") is None:
        given_empty = "targets" in document
        document["targets"] = CommentedSeq()
        if given_empty:
            text = _dump(yaml, document)  # ``targets:`` left empty is taken as an empty list
    parse_config(text, config_file)  # the config's own problems first, at its own lines
    existing = document["targets"]
    by_id = {t.get("id"): i for i, t in enumerate(existing)}
    added = updated = 0
    for entry in entries:
        if entry["id"] in by_id:
            existing[by_id[entry["id"]]].update(entry)
            updated += 1
        else:
            existing.append(entry)
            added += 1
    text = _dump(yaml, document)
    try:
        parse_config(text, config_file)  # never replace a good config with one that does not load
    except ConfigError as e:
        problems = [f"not changed: after the import it would not load: {p}" for p in e.problems]
        raise ConfigError(config_file, problems) from None
    _replace(config_file, text)
    return added, updated


def _read(path: Path) -> str:
    """The config's text; a missing file is an empty config."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        return ""
    except IsADirectoryError:
        raise ConfigError(path, ["is a directory: expected the YAML config file"]) from None
    except OSError as e:
        raise ConfigError(path, [f"cannot read: {e.strerror}"]) from None
    except UnicodeDecodeError as e:
        line = e.object.count(b"\n", 0, e.start) + 1
        raise ConfigError(path, [f"line {line}: byte 0x{e.object[e.start]:02x} is not UTF-8: "
                                 "save the file as UTF-8"]) from None


def _load(yaml: YAML, path: Path, text: str):
    """The config as ruamel's round-trip document, which keeps comments for the rewrite."""
    try:
        document = yaml.load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}invalid YAML: {getattr(e, 'problem', None) or e}"]) from None
    return CommentedMap() if document is None else document


def _dump(yaml: YAML, document) -> str:
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    return buffer.getvalue()


def _replace(path: Path, text: str) -> None:
    """Write a temporary file beside the config, then rename it over: readers see old or new, never half."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            shutil.copymode(path, tmp)  # mkstemp makes it private; keep what the operator chose
        os.replace(tmp, path)
    except OSError as e:
        raise ConfigError(path, [f"cannot write: {e.strerror}"]) from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
