"""Evidence and change tracking through whole patrols with the real CLI and real local sites."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from PIL import Image
from warcio.archiveiterator import ArchiveIterator

from conftest import cli, json_lines
from crawler.config import load_config
from crawler.demo.server import SiteServer, routes
from crawler.evidence.models import Evidence
from crawler.store.db import StateDB
from crawler.store.models import Hit

FAST = {"FINPATROL_RENDER_SETTLE": "1"}

JS_SHELL = """<!DOCTYPE html><html lang="zh"><head><meta charset="utf-8"><title>云端普惠</title></head>
<body><div id="app"></div><script>
document.addEventListener('DOMContentLoaded', function () {
  var p = document.createElement('p');
  p.textContent = '活期理财随存随取，资金池运作，年化收益率高达18%。';
  document.getElementById('app').appendChild(p);
});
</script></body></html>"""


def page(title: str, *paragraphs: str, links: tuple[str, ...] = ()) -> str:
    nav = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><header><ul class='nav'>{nav}</ul></header><article><h1>{title}</h1>{body}</article>"
        "<footer>重庆测试科技有限公司 渝ICP备16000000号</footer></body></html>"
    )


def captures(config) -> list[Evidence]:
    db = StateDB(load_config(config).db_url)
    try:
        with db.new_session() as session:
            return session.query(Evidence).order_by(Evidence.id).all()
    finally:
        db.close()


def test_patrol_archives_hits_verifies_detects_tampering_and_exports(make_config, tmp_path):
    site_routes = {
        "/": page("鑫盈宝", "本平台承诺保本保息，欢迎咨询。", "公司介绍与联系方式，欢迎来电咨询合作事宜。",
                  links=("/about.html", "/app.html")),
        "/about.html": page("关于我们", "关于我们：公司成立于2015年，位于重庆市江津区。"),
        "/app.html": JS_SHELL,
    }
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "xyb", "urls": [site.url("/")]}])
        result = cli("patrol", "--config", str(config), env=FAST)
    assert result.returncode == 0, result.stderr
    hits = {h["url"]: h for h in json_lines(cli("hits", "--config", str(config), "--json").stdout)}
    static_hit, rendered_hit = hits[site.url("/")], hits[site.url("/app.html")]
    assert len(hits) == 2

    rows = {ev.hit_id: ev for ev in captures(config)}
    assert set(rows) == {static_hit["id"], rendered_hit["id"]}, "one capture per hit, none for /about"
    static, rendered = rows[static_hit["id"]], rows[rendered_hit["id"]]
    assert static.payload_sha256 == static_hit["sha256"] and static.screenshot_sha256 is None
    assert rendered.rendered and rendered.screenshot_sha256

    evidence_dir = tmp_path / "state" / "evidence"
    seen = {}
    for path in evidence_dir.rglob("*.warc.gz"):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f, check_digests=True):
                payload = record.content_stream().read()
                assert record.digest_checker.passed is not False, record.digest_checker.problems
                seen[record.rec_headers.get_header("WARC-Record-ID")] = payload
    assert hashlib.sha256(seen[static.record_id]).hexdigest() == static.payload_sha256
    png = seen[rendered.screenshot_record_id]
    assert hashlib.sha256(png).hexdigest() == rendered.screenshot_sha256
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert "资金池运作" in seen[rendered.record_id].decode("utf-8"), "the rendered DOM is archived"

    verified = cli("evidence", "verify", "--config", str(config), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json_lines(verified.stdout)[0]["captures"] == 2

    out = tmp_path / "handover"
    exported = cli("evidence", "export", str(rendered_hit["id"]), str(out), "--config", str(config),
                   env={"COLUMNS": "80"})  # piped into a file at a terminal's width: no line may wrap
    assert exported.returncode == 0, exported.stderr
    listed = [line.split("  ", 1) for line in exported.stdout.splitlines()[:-1]]
    assert len(listed) == 6 and all(hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
                                    for digest, path in listed)  # what sha256sum -c reads
    assert listed[-1][1] == str(out / "manifest.json"), "the receipt is printed too"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["url"] == site.url("/app.html") and manifest["rendered"] is True
    assert set(manifest["fetched_at"]) == {"utc", "asia_shanghai"}
    assert manifest["fetched_at"]["asia_shanghai"].endswith("+08:00")
    assert {"fund_pool", "high_yield"} <= set(manifest["labels"])
    assert {b["category"] for b in manifest["legal_basis"]} == set(manifest["labels"])
    assert all(b["seed_section"] for b in manifest["legal_basis"])
    assert manifest["rule_ids"] and manifest["findings"] and manifest["target"]["id"] == "xyb"
    assert set(manifest["files"]) == {"page.html", "screenshot.png", "response-headers.txt",
                                      "request-headers.txt", "evidence.warc.gz"}
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    # Chromium's DOM, not the server's bytes; the headers are the server's, of the script-only page
    assert "资金池运作" in (out / "page.html").read_text(encoding="utf-8")
    assert "资金池运作" not in JS_SHELL.split("<script>")[0]
    page_is = manifest["files"]["page.html"]["description"]
    headers_are = manifest["files"]["response-headers.txt"]["description"]
    assert page_is.startswith("DOM serialised by Chromium after rendering") and "not archived" in page_is
    assert "as fetched" not in page_is
    assert headers_are.startswith("the server's status and response headers") and "not page.html" in headers_are
    assert manifest["attributed_to"] == {"id": "xyb", "name": "xyb", "credit_code": None, "business": "p2p",
                                         "reason": "own_site", "reason_zh": "本机构网站", "detail": ""}
    assert manifest["listed"] is None
    static_out = tmp_path / "handover-static"
    assert cli("evidence", "export", str(static_hit["id"]), str(static_out), "--config", str(config)).returncode == 0
    static_manifest = json.loads((static_out / "manifest.json").read_text(encoding="utf-8"))
    assert static_manifest["files"]["page.html"]["description"] == "page bytes as fetched (after gzip/br decoding)"

    warc = evidence_dir / static.warc_file
    data = bytearray(warc.read_bytes())
    data[static.offset + 100] ^= 0x20
    warc.write_bytes(bytes(data))
    tampered = cli("evidence", "verify", "--config", str(config))
    assert tampered.returncode == 1
    assert f"hit {static_hit['id']}:" in tampered.stdout
    assert all(c.isprintable() for c in tampered.stdout.replace("\n", "")), "raw record bytes in the report"
    assert f"hit {rendered_hit['id']}:" not in tampered.stdout


def test_changes_across_two_patrols_of_an_edited_site(make_config):
    links = ("/product.html", "/news.html", "/old-offer.html")
    site_routes = {
        "/": page("首页", "欢迎访问，公司介绍与联系方式。", links=links),
        "/product.html": page("产品", "本平台承诺保本保息，欢迎咨询。", "产品年化收益率高达18%。"),
        "/news.html": page("新闻", "公司参加了江津区金融知识宣传活动。"),
        "/old-offer.html": page("限时活动", "活期理财随存随取，资金池运作。"),
    }
    with SiteServer(routes(site_routes)) as site:
        config = make_config([{"id": "site", "urls": [site.url("/")]}])
        assert cli("patrol", "--config", str(config)).returncode == 0
        first_hits = {h["url"]: h for h in json_lines(cli("hits", "--config", str(config), "--json").stdout)}

        site_routes["/product.html"] = page("产品", "本平台承诺保本保息，欢迎咨询。")        # 18% removed
        site_routes["/news.html"] = page("新闻", "公司参加了江津区金融知识宣传活动。", "现推出活期理财，随存随取，资金池运作。")  # added
        del site_routes["/old-offer.html"]                                                 # deleted: 404
        assert cli("patrol", "--config", str(config)).returncode == 0

    runs = json_lines(cli("runs", "--config", str(config), "--json").stdout)
    run2 = runs[0]["id"]
    result = cli("changes", "--config", str(config), "--json", "--run", str(run2))
    assert result.returncode == 0, result.stderr
    changes = {c["url"].rsplit("/", 1)[1]: c for c in json_lines(result.stdout)}
    assert {k: c["kind"] for k, c in changes.items()} == {
        "product.html": "changed", "news.html": "changed", "old-offer.html": "gone"}

    product = changes["product.html"]
    assert product["removed_passages"] == ["产品年化收益率高达18%。"]
    assert not any("保本" in p for p in product["added_passages"]), "the kept claim is not a change"
    assert [c["category"] for c in product["claims_removed"]] == ["high_yield"]
    assert product["hits"]["removed"]["id"] == first_hits[site.url("/product.html")]["id"]
    assert product["hits"]["opened"]["labels"] == ["guaranteed_return"]
    news = changes["news.html"]
    assert "现推出活期理财，随存随取，资金池运作。" in news["added_passages"]
    assert news["removed_passages"] == []
    assert "fund_pool" in news["hits"]["opened"]["labels"] and news["hits"]["removed"] is None
    gone = changes["old-offer.html"]
    assert gone["hits"]["removed"]["id"] == first_hits[site.url("/old-offer.html")]["id"]

    db = StateDB(load_config(config).db_url)
    try:
        with db.new_session() as session:
            removed = {h.url: h.removed_run_id for h in session.query(Hit) if h.removed_at is not None}
    finally:
        db.close()
    assert removed == {site.url("/product.html"): run2, site.url("/old-offer.html"): run2}

    text = cli("changes", "--config", str(config), "--target", "site")
    assert "4 added, 0 changed, 0 gone" in text.stdout and "0 added, 2 changed, 1 gone" in text.stdout
    assert "- 产品年化收益率高达18%。" in text.stdout


def test_a_hit_page_without_evidence_is_fetched_whole_not_revalidated(make_config):
    """A 304 has no body to archive, so a page whose hit lacks its capture is asked unconditionally."""
    from crawler.demo.server import with_validators

    plain = routes({
        "/": page("鑫盈宝", "平台承诺保本保息，稳赚不赔。", links=("/about.html",)),
        "/about.html": page("关于我们", "本页介绍公司的基本情况。"),
    })
    statuses: list[tuple[str, int]] = []

    def resolver(request):
        reply = plain(request)
        if reply is not None and request.path in ("/", "/about.html"):
            reply = with_validators(request, reply)
            statuses.append((request.path, reply.status))
        return reply

    with SiteServer(resolver) as site:
        config = make_config([{"id": "p2p", "urls": [site.url("/")]}])
        assert cli("patrol", "--config", str(config)).returncode == 0
        assert [c.url for c in captures(config)] == [site.url("/")]
        db = StateDB(load_config(config).db_url)
        db.execute("DELETE FROM evidence")  # e.g. the capture failed on a full disk
        db.close()
        statuses.clear()
        assert cli("patrol", "--config", str(config)).returncode == 0
    assert dict(statuses) == {"/": 200, "/about.html": 304}
    assert [c.url for c in captures(config)] == [site.url("/")], "the hit's evidence is captured again"
