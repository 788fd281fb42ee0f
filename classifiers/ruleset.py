"""Load and validate rule files (YAML) into immutable :class:`Rule` and cue objects.

Rules are data so that an analyst can add wording without touching code: the bundled
files live in ``classifiers/rules/`` and a caller may pass extra files (an operator's own
lexicon). Every file is validated on load; a problem raises :class:`RuleFileError`
naming the file, the 1-based line and what is wrong, e.g.
``rules/mine.yaml:12: rule 'gr.x': weight must be a number in (0, 1], got 'high'``.

File shape (all keys optional except ``rules`` entries' ``id`` and one of
``phrases``/``pattern``)::

    category: guaranteed_return      # default for the rules below
    threshold: 1.0                   # summed weight needed to fire (per category)
    rules:
      - id: gr.principal_interest    # unique over all loaded files
        weight: 1.0                  # 0 < w <= 1
        scope: promo                 # promo: withheld when a report quotes it; any: always;
                                     # absorb: a longer non-risk term (逾期率) that swallows
                                     # shorter hits of its category inside it and never counts
        phrases: [保本保息, 保本付息] # literal terms, matched with Aho-Corasick
        pattern: '本息.{0,3}保障'     # or a regular expression (only where structure matters)
        requires: [本息]              # pattern only: literals one of which every match contains;
                                     # the expression is skipped on texts without any (speed)
        with_any: [平台, 公司]         # one of these must occur in the same clause
        negatable: true              # shared negation cues may cancel it
    cues:                            # shared cue lists, merged over all files
      negation_near: [不, 非]
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from .normalize import normalize_term
from .taxonomy import CATEGORIES, PROMOTIONAL

logger = logging.getLogger(__name__)

RULES_DIR = Path(__file__).resolve().parent / "rules"
CUE_KINDS = (
    "negation_near", "negation_clause", "compliance", "generic", "reporting",
    "reporting_strong", "regulator", "promotional", "promised", "borrower", "shopping", "attribution",
)
_RULE_KEYS = {"id", "category", "weight", "scope", "phrases", "pattern", "with_any",
              "without_any", "negatable", "requires", "note"}
_FILE_KEYS = {"category", "threshold", "rules", "cues", "note"}
_ID = re.compile(r"^[a-z][a-z0-9_.-]*$")


class RuleFileError(ValueError):
    """A rule file is unreadable or invalid: ``path``, 1-based ``line`` and ``message``."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path, self.line, self.message = str(path), line, message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Rule:
    """One validated rule; phrases/with_any/without_any are already normalised."""

    id: str
    category: str
    weight: float
    scope: str
    phrases: tuple[str, ...]
    pattern: re.Pattern | None
    with_any: tuple[str, ...]
    without_any: tuple[str, ...]
    negatable: bool
    source: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    thresholds: dict[str, float]
    cues: dict[str, tuple[str, ...]]


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader whose mappings remember the line each key sits on.

    libyaml's parser when PyYAML was built with it: the bundled rules are read by every
    process that classifies or tokenizes (CLI commands, each worker), and the pure-Python
    parser took about 0.1 s per read.
    """


class _Map(dict):
    line: int = 0
    key_lines: dict


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read(path: Path) -> _Map:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleFileError(path, None, f"cannot read rule file: {e}") from e
    try:
        data = yaml.load(raw, Loader=_LineLoader)  # noqa: S506 - a subclass of (C)SafeLoader
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise RuleFileError(path, line, f"invalid YAML: {e.problem or e}") from e
    except yaml.YAMLError as e:
        raise RuleFileError(path, None, f"invalid YAML: {e}") from e
    if not isinstance(data, _Map):
        raise RuleFileError(path, 1, "top level must be a mapping with 'rules' and/or 'cues'")
    return data


def _terms(path: Path, line: int, what: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise RuleFileError(path, line, f"{what} must be a non-empty list of strings")
    out = []
    for v in value:
        if not isinstance(v, (str, int)) or not str(v).strip():
            raise RuleFileError(path, line, f"{what} contains an empty or non-string item: {v!r}")
        term = normalize_term(str(v))
        if not term:
            raise RuleFileError(path, line, f"{what} item {v!r} is empty after normalisation")
        out.append(term)
    return tuple(dict.fromkeys(out))


def _rule(path: Path, item: Any, default_cat: str | None) -> Rule:
    if not isinstance(item, _Map):
        raise RuleFileError(path, None, f"each rule must be a mapping, got {item!r}")
    line = item.line
    rid = item.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise RuleFileError(path, line, f"rule needs an 'id' of lower-case ascii, got {rid!r}")
    where = f"rule {rid!r}"
    unknown = set(item) - _RULE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise RuleFileError(path, item.key_lines[key], f"{where}: unknown key {key!r}")
    kl = lambda k: item.key_lines.get(k, line)  # noqa: E731
    cat = item.get("category", default_cat)
    if cat not in CATEGORIES:
        raise RuleFileError(path, kl("category"), f"{where}: unknown category {cat!r}; "
                            f"expected one of {', '.join(CATEGORIES)}")
    weight = item.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 1:
        raise RuleFileError(path, kl("weight"), f"{where}: weight must be a number in (0, 1], got {weight!r}")
    scope = item.get("scope", "promo" if cat in PROMOTIONAL else "any")
    if scope not in ("promo", "any", "absorb"):
        raise RuleFileError(path, kl("scope"), f"{where}: scope must be 'promo', 'any' or 'absorb', got {scope!r}")
    if ("phrases" in item) == ("pattern" in item):
        raise RuleFileError(path, line, f"{where}: give exactly one of 'phrases' or 'pattern'")
    phrases, pattern = (), None
    if "phrases" in item:
        phrases = _terms(path, kl("phrases"), f"{where}: phrases", item["phrases"])
    else:
        if not isinstance(item["pattern"], str) or not item["pattern"]:
            raise RuleFileError(path, kl("pattern"), f"{where}: pattern must be a non-empty string")
        try:
            pattern = re.compile(item["pattern"])
        except re.error as e:
            raise RuleFileError(path, kl("pattern"), f"{where}: bad regular expression: {e}") from e
    with_any = _terms(path, kl("with_any"), f"{where}: with_any", item["with_any"]) if "with_any" in item else ()
    without = _terms(path, kl("without_any"), f"{where}: without_any", item["without_any"]) if "without_any" in item else ()
    requires = ()
    if "requires" in item:
        if pattern is None:
            raise RuleFileError(path, kl("requires"), f"{where}: 'requires' only goes with 'pattern'")
        requires = _terms(path, kl("requires"), f"{where}: requires", item["requires"])
    negatable = item.get("negatable", True)
    if not isinstance(negatable, bool):
        raise RuleFileError(path, kl("negatable"), f"{where}: negatable must be true or false")
    return Rule(rid, cat, float(weight), scope, phrases, pattern, with_any, without, negatable, str(path), requires)


def _file(path: Path, ids: dict[str, str], rules: list, thresholds: dict, cues: dict) -> None:
    data = _read(path)
    unknown = set(data) - _FILE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise RuleFileError(path, data.key_lines[key], f"unknown top-level key {key!r}")
    default_cat = data.get("category")
    if default_cat is not None and default_cat not in CATEGORIES:
        raise RuleFileError(path, data.key_lines["category"], f"unknown category {default_cat!r}")
    if "threshold" in data:
        t = data["threshold"]
        if default_cat is None or isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0:
            raise RuleFileError(path, data.key_lines["threshold"],
                                "threshold needs a top-level category and a positive number")
        thresholds[default_cat] = float(t)
    items = data.get("rules", [])
    if not isinstance(items, list):
        raise RuleFileError(path, data.key_lines.get("rules"), "'rules' must be a list")
    for item in items:
        rule = _rule(path, item, default_cat)
        if rule.id in ids:
            raise RuleFileError(path, item.line, f"duplicate rule id {rule.id!r} (first in {ids[rule.id]})")
        ids[rule.id] = str(path)
        rules.append(rule)
    for kind, value in (data.get("cues") or {}).items():
        if kind not in CUE_KINDS:
            raise RuleFileError(path, data["cues"].key_lines[kind],
                                f"unknown cue list {kind!r}; expected one of {', '.join(CUE_KINDS)}")
        cues.setdefault(kind, []).extend(_terms(path, data["cues"].key_lines[kind], f"cues.{kind}", value))


VERDICT_MODULES = ("__init__.py", "context.py", "engine.py", "names.py", "normalize.py", "ruleset.py",
                   "taxonomy.py", "verdict.py", "yields.py")
"""The package's modules a verdict comes from (the engine and what it imports; a test keeps
this list whole): the search tokenizer, the corpus evaluation and the CLI are not."""


def fingerprint(extra: Iterable[str | Path] = (), yield_ceiling: float = 10.0) -> str:
    """A digest of everything a verdict depends on besides the text: the code of
    ``VERDICT_MODULES``, the bundled rule files, the ``extra`` rule files and the yield ceiling.

    A caller that stores verdicts keeps it beside them and classifies a stored text again
    when it differs: the rules or the code changed, so the stored verdict may be stale.
    An extra file that cannot be read raises OSError, as ``load_rules`` would.
    """
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"yield_ceiling={float(yield_ceiling)!r}".encode())
    code = [package / name for name in VERDICT_MODULES]
    for path in [*code, *sorted(RULES_DIR.glob("*.yaml")), *(Path(p) for p in extra)]:
        content = path.read_bytes()
        digest.update(b"\0%d\0" % len(content) + content)
    return digest.hexdigest()


def load_rules(extra: Iterable[str | Path] = ()) -> RuleSet:
    """Load the bundled rule files, then ``extra`` ones, validating everything."""
    paths = sorted(RULES_DIR.glob("*.yaml")) + [Path(p) for p in extra]
    ids: dict[str, str] = {}
    rules: list[Rule] = []
    thresholds: dict[str, float] = {}
    cues: dict[str, list[str]] = {}
    for path in paths:
        _file(path, ids, rules, thresholds, cues)
    logger.debug("loaded %d rules from %d files", len(rules), len(paths))
    return RuleSet(tuple(rules), thresholds, {k: tuple(dict.fromkeys(cues.get(k, ()))) for k in CUE_KINDS})
