"""Rewritten XPaths select what the originals select, and extraction is unchanged."""

import json
import re
import subprocess
import sys
from pathlib import Path

import lxml.html
import pytest
from lxml import etree

import crawler.extract  # noqa: F401  (importing it guards trafilatura's XPaths)
from crawler.xpath_guard import REGEXP_NS, guard_package, guarded

ROOT = Path(__file__).parent.parent
PAGES = sorted((ROOT / "tests" / "data" / "pages").glob("*.html")) + sorted((ROOT / "crawler" / "demo" / "sites").rglob("*.html"))

DOCUMENT = lxml.html.document_fromstring("""
<html><body>
  <div>plain</div>
  <div id="main-nav">id only</div>
  <div class="share-bar">class only</div>
  <div class="content" id="footer">class first, then id</div>
  <div id="content" class="footer">id first, then class</div>
  <div class="">empty class</div>
  <div class="" id="nav-3">empty class first, id second</div>
  <div id="NAVIGATION">upper case</div>
  <section style="display: hidden">style</section>
  <p class="x"><span id="nav-2">nested</span></p>
</body></html>
""")


LED = re.compile(r"\[\(@[\w-]+(?: or @[\w-]+)*\) and \(")  # a predicate led by the existence test


def xpath(source: str) -> etree.XPath:
    return etree.XPath(source, namespaces={"re": REGEXP_NS})


@pytest.mark.parametrize("source", [
    ".//*[re:test(@id|@class, 'nav|footer')]",
    ".//*[re:test(@class|@id, 'nav|footer')]",  # the same union spelt the other way round
    ".//div[re:test(@id, '^main') or re:test(@class, 'share')]",
    ".//*[re:test(@id, 'navigation', 'i')]",
    ".//*[self::div or self::section][re:test(@id|@style, 'hidden')]",
    ".//*[not(re:test(@class, 'share'))]",
    ".//*[re:test(@id|@class, 'nav')][not(.//span) or re:test(@id, 'nav')]",
    ".//*[contains(@class, 'share')]",
    ".//*[starts-with(@id|@class, 'nav')]",
    ".//*[contains(translate(@id, 'NAV', 'nav'), 'nav')]",
    ".//*[contains(@style, 'hidden') or contains(@class, 'content')]",
])
def test_guarded_xpath_selects_the_same_elements(source):
    original = xpath(source)
    guard = guarded(original)
    assert guard is not original and re.search(r"\) and (re:test|contains|starts-with)\(", guard.path)
    assert guard(DOCUMENT) == original(DOCUMENT)


@pytest.mark.parametrize("source", [
    ".//*[self::div or self::p]",
    ".//*[self::section or self::p or self::div][@class or @style]",
    ".//*[ self::div\n        or self::span ][not(.//span)][@id]",  # trafilatura's layout: spaces, new lines
    "//*[self::span or self::section]",
    "(.//*[self::div or self::p][@class])[1]",  # a position outside the parentheses: document order
    ".//*[self::div]|.//*[self::p or self::span][@id]",
    ".//*[self::div or self::p][contains(@class, '1')]",  # a digit inside a string literal
    ".//*[self::div or self::p][not(.//h1)]",  # a digit inside a name
    "//*[self::p or self::div][@class]//span[@id]",  # further steps
    ".//*[self::p or self::div]/span",
])
def test_tag_tests_become_unions_that_select_the_same_elements(source):
    original = xpath(source)
    rewritten = guarded(original)
    assert rewritten is not original and "*[self::" not in rewritten.path and "*[ self::" not in rewritten.path
    assert rewritten(DOCUMENT) == original(DOCUMENT)


