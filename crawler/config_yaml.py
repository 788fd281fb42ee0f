"""The YAML side of config errors: where each setting is written, and pydantic's
errors told in the words of someone who writes YAML rather than Python.

``crawler.config`` validates with pydantic; this module finds the line of every
field path, rejects what YAML would silently accept (a key given twice, an alias
of itself) and rewrites each error as ``line N: targets[3].urls[0]: expected …, got …``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from types import UnionType
from typing import Annotated, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


def alias_loop(node: yaml.Node | None, inside: frozenset[int] = frozenset()) -> int | None:
    """Line of a node reached again inside itself (``&t [*t]``): every walk of it would never end."""
    if node is None:
        return None
    if id(node) in inside:
        return node.start_mark.line + 1
    children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else (
        node.value if isinstance(node, yaml.SequenceNode) else [])
    inside = inside | {id(node)}
    for child in children:
        line = alias_loop(child, inside)
        if line is not None:
            return line
    return None


def duplicate_keys(node: yaml.Node | None, prefix: tuple = ()) -> list[str]:
    """Every key given twice in one mapping: YAML would silently keep the last one."""
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[tuple, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *anchor`` may be overridden; the anchor is checked where it is defined
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first_line:
                    problems.append(f"line {line}: {field_path(prefix + (key.value,))}: "
                                    f"duplicate key {key.value!r} (first given on line {first_line[key.tag, key.value]})")
                first_line.setdefault((key.tag, key.value), line)
            problems += duplicate_keys(value, prefix + (key.value,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += duplicate_keys(item, prefix + (i,))
    return problems


def line_index(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Map every field path in the YAML document to its 1-based line number."""
    index: dict[tuple, int] = {}
    if node is None:
        return index
    index[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = prefix + (key.value,)
            index.update(line_index(value, child))
            index[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index.update(line_index(item, prefix + (i,)))
    return index


def field_path(loc: tuple) -> str:
    """``('targets', 3, 'urls', 0)`` → ``targets[3].urls[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


EXPECTED = {
    "tuple_type": "a list",
    "list_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping of settings",
    "model_type": "a mapping of settings",
    "model_attributes_type": "a mapping of settings",
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}
"""Pydantic error types, in the words of someone who writes YAML rather than Python."""
BOUNDS = {"greater_than_equal": ("ge", "≥"), "greater_than": ("gt", ">"),
          "less_than_equal": ("le", "≤"), "less_than": ("lt", "<")}
"""Pydantic's numeric bound errors: the key of the bound in the error's context, and its sign."""


def field_errors(problems: list[tuple[tuple, str]]) -> ValidationError:
    """A ValidationError whose errors sit at the given field paths (relative to the field or
    model being validated), not at the model as a whole, so each gets its own line."""
    return ValidationError.from_exception_data("config", [
        InitErrorDetails(type=PydanticCustomError("value_error", "{why}", {"why": why}), loc=loc, input=None)
        for loc, why in problems
    ])


def follows_from(err: dict, errors: list[dict]) -> bool:
    """A list too short only because its bad items were dropped: the items' errors say it all."""
    n = len(err["loc"])
    return err["type"] == "too_short" and any(len(o["loc"]) > n and o["loc"][:n] == err["loc"] for o in errors)


def closest(value: str, known: Iterable[str], n: int = 1) -> list[str]:
    """Up to ``n`` of ``known`` close enough to ``value`` to be what was meant (difflib's
    ratio of 0.6 or more), closest first: the one rule behind every "did you mean"."""
    return difflib.get_close_matches(value, list(known), n=n)


def unknown_id(kind: str, value: str, known: Iterable[str], meant: str | None = None, how: str = "") -> str:
    """``unknown unit id 'polise': did you mean 'police'?``: the closest known id (``meant``
    if given, else ``closest``), or every known id when none is close, then ``how`` (e.g.
    how to add a new one)."""
    known = list(known)
    close = [meant] if meant else closest(value, known)
    if close:
        return f"unknown {kind} {value!r}: did you mean {close[0]!r}?"
    return f"unknown {kind} {value!r}; known: {', '.join(known) or 'none configured'}" + (f"; {how}" if how else "")


def as_written(value, text_expected: bool = False) -> str:
    """What was written: text and numbers are quoted back, except a number where text was
    expected, which is only named (it may be a password)."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number" if text_expected else _number(value)
    return "a list" if isinstance(value, (list, tuple)) else "a mapping"


def _number(value: float) -> str:
    """``0.0`` → ``0``: a bound or a value as it would be written in YAML."""
    return str(int(value) if isinstance(value, float) and value.is_integer() else value)


def _bools_as_numbers(root: type[BaseModel], raw, loc: tuple = ()) -> list[dict]:
    """Errors where YAML's true or false stands for a number: pydantic reads ``max_depth: yes`` as 1.

    Found from the declared types, not the validated values, so they are reported with every
    other error of the file at once.
    """
    if isinstance(raw, bool):
        kind = _declared_at(root, loc)
        if kind not in (int, float):
            return []
        return [{"type": "int_type" if kind is int else "float_type", "loc": loc, "msg": "", "input": raw}]
    if isinstance(raw, dict):
        items = raw.items()
    elif isinstance(raw, list):
        items = enumerate(raw)
    else:
        return []
    return [err for key, item in items for err in _bools_as_numbers(root, item, loc + (key,))]


def problems(errors: list[dict], raw, lines: dict[tuple, int], root: type[BaseModel]) -> list[str]:
    """Every problem of a config file, in file order, as ``describe`` words: pydantic's
    ``errors`` and the true or false given for a number. A misspelt required key
    (``url:`` for ``urls:``) is one line, not also "required setting is missing"."""
    errors = [dict(err, loc=_clean_loc(err["loc"])) for err in errors if not follows_from(err, errors)]
    given = {err["loc"] for err in errors}
    errors += [slip for slip in _bools_as_numbers(root, raw) if slip["loc"] not in given]
    missing = {err["loc"] for err in errors if err["type"] == "missing"}
    misspelt = {err["loc"]: _meant(root, err["loc"]) for err in errors
                if err["type"] == "extra_forbidden" and _meant(root, err["loc"]) in missing}
    told = []
    for err in errors:
        if err["type"] == "missing" and err["loc"] in misspelt.values():
            continue
        note = " (a required setting)" if err["type"] == "extra_forbidden" and err["loc"] in misspelt else ""
        told.append((_line_of(err["loc"], lines) or 0, describe(err, lines, root) + note))
    return [message for _, message in sorted(told, key=lambda t: t[0])]


def _meant(root: type[BaseModel], loc: tuple) -> tuple:
    """Where an unknown key was probably meant to go: its closest key in the same mapping."""
    return loc[:-1] + (_close_key(root, loc),)


def _unknown_key(root: type[BaseModel], loc: tuple) -> str:
    """An unknown key, with the closest key of the same mapping when one is close."""
    close = _close_key(root, loc)
    return f"unknown setting {loc[-1]!r}" + (f": did you mean {close!r}?" if close else "")


def _close_key(root: type[BaseModel], loc: tuple) -> str | None:
    """The key of the mapping at ``loc[:-1]`` closest to the unknown ``loc[-1]``, if one is close."""
    model = _model_at(root, loc[:-1])
    close = closest(str(loc[-1]), model.model_fields if model else ())
    return close[0] if close else None


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` under ``root``."""
    kind = _declared_at(root, loc)
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _declared_at(root: type[BaseModel], loc: tuple):
    """The type declared for the value at ``loc`` under ``root``, found through the fields' types; None if unknown."""
    kind: object = root
    for part in loc:
        kind = _unwrap(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(part)
            kind = field.annotation if field else None
        elif get_origin(kind) in (tuple, list, dict):  # tuple[X, ...], list[X], dict[str, X] → X
            kind = [arg for arg in get_args(kind) if arg is not Ellipsis][-1]
        else:
            return None
    return _unwrap(kind)


def _unwrap(kind):
    """``Annotated[X, ...]`` and ``X | None`` → ``X``."""
    while get_origin(kind) in (Annotated, Union, UnionType):
        args = [arg for arg in get_args(kind) if arg is not type(None)]
        if get_origin(kind) is not Annotated and len(args) != 1:
            return kind  # a choice of several types: no single model to name
        kind = args[0]
    return kind


def describe(err: dict, lines: dict[tuple, int], root: type[BaseModel]) -> str:
    """One pydantic error as ``line N: field.path: what was expected, got what``."""
    loc = _clean_loc(err["loc"])
    line = _line_of(loc, lines)
    where = f"line {line}: " if line else ""
    return f"{where}{field_path(loc)}: {explain(err, loc, root)}"


def _clean_loc(loc: tuple) -> tuple:
    """A pydantic error's location as a path in the YAML: validator and type steps dropped."""
    loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
    return tuple(p for p in loc if p not in ("str", "int", "bool", "float"))


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """The line of ``loc``, or of the nearest enclosing setting written in the file."""
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc)


SECRET_LIKE = re.compile(r"pass|secret|token|key|auth|user|_env$", re.IGNORECASE)
"""Keys whose value is not echoed in a hint: a number written there may be a password."""


def _quote_it(loc: tuple, value) -> str:
    """For digits where text was expected (a credit code, a phone number): YAML read them as a
    number, so say to quote them, with the digits when the key holds no secret. A number read as
    a float (``9.15e+17``) may have lost digits already, so it is not echoed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    key = next((str(part) for part in reversed(loc) if isinstance(part, str)), "value")
    if isinstance(value, float):
        return (f": YAML read it as a number with a decimal point or exponent, which may already have lost "
                f"digits; write the value in quotes exactly as it should be, e.g. {key}: \"…\"")
    shown = "…" if SECRET_LIKE.search(key) else str(value)
    return f": YAML reads unquoted digits as a number; write it in quotes, e.g. {key}: \"{shown}\""


def explain(err: dict, loc: tuple, root: type[BaseModel]) -> str:
    """What is wrong with the value at ``loc`` (under the model ``root``), in YAML words."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return _unknown_key(root, loc)
    if kind == "missing":
        return "required setting is missing"
    if kind == "literal_error":
        return f"expected {err['ctx']['expected']}, got {err.get('input')!r}"
    if kind in EXPECTED:
        got = as_written(err.get("input"), text_expected=kind == "string_type")
        return f"expected {EXPECTED[kind]}, got {got}" + (_quote_it(loc, err.get("input")) if kind == "string_type" else "")
    if kind in BOUNDS:
        bound, sign = BOUNDS[kind]
        return f"expected a number {sign} {_number(err['ctx'][bound])}, got {as_written(err.get('input'))}"
    if kind == "too_short":
        return f"expected at least {err['ctx']['min_length']} item(s)"
    return err["msg"].removeprefix("Value error, ")
