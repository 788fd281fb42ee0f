"""Extraction on saved pages, with the expected output stored next to each page."""

import json
from pathlib import Path

import lxml.html
import pytest
from scrapy.http import HtmlResponse, Request
from w3lib.encoding import html_body_declared_encoding

import crawler.extract as extract_module
from crawler.extract import decode_html, extract, fingerprint, language
from crawler.items import flat_headers
from spiders.pages import is_html, page_item

PAGES = Path(__file__).parent / "data" / "pages"


@pytest.mark.parametrize("page", sorted(PAGES.glob("*.html")), ids=lambda p: p.stem)
def test_saved_page_extracts_as_expected(page):
    expected = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
    result = extract(page.read_bytes(), expected["encoding"], "http://site.test/" + page.name)
    assert result.title == expected["title"]
    assert result.text == expected["text"]
    assert result.published == expected["published"]
    assert result.language == expected["language"]
    assert result.used_fallback == expected["used_fallback"]


def test_scrapy_detects_gbk_from_meta_and_the_item_keeps_the_bytes():
    body = (PAGES / "gbk_meta_only.html").read_bytes()
    response = HtmlResponse(
        "http://site.test/a", body=body, headers={"Content-Type": "text/html"},
        request=Request("http://site.test/a"),
    )
    item = page_item(response, "t1", depth=1)
    assert item.encoding in ("gbk", "gb18030")
    assert item.body == body and item.headers["content-type"] == "text/html"
    assert "承诺保本保息" in extract(item.body, item.encoding, item.url).text


def test_gb2312_label_decodes_gbk_only_characters():
    # 镕 is in GBK but not in GB2312: pages labelled gb2312 routinely use it.
    assert decode_html("朱镕基".encode("gbk"), "gb2312") == "朱镕基"
    assert decode_html(b"\xff\xfe", "no-such-codec") == "\ufffd\ufffd"


def test_visible_text_fallback_keeps_claims_outside_main_content():
    html = "<html><body><div><a href='/'>保本保息</a> <a href='/x'>年化18%</a></div><script>var s='x'</script></body></html>"
    result = extract(html.encode(), "utf-8", "http://site.test/")
    assert result.used_fallback and "保本保息" in result.text and "var s" not in result.text


def test_fingerprint_ignores_width_case_whitespace_and_punctuation_only():
    assert fingerprint("年化 12％\n保本") == fingerprint("年化12%保本")
    assert fingerprint("年化１２，ＡＢＣ保本。") == fingerprint("年化12,abc保本")
    assert fingerprint("年化12%") != fingerprint("年化13%")
    assert fingerprint("保本保息") != fingerprint("保本付息")


def test_language_is_the_declared_one_else_counted_from_the_text():
    assert language("zh-CN", "Only English words here") == "zh"  # the page's own lang attribute wins
    assert language(" EN_us ", "中文") == "en"
    assert language(None, "本平台承诺保本保息, APY 18%") == "zh"  # 9 Han characters against 3 letters
    assert language("", "Guaranteed returns of 18% a year, 保本") == "en"  # 2 Han against 24 letters
    assert language(None, "保本 abcd") == "zh"  # a tie in weight (2 Han x 2 >= 4 letters) goes to zh
    assert language(None, "保本 abcde") == "en"
    assert language(None, "2024-01-01 ¥100 ，。") is None  # neither script
    assert language(None, "a" * 5000 + "中" * 6000) == "en"  # only the first 5,000 characters count


def test_is_html_and_headers():
    request = Request("http://site.test/")
    pdf = HtmlResponse("http://site.test/", body=b"%PDF", headers={"Content-Type": "application/pdf"}, request=request)
    assert not is_html(pdf)
    page = HtmlResponse(
        "http://site.test/", body=b"<html></html>", request=request,
        headers={"Content-Type": "text/html; charset=utf-8", "Set-Cookie": ["a=1", "b=2"]},
    )
    assert is_html(page) and flat_headers(page.headers)["set-cookie"] == "a=1, b=2"


def test_empty_body_is_not_an_error():
    result = extract(b"", "utf-8", "http://site.test/")
    assert result.text == "" and result.title == ""


DEMO_PAGES = sorted((Path(__file__).parent.parent / "crawler" / "demo" / "sites").rglob("*.html"))


def test_the_fast_element_lookup_extracts_what_lxml_html_parser_does(monkeypatch):
    """Every element is a plain HtmlElement (no FormElement...); trafilatura and htmldate must not notice."""
    assert type(lxml.html.document_fromstring("<form></form>", parser=extract_module._PARSER).find(".//form")) \
        is lxml.html.HtmlElement
    pages = [
        (page.read_bytes(), json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))["encoding"])
        for page in sorted(PAGES.glob("*.html"))
    ] + [(page.read_bytes(), html_body_declared_encoding(page.read_bytes()) or "utf-8") for page in DEMO_PAGES]
    fast = [extract(body, encoding, "http://site.test/") for body, encoding in pages]
    monkeypatch.setattr(extract_module, "_PARSER", lxml.html.HTMLParser())
    stock = [extract(body, encoding, "http://site.test/") for body, encoding in pages]
    assert fast == stock
    assert sum(1 for result in fast if not result.used_fallback) > len(pages) // 2