@pytest.mark.parametrize("source", [
    ".//*[self::div or self::p][1]",  # the first match among each parent's children, not the first of all
    ".//*[self::div or self::p][@class][2]",
    ".//*[self::div or self::p][position() < 3]",
    ".//*[self::div or self::p][last()]",
    ".//*[self::div or self::p][count(.//span)]",  # a number: a position
    ".//*[self::div or self::p][string-length(@class) - 1]",
    ".//*[self::div or self::p][.-1]",  # a minus right after the context node
    ".//*[self::div or self::p][..-1]",
    ".//*[self::div or self::p][. div--1]",
    ".//*[self::div or self::p][.5]",  # a number without a leading digit
    ".//*[self::div or self::p][@n * 1]",
    "./body//*[self::div or self::p]",  # a step before
    ".//*[@title = './/*[self::div or self::p]']",  # inside a string literal
])
def test_tag_tests_are_left_alone_where_a_union_could_select_differently(source):
    original = xpath(source)
    assert guarded(original) is original


@pytest.mark.parametrize("source", [
    ".//*[@class='content' or @id='footer' or @class='share-bar']",
    ".//*[contains(@class, 'nav') or contains(@id, 'nav') or starts-with(@class, 'share') or @style]",
    ".//div[re:test(@id, 'nav') or re:test(@class, 'share') or @id='content']",
    "(.//*[self::div or self::section][@id='x' or @class='content' or re:test(@id|@style, 'hidden')])[1]",
    ".//*[@class='a or b' or @id='nav]' or @class='(x' or @class=\"it's\"]",  # literals that look like syntax
])
def test_attribute_predicates_are_led_by_one_existence_test(source):
    original = xpath(source)
    rewritten = guarded(original)
    assert LED.search(rewritten.path)
    assert rewritten(DOCUMENT) == original(DOCUMENT)


@pytest.mark.parametrize("source", [
    ".//*[@class='x' or @id='y' or not(@style)]",  # true without attributes
    ".//*[@class or @id or .//span]",
    ".//*[@class != 'x' or @id != 'y' or @class != 'z']",
    ".//*[@id='a' or @class='b']",  # one lookup each already
    # (false = (@title)) is true on an element with neither attribute: the guard does not enclose it all
    ".//*[((@id) and contains(@id, 'q')) = (@title) or @class='x' or @class='y']",
    # and binds tighter than or: ((@id) and f(@id)) or @style, true on an element with a style only
    ".//*[((@id) and contains(@id, 'q') or @style) or @class='x' or @class='y']",
])
def test_predicates_true_without_attributes_are_not_led_by_an_existence_test(source):
    original = xpath(source)
    rewritten = guarded(original)
    assert not LED.search(rewritten.path)
    assert rewritten(DOCUMENT) == original(DOCUMENT)


def test_long_attribute_chains_of_trafilatura_are_led_by_an_existence_test():
    from trafilatura import xpaths

    chains = xpaths.OVERALL_DISCARD_XPATH + xpaths.BODY_XPATH[:1]
    assert all(LED.search(xpath.path) for xpath in chains)


def test_a_test_of_the_empty_literal_is_left_alone():
    original = xpath(".//div[contains(@class, '') or starts-with(@id, '')]")
    assert guarded(original) is original
    assert len(original(DOCUMENT)) == len(DOCUMENT.findall(".//div"))


def test_a_pattern_that_matches_the_empty_string_is_left_alone():
    # re:test on an element without the attribute tests '': here that is true, so no guard may skip it.
    original = xpath(".//div[re:test(@class, 'share|')]")
    assert guarded(original) is original
    assert len(original(DOCUMENT)) == len(DOCUMENT.findall(".//div"))


@pytest.mark.parametrize("source", [
    './/*[re:test(@class, "share")]',  # double quotes are not rewritten
    ".//*[re:test(string(@class), 'share')]",  # not a bare attribute
    ".//*[re:test(@class, 'share(')]",  # not a valid pattern
    """.//*[@title = "re:test(@id, 'z')"]""",  # inside a string literal
    ".//*[contains(@class, '')]",  # true on '' as well: every element
    ".//*[contains(concat(@class, 'x'), 'x')]",  # not an attribute
])
def test_other_calls_are_left_alone(source):
    original = xpath(source)
    assert guarded(original) is original


