"""trafilatura's regex XPaths, made to skip elements that lack the attribute they test.

trafilatura finds boilerplate with XPaths such as ``.//div[re:test(@id|@class, 'nav|menu')]``.
libxml2 calls ``re:test`` back into Python for every candidate element, about 2 µs a call,
even when the element has neither attribute: then lxml tests the pattern on ''. Most
elements of a page have no id or class; skipping those callbacks saves about 5 % of a
worker's whole analysis of a benchmark page (instructions counted with callgrind).

``guarded`` rewrites ``re:test(@a|@b, 'p')`` into ``((@a or @b) and re:test(@a|@b, 'p'))``
when ``p`` cannot match the empty string. libxml2 evaluates ``and`` left to right and stops
at the first false operand, so the callback only runs where an attribute exists; where none
does, the original called ``re:test('', 'p')``, which is false for such a pattern. The nodes
selected are therefore the same. Any other call (a pattern matching '', a double-quoted
argument, a namespace prefix other than ``re``) is left as it is.
"""

from __future__ import annotations

import re
import sys

from lxml import etree

REGEXP_NS = "http://exslt.org/regular-expressions"
_ATTRIBUTE_TEST = re.compile(
    r"re:test\(\s*(?P<attrs>@[\w-]+(?:\s*\|\s*@[\w-]+)*)\s*,\s*'(?P<pattern>[^']*)'\s*(?:,\s*'(?P<flags>[^']*)'\s*)?\)"
)
_PREFIX = re.compile(r"(?<![\w.:-])([A-Za-z_][\w.-]*):(?=[A-Za-z_*])")


def guarded(xpath: etree.XPath) -> etree.XPath:
    """The same XPath with each attribute ``re:test`` behind an existence test, or ``xpath`` itself."""
    source = xpath.path
    if any(prefix != "re" for prefix in _PREFIX.findall(_without_literals(source))):
        return xpath
    rewritten = _ATTRIBUTE_TEST.sub(_guard_call, source)
    if rewritten == source:
        return xpath
    return etree.XPath(rewritten, namespaces={"re": REGEXP_NS})


def guard_package(package: str) -> int:
    """Replace the regex XPaths that ``package``'s loaded modules hold by guarded ones.

    Covers module attributes that are an XPath or a list of XPaths (lists are changed
    in place, so every module that imported the list sees the change). Returns how many
    XPaths were replaced; a second call replaces none.
    """
    replacements: dict[int, tuple[etree.XPath, etree.XPath]] = {}  # the original kept alive so its id stays unique

    def replacement(xpath: etree.XPath) -> etree.XPath:
        if id(xpath) not in replacements:
            replacements[id(xpath)] = (xpath, guarded(xpath))
        return replacements[id(xpath)][1]

    modules = [m for name, m in list(sys.modules.items()) if m is not None and (name == package or name.startswith(package + "."))]
    replaced = 0
    for module in modules:
        for name, value in list(vars(module).items()):
            if isinstance(value, etree.XPath):
                new = replacement(value)
                if new is not value:
                    setattr(module, name, new)
                    replaced += 1
            elif isinstance(value, list) and value and all(isinstance(x, etree.XPath) for x in value):
                new_list = [replacement(x) for x in value]
                changed = sum(new is not old for new, old in zip(new_list, value))
                if changed:
                    value[:] = new_list
                    replaced += changed
    return replaced


def _guard_call(call: re.Match) -> str:
    if _already_guarded(call):
        return call.group(0)
    flags = re.IGNORECASE if "i" in (call.group("flags") or "") else 0
    try:
        matches_empty = re.compile(call.group("pattern"), flags).search("") is not None
    except re.error:
        return call.group(0)
    if matches_empty:
        return call.group(0)
    return f"(({_exists(call)}) and {call.group(0)})"


def _already_guarded(call: re.Match) -> bool:
    """True when the call is already the right operand of its own guard (a second pass)."""
    return call.string[: call.start()].endswith(f"(({_exists(call)}) and ")


def _exists(call: re.Match) -> str:
    return " or ".join(attr.strip() for attr in call.group("attrs").split("|"))


def _without_literals(source: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", source)
