"""trafilatura's XPaths, rewritten to select the same elements with less work.

trafilatura finds boilerplate with XPaths such as
``.//*[self::div or self::section][re:test(@id|@class, 'nav|menu')]``, evaluated on every
page, several times. Three parts of them are slow in libxml2, and each has a rewrite here:

**Regex tests of attributes.** libxml2 calls ``re:test`` back into Python for every
candidate element, about 2 µs a call, even when the element has neither attribute: then lxml
tests the pattern on ''. ``re:test(@a|@b, 'p')`` becomes ``((@a or @b) and re:test(@a|@b,
'p'))`` when ``p`` cannot match the empty string. libxml2 evaluates ``and`` left to right and
stops at the first false operand, so the callback only runs where an attribute exists; where
none does, the original called ``re:test('', 'p')``, which is false for such a pattern. A
pattern matching '', a double-quoted argument or a call inside a string literal is left alone.
``contains()`` and ``starts-with()`` of an attribute (or of ``translate()`` of one) and a
non-empty literal are false on '' too, and get the same guard: they are cheaper than a
callback, but still cost more than the existence test on an element without the attribute.

**Tag tests on the self axis.** ``.//*[self::div or self::p]`` builds a node-set per name
test for every element of the page (~150 µs on a 300-element page for three names);
``(.//div|.//p)`` walks the tree once per name with libxml2's own name test (~20 µs). The
two select the same elements, and a union comes back in document order like a path, as long
as the predicates that follow do not depend on an element's position among its siblings
(``[1]``, ``position()``, ``last()``, or any other number): then the rewrite is not made. It is
made only where such a path starts an expression (the start of the XPath, or after ``(`` or
``|``) and its predicates end it or are followed by ``)``, ``|`` or a further step (``/``).

**Long ``or`` chains of attribute tests.** ``[@class='x' or ((@id or @class) and re:test(…))
or ((@style) and contains(…)) or …]`` looks attributes up once per disjunct, on every
element. When every disjunct is false on an element without the attributes it names (a
guarded call, ``@a = 'literal'``, ``@a`` alone), the predicate becomes ``[(@class or @id or
@style) and (…)]``: an element with none of them is decided by one short test. Made only
where the disjuncts look attributes up more often than that test does.

An XPath that uses a namespace prefix other than ``re``, or that no longer compiles once
rewritten, is left as it is. The rewritten XPath is compiled with lxml's defaults and ``re``
mapped to EXSLT's regular expressions, which is how trafilatura builds all of its XPaths;
lxml cannot tell us the arguments an XPath was built with, and a test checks trafilatura's
sources for others. Instructions of a worker's whole analysis of a benchmark page
(``benchmarks/worker_instructions.py``): the regex guard saved about 5 %, the tag-test
rewrite a further 8 % (104.5 → 96.3 M a page), the guard of ``contains()`` and
``starts-with()`` 2 % more (94.3 M), the leading existence test 3 % more (91.8 M).
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
    r"|(?:contains|starts-with)\(\s*(?:(?P<text_attrs>@[\w-]+(?:\s*\|\s*@[\w-]+)*)"
    r"|translate\(\s*(?P<translated>@[\w-]+(?:\s*\|\s*@[\w-]+)*)\s*,\s*'[^']*'\s*,\s*'[^']*'\s*\))"
    r"\s*,\s*'[^']+'\s*\)"
)
_PREFIX = re.compile(r"(?<![\w.-])([A-Za-z_][\w.-]*):(?=[A-Za-z_*])")  # h in h:div and in self::h:div
_SELF_NAMES = re.compile(  # a string literal matches first and is given back unchanged
    rf"(?P<literal>{_LITERAL})|(?P<axis>\.?//)\*\[\s*(?P<names>self::[\w-]+(?:\s+or\s+self::[\w-]+)*)\s*\]"
)
_NAME = re.compile(r"self::([\w-]+)")
# What may make a predicate's value a number, which would select by position: a function that
# returns a number; div or mod (also a child named so); a digit that does not end a name (h1);
# a minus that does not join two letters (data-id); a plus, a variable, a multiplication.
# Checked with string literals blanked out; it also refuses some predicates that are
# boolean, never the reverse.
_NUMBER_WORD = re.compile(
    r"\b(?:position|last|count|sum|number|string-length|floor|ceiling|round)\s*\("
    r"|(?<![\w:/@.-])(?:div|mod)(?![\w.-])"
)
_NUMBER_CHAR = re.compile(r"(?<![A-Za-z])\d|(?<![A-Za-z])-|-(?![A-Za-z])|[$+]|(?<![/:])\*")
# A disjunct that is false on an element without the attributes it names: a guarded call as
# made here (one and-chain, checked by ``_conjunction``), an attribute compared with a
# literal, an attribute alone.
_NEEDS_ATTRIBUTES = re.compile(
    rf"\(\((?P<guard>@[\w-]+(?:\s+or\s+@[\w-]+)*)\)\s+and\s+.*\)|(?P<compared>@[\w-]+)\s*=\s*(?:{_LITERAL})"
    r"|(?P<alone>@[\w-]+)",
    re.DOTALL,
)
_OR = re.compile(r"\sor\s")


def guarded(xpath: etree.XPath) -> etree.XPath:
    """The same XPath with the rewrites of the module docstring made where they apply, or ``xpath`` itself."""
    source = xpath.path
    if any(prefix != "re" for prefix in _PREFIX.findall(_without_literals(source))):
        return xpath
    rewritten = _hoisted(_SELF_NAMES.sub(_by_names, _ATTRIBUTE_TEST.sub(_guard_call, source)))
    if rewritten == source:
        return xpath
    try:
        return etree.XPath(rewritten, namespaces={"re": REGEXP_NS})
    except etree.XPathSyntaxError:
        return xpath


def guard_package(package: str) -> int:
    """Replace the XPaths that ``package``'s loaded modules hold by their ``guarded`` rewrites.

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
    if call.group("attrs") is None:  # contains() or starts-with() of a non-empty literal: false on ''
        return f"(({_exists(call)}) and {call.group(0)})"
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
    attrs = call.group("attrs") or call.group("text_attrs") or call.group("translated")
    return " or ".join(attr.strip() for attr in attrs.split("|"))