@pytest.mark.parametrize("source", [
    ".//h:div[re:test(@id, 'nav')]",
    ".//*[self::h:div][re:test(@id, 'nav')]",
])
def test_an_xpath_with_another_namespace_prefix_is_left_alone(source):
    """Its rebuilt copy would only know the re prefix and fail on every page."""
    original = etree.XPath(source, namespaces={"re": REGEXP_NS, "h": "http://www.w3.org/1999/xhtml"})
    assert guarded(original) is original


def test_trafilatura_builds_its_xpaths_as_the_guard_rebuilds_them():
    """lxml cannot say how an XPath was built: the guard assumes defaults plus re → EXSLT regexps."""
    import trafilatura

    sources = "".join(path.read_text(encoding="utf-8") for path in Path(trafilatura.__file__).parent.glob("*.py"))
    for argument in ("smart_strings", "extensions=", "regexp="):
        assert argument not in sources
    assert set(re.findall(r"namespaces=(\{[^}]*\})", sources)) <= {'{"re": REGEXP_NS}', '{"re": "http://exslt.org/regular-expressions"}'}
    assert 'REGEXP_NS = "http://exslt.org/regular-expressions"' in sources


def test_guarding_twice_changes_nothing():
    once = guarded(xpath(".//*[re:test(@id|@class, 'nav')]"))
    assert guarded(once) is once
    assert guard_package("trafilatura") == 0  # crawler.extract already guarded it


def test_every_attribute_test_of_trafilatura_is_guarded():
    """If a trafilatura upgrade writes its XPaths differently, the guard (and its speed) is lost here first."""
    calls = guards = 0
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] != "trafilatura":
            continue
        for value in vars(module).values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, etree.XPath):
                    calls += len(re.findall(r"(?:re:test|contains|starts-with)\((?:translate\()?@", item.path))
                    guards += len(re.findall(r"\) and (?:re:test|contains|starts-with)\((?:translate\()?@", item.path))
    assert calls > 60 and guards == calls


def test_tag_tests_of_trafilatura_become_unions_except_before_a_position():
    """If a trafilatura upgrade writes them differently, the rewrite (and its speed) is lost here first."""
    sources = {item.path for name, module in list(sys.modules.items()) if name.split(".")[0] == "trafilatura"
               for value in vars(module).values() for item in (value if isinstance(value, list) else [value])
               if isinstance(item, etree.XPath)}
    unions = [source for source in sources if re.search(r"\(\.?//[\w-]+\|", source)]
    left = [source for source in sources if re.search(r"\*\[\s*self::", source)]
    assert len(unions) >= 20
    assert left and all(re.search(r"\]\s*\[\d+\]", source) for source in left)



EXTRACTION = """
import json, sys
from pathlib import Path
import lxml.html, trafilatura

def run(path):  # trafilatura's defaults with comments; crawler.extract's options, plus metadata (title XPaths)
    tree = lxml.html.document_fromstring(Path(path).read_bytes())
    defaults = trafilatura.bare_extraction(tree, url="http://site.test/", include_comments=True)
    patrol = trafilatura.bare_extraction(tree, url="http://site.test/", fast=True, include_comments=False,
                                         include_tables=True, with_metadata=True)
    return [None if doc is None else [doc.title, doc.text, doc.comments, doc.date, doc.author]
            for doc in (defaults, patrol)]
"""


GUARDS = "sum(x.path.count(') and re:test(') for x in trafilatura.xpaths.OVERALL_DISCARD_XPATH)"


def test_trafilatura_extracts_the_same_text_with_and_without_the_guard():
    """Saved and demo pages, extracted here and in a fresh process that never imported the guard."""
    here: dict = {}
    exec(EXTRACTION, here)
    guarded_results = [here["run"](page) for page in PAGES]
    unguarded = subprocess.run(
        [sys.executable, "-c", EXTRACTION + f"print({GUARDS}); print(json.dumps([run(p) for p in sys.argv[1:]]))",
         *map(str, PAGES)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    guards_there, results_there = unguarded.stdout.splitlines()
    assert guards_there == "0" and eval(GUARDS, here) > 0
    assert json.loads(results_there) == guarded_results
    for options in (0, 1):
        assert sum(1 for result in guarded_results if result[options] and result[options][1]) > len(PAGES) // 2
