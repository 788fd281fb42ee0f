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
argument, text inside a string literal) is left as it is, and so is a whole XPath that uses a
namespace prefix other than ``re`` or that no longer compiles once rewritten.

The rewritten XPath is compiled with lxml's defaults and ``re`` mapped to EXSLT's regular
expressions, which is how trafilatura builds all of its XPaths; lxml cannot tell us the
arguments an XPath was built with, and a test checks trafilatura's sources for others.
"""

from __future__ import annotations

import re
import sys

from lxml import etree

REGEXP_NS = "http://exslt.org/regular-expressions"
_LITERAL = r"\"[^\"]*\"|'[^']*'"  # an XPath string literal: no escapes inside
_ATTRIBUTE_TEST = re.compile(  # a string literal matches first and is given back unchanged
    rf"(?P<literal>{_LITERAL})"
    r"|re:test\(\s*(?P<attrs>@[\w-]+(?:\s*\|\s*@[\w-]+)*)\s*,\s*'(?P<pattern>[^']*)'\s*(?:,\s*'(?P<flags>[^']*)'\s*)?\)"
)
_PREFIX = re.compile(r"(?<![\w.-])([A-Za-z_][\w.-]*):(?=[A-Za-z_*])")  # h in h:div and in self::h:div


def guarded(xpath: etree.XPath) -> etree.XPath:
    """The same XPath with each attribute ``re:test`` behind an existence test, or ``xpath`` itself."""
    source = xpath.path
    if any(prefix != "re" for prefix in _PREFIX.findall(_without_literals(source))):
        return xpath
    rewritten = _ATTRIBUTE_TEST.sub(_guard_call, source)
    if rewritten == source:
        return xpath
    try:
        return etree.XPath(rewritten, namespaces={"re": REGEXP_NS})
    except etree.XPathSyntaxError:
        return xpath


def guard_package(package: str) -> int:
    """Replace the regex XPaths that ``package``'s loaded modules hold by guarded ones.

    Covers module attributes that are an XPath or a list of XPaths (lists are changed
    in place, so every module that imported the list sees the change). Returns how many
    distinct XPaths were replaced; a second call replaces none.
    """
    replacements: dict[etree.XPath, etree.XPath] = {}  # XPath objects hash by identity

    def replacement(xpath: etree.XPath) -> etree.XPath:
        if xpath not in replacements:
            replacements[xpath] = guarded(xpath)
        return replacements[xpath]

    modules = [module for name, module in list(sys.modules.items())
               if module is not None and (name == package or name.startswith(package + "."))]
    for module in modules:
        for name, value in list(vars(module).items()):
            if isinstance(value, etree.XPath):
                setattr(module, name, replacement(value))
            elif isinstance(value, list) and value and all(isinstance(x, etree.XPath) for x in value):
                value[:] = [replacement(x) for x in value]
    return sum(new is not old for old, new in replacements.items())


def _guard_call(call: re.Match) -> str:
    if call.group("literal") or _already_guarded(call):
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
    return re.sub(_LITERAL, "''", source)