def _by_names(found: re.Match) -> str:
    """``(.//a|.//b)`` for ``.//*[self::a or self::b]`` (or ``//``) where that selects the same elements."""
    source, start, end = found.string, found.start(), found.end()
    if found.group("literal") or source[:start].rstrip()[-1:] not in ("", "(", "|"):
        return found.group(0)
    predicates, after = _predicates(source, end)
    if after is None or source[after:].lstrip()[:1] not in ("", ")", "|", "/"):
        return found.group(0)
    if any(_maybe_number(predicate) for predicate in predicates):
        return found.group(0)
    axis = found.group("axis")
    return "(" + "|".join(axis + name for name in _NAME.findall(found.group("names"))) + ")"


def _maybe_number(predicate: str) -> bool:
    text = _without_literals(predicate)
    return bool(_NUMBER_WORD.search(text) or _NUMBER_CHAR.search(text))


def _predicates(source: str, position: int) -> tuple[list[str], int | None]:
    """The predicates (``[...]``, contents only) that follow ``position``, and where they end.

    None for the end when a bracket or a string literal is never closed.
    """
    text, found, after = source[position:], [], 0
    for start, end in _outermost_brackets(text):
        if text[after:start].strip():
            break
        if end is None:
            return found, None
        found.append(text[start + 1:end])
        after = end + 1
    return found, len(source) - len(text[after:].lstrip())


def _hoisted(source: str) -> str:
    """``source`` with each outermost predicate ``[A or B ...]`` whose every disjunct needs one of
    a few attributes (``_NEEDS_ATTRIBUTES``) led by one test of them: ``[(@a or @b) and (A or B ...)]``.

    Such a predicate is false on an element that has none of them, so the test changes only
    the work; it is added where the disjuncts would look attributes up more often than it does.
    """
    parts, copied = [], 0
    for start, end in _outermost_brackets(source):
        if end is None:
            break
        parts += [source[copied:start + 1], _hoisted_predicate(source[start + 1:end])]
        copied = end
    return "".join(parts) + source[copied:]


def _outermost_brackets(text: str):
    """(index of ``[``, index of its ``]``) of each bracket not inside another or a string
    literal, in order; the ``]`` is None for one never closed."""
    depth = opened = 0
    for index, char in _outside_literals(text):
        if char == "[":
            opened = index if depth == 0 else opened
            depth += 1
        elif char == "]" and depth:
            depth -= 1
            if depth == 0:
                yield opened, index
    if depth:
        yield opened, None


def _hoisted_predicate(predicate: str) -> str:
    disjuncts = [disjunct.strip() for disjunct in _top_level_split(predicate, _OR)]
    names: list[str] = []
    lookups = 0
    for disjunct in disjuncts:
        found = _NEEDS_ATTRIBUTES.fullmatch(disjunct)
        if found is None or (found.group("guard") and not _conjunction(disjunct)):
            return predicate
        attrs = re.findall(r"@[\w-]+", found.group("guard") or found.group("compared") or found.group("alone"))
        lookups += len(attrs)
        names += [name for name in attrs if name not in names]
    if len(disjuncts) < 2 or lookups <= len(names):
        return predicate
    return f"({' or '.join(names)}) and ({predicate})"


def _conjunction(text: str) -> bool:
    """True when ``text`` is one parenthesised ``and`` chain: ``((@a) and f(@a))``, not
    ``((@a) and f(@a)) = (@b)`` nor ``((@a) and f(@a) or @b)``, which can be true without ``@a``."""
    depth = 0
    for index, char in _outside_literals(text):
        depth += (char in "([") - (char in ")]")
        if depth == 0:
            return index == len(text) - 1 and len(_top_level_split(text[1:-1], _OR)) == 1
    return False


def _top_level_split(text: str, operator: re.Pattern) -> list[str]:
    """``text`` cut at each ``operator`` outside brackets, parentheses and string literals."""
    depth, top = 0, set()
    for index, char in _outside_literals(text):
        depth += (char in "([") - (char in ")]")
        if depth == 0:
            top.add(index)
    pieces, position = [], 0
    for found in operator.finditer(text):
        if found.start() in top and found.end() - 1 in top:
            pieces.append(text[position:found.start()])
            position = found.end()
    return pieces + [text[position:]]


def _outside_literals(text: str):
    """(index, character) of each character of ``text`` that is not inside a string literal;
    the literal's quotes are given."""
    quote = None
    for index, char in enumerate(text):
        if quote is None:
            yield index, char
            if char in "'\"":
                quote = char
        elif char == quote:
            yield index, char
            quote = None


def _without_literals(source: str) -> str:
    return re.sub(_LITERAL, "''", source)
