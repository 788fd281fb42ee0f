"""Evidence in WARC: capture, read back with warcio, verify, tamper detection, export, rotation."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from warcio.archiveiterator import ArchiveIterator  # noqa: E402

from crawler.evidence.archive import Archive  # noqa: E402
from crawler.evidence.config import EvidenceConfig  # noqa: E402
from crawler.evidence.export import ExportError, export_hit  # noqa: E402
from crawler.evidence.models import Evidence, EvidenceFile  # noqa: E402
from crawler.evidence.verify import verify  # noqa: E402
from crawler.items import PageItem  # noqa: E402
from crawler.store.db import StateDB  # noqa: E402
from crawler.store.changes import mark_gone  # noqa: E402
from crawler.store.pages import save_pages  # noqa: E402
from crawler.store.runs import start_run, sync_targets  # noqa: E402
from crawler.config import Target, load_config  # noqa: E402
from conftest import cli  # noqa: E402

CLAIM = "本平台承诺保本保息，年化收益18%"


def png_bytes() -> bytes:
    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.text(0.1, 0.5, "screenshot")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def verdict(text: str) -> dict:
    if "保本保息" not in text:
        return {"labels": [], "score": 0.0, "risk": "none", "findings": [], "yields": [], "context": ""}
    start = text.index("保本保息")
    return {
        "labels": ["guaranteed_return", "high_yield"], "score": 0.95, "risk": "high", "context": "advertisement",
        "findings": [
            {"category": "guaranteed_return", "rule_id": "gr.baoben", "text": "保本保息", "start": start,
             "end": start + 4, "field": "text", "snippet": text, "weight": 1.0, "negated": False, "negated_by": None},
            {"category": "high_yield", "rule_id": "hy.annual", "text": "年化收益18%", "start": 0, "end": 7,
             "field": "text", "snippet": text, "weight": 1.0, "negated": False, "negated_by": None},
        ],
        "yields": [{"text": "年化收益18%", "low_annual_pct": 18.0, "high_annual_pct": 18.0}],
    }


def page_item(url: str, text: str, *, screenshot: bytes | None = None, when: str = "2026-11-27T02:46:23+00:00",
              rendered: bool = False) -> PageItem:
    body = f"<html><head><title>鑫盈宝</title></head><body><p>{text}</p></body></html>".encode()
    item = PageItem(
        target_id="xyb", url=url, final_url=url, status=200,
        headers={"content-type": "text/html; charset=utf-8", "content-encoding": "gzip", "server": "nginx"},
        body=body, encoding="utf-8", fetched_at=when, rendered=rendered, screenshot=screenshot,
        request_headers={"user-agent": "finpatrol-test", "accept": "text/html"},
        sha256=hashlib.sha256(body).hexdigest(), title="鑫盈宝", text=text,
        text_fingerprint=hashlib.sha256(text.encode()).hexdigest(), verdict=verdict(text),
    )
    return item


@pytest.fixture
def state(tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    sync_targets(db, [Target(id="xyb", name="鑫盈宝（重庆）网络借贷信息中介有限公司", business="p2p",
                             urls=("http://xyb.test/",), credit_code="91500116MA5U000000")])
    yield db, tmp_path / "evidence"
    db.close()


def store(db, items, run_id):
    for item, saved in zip(items, save_pages(db, items, run_id)):
        item.page_id, item.hit_id, item.new_hit = saved.page_id, saved.hit_id, saved.new_hit
    return items


def test_hit_capture_reads_back_with_warcio_and_every_digest_verifies(state):
    db, root = state
    shot = png_bytes()
    run_id = start_run(db, "test")
    hit_page, plain = store(db, [page_item("http://xyb.test/", CLAIM, screenshot=shot),
                                 page_item("http://xyb.test/about", "关于我们")], run_id)
    archive = Archive(db, root, EvidenceConfig())
    evidence_id = archive.capture(hit_page, run_id)
    assert archive.capture(plain, run_id) is None, "archive: hits skips pages without a hit"
    archive.close()

    with db.new_session() as session:
        ev = session.get(Evidence, evidence_id)
        (warc_file,) = session.query(EvidenceFile).all()
    assert ev.hit_id == hit_page.hit_id and ev.payload_sha256 == hit_page.sha256
    assert ev.screenshot_sha256 == hashlib.sha256(shot).hexdigest()
    assert warc_file.sha256 and warc_file.closed_at is not None

    with open(root / ev.warc_file, "rb") as f:
        records = {}
        iterator = ArchiveIterator(f, check_digests=True)
        for record in iterator:
            payload = record.content_stream().read()
            assert record.digest_checker.passed is not False, record.digest_checker.problems
            assert record.rec_headers.get_header("WARC-Payload-Digest", "sha256:").startswith("sha256:")
            records[record.rec_headers.get_header("WARC-Record-ID")] = (record, payload, iterator.get_record_offset())
    types = sorted(r.rec_type for r, _, _ in records.values())
    assert types == ["metadata", "request", "resource", "response", "warcinfo"]
    response, body, offset = records[ev.record_id]
    assert offset == ev.offset and body == hit_page.body
    assert hashlib.sha256(body).hexdigest() == ev.payload_sha256
    assert response.http_headers.get_header("content-encoding") is None, "body is stored decoded"
    assert response.http_headers.get_header("x-archive-orig-content-encoding") == "gzip"
    assert response.rec_headers.get_header("WARC-Date") == "2026-11-27T02:46:23Z"
    screenshot, png, _ = records[ev.screenshot_record_id]
    assert screenshot.rec_headers.get_header("Content-Type") == "image/png"
    assert hashlib.sha256(png).hexdigest() == ev.screenshot_sha256
    Image.open(io.BytesIO(png)).verify()  # a valid PNG
    _, meta, _ = records[ev.metadata_record_id]
    meta = json.loads(meta)
    assert meta["target_id"] == "xyb" and meta["patrol_run"] == run_id and meta["hit_id"] == ev.hit_id
    assert meta["labels"] == ["guaranteed_return", "high_yield"] and meta["rule_ids"] == ["gr.baoben", "hy.annual"]
    assert verify(db, root).ok


def test_flipping_one_byte_fails_verify_and_names_the_hit(state):
    db, root = state
    run_id = start_run(db, "test")
    (item,) = store(db, [page_item("http://xyb.test/", CLAIM, screenshot=png_bytes())], run_id)
    archive = Archive(db, root, EvidenceConfig())
    evidence_id = archive.capture(item, run_id)
    archive.close()
    with db.new_session() as session:
        ev = session.get(Evidence, evidence_id)
    path = root / ev.warc_file
    data = bytearray(path.read_bytes())
    data[ev.offset + 40] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify(db, root)
    assert not report.ok
    assert {p.hit_id for p in report.problems if p.hit_id} == {item.hit_id}
    assert any(p.record_id == ev.record_id for p in report.problems)
    assert any("file SHA-256" in p.what for p in report.problems)
    with pytest.raises(ExportError):
        export_hit(db, root, item.hit_id, root.parent / "out")
    path.unlink()
    assert any(p.what == "WARC file missing" and p.hit_id == item.hit_id for p in verify(db, root).problems)


def test_export_writes_files_that_match_the_manifest(state, tmp_path):
    db, root = state
    shot = png_bytes()
    run_id = start_run(db, "test")
    (item,) = store(db, [page_item("http://xyb.test/", CLAIM, screenshot=shot)], run_id)
    archive = Archive(db, root, EvidenceConfig())
    archive.capture(item, run_id)
    archive.close()
    out = tmp_path / "handover"
    manifest = export_hit(db, root, item.hit_id, out)
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == manifest
    assert (out / "page.html").read_bytes() == item.body
    assert (out / "screenshot.png").read_bytes() == shot
    assert "content-encoding: gzip" in (out / "response-headers.txt").read_text()
    assert (out / "request-headers.txt").read_text().startswith("GET / HTTP/1.1")
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"], name
    with open(out / "evidence.warc.gz", "rb") as f:
        assert [r.rec_type for r in ArchiveIterator(f, check_digests=True)] == [
            "request", "response", "resource", "metadata"]
    assert manifest["url"] == manifest["final_url"] == "http://xyb.test/"
    assert manifest["fetched_at"] == {"utc": "2026-11-27T02:46:23+00:00", "asia_shanghai": "2026-11-27T10:46:23+08:00"}
    assert manifest["page_sha256"] == item.sha256
    assert manifest["screenshot_sha256"] == hashlib.sha256(shot).hexdigest()
    assert manifest["target"] == {"id": "xyb", "name": "鑫盈宝（重庆）网络借贷信息中介有限公司",
                                  "credit_code": "91500116MA5U000000", "business": "p2p"}
    assert manifest["labels"] == ["guaranteed_return", "high_yield"]
    assert manifest["rule_ids"] == ["gr.baoben", "hy.annual"]
    assert [f["text"] for f in manifest["findings"]] == ["保本保息", "年化收益18%"]
    basis = {b["category"]: b["seed_section"] for b in manifest["legal_basis"]}
    assert basis == {"guaranteed_return": "二(一)1, 二(二)2", "high_yield": "三(四)"}
    assert manifest["patrol_run"] == run_id and manifest["verified"] is True
    assert manifest["records_verified"] is True and manifest["file_verified"] is True
    assert manifest["file_problems"] == []


def test_export_from_a_file_still_being_written_checks_its_records_only(state, tmp_path):
    db, root = state
    run_id = start_run(db, "test")
    (item,) = store(db, [page_item("http://xyb.test/", CLAIM)], run_id)
    archive = Archive(db, root, EvidenceConfig())
    archive.capture(item, run_id)  # not closed: no size or SHA-256 recorded for the file yet
    manifest = export_hit(db, root, item.hit_id, tmp_path / "handover")
    archive.close()
    assert manifest["verified"] is True and manifest["records_verified"] is True
    assert manifest["file_verified"] is None and manifest["file_problems"] == []


def test_recapture_only_when_new_or_changed_and_archive_all(state):
    db, root = state
    archive = Archive(db, root, EvidenceConfig(archive="all"))
    run1 = start_run(db, "test")
    hit, plain = store(db, [page_item("http://xyb.test/", CLAIM), page_item("http://xyb.test/a", "关于我们")], run1)
    assert archive.capture(hit, run1) and archive.capture(plain, run1)

    run2 = start_run(db, "test")
    again, plain2 = page_item("http://xyb.test/", CLAIM), page_item("http://xyb.test/a", "关于我们")
    again.unchanged = plain2.unchanged = True  # same bytes: the analyse pipeline skips them
    store(db, [again, plain2], run2)
    assert again.hit_id == hit.hit_id and not again.new_hit
    assert archive.capture(again, run2) is None and archive.capture(plain2, run2) is None

    edited = page_item("http://xyb.test/", CLAIM + "，欢迎投资", when="2026-11-28T02:00:00+00:00")
    store(db, [edited], start_run(db, "test"))
    assert edited.hit_id == hit.hit_id, "same claims, same hit"
    assert archive.capture(edited, None), "but new page bytes: a new capture of that hit"

    # a patrol that found both pages answered 404: the hit is removed
    mark_gone(db, start_run(db, "test"), {"xyb": ["http://xyb.test/", "http://xyb.test/a"]})
    back = page_item("http://xyb.test/", CLAIM + "，欢迎投资", when="2026-11-29T02:00:00+00:00")
    back.unchanged = True
    store(db, [back], start_run(db, "test"))
    assert back.hit_id == hit.hit_id
    assert archive.capture(back, None), "same bytes, but the hit was reopened: capture when it came back"
    archive.close()
    with db.new_session() as session:
        assert session.query(Evidence).filter(Evidence.hit_id.is_(None)).count() == 1
        assert session.query(Evidence).count() == 4
    assert verify(db, root).captures == 4


def test_files_rotate_by_size_and_by_day(state):
    db, root = state
    now = [datetime(2026, 11, 27, 15, 59, tzinfo=UTC)]
    archive = Archive(db, root, EvidenceConfig(max_file_mb=0.004), clock=lambda: now[0])  # ~4 KB
    run_id = start_run(db, "test")
    items = store(db, [page_item(f"http://xyb.test/{i}", CLAIM + "。" + "内容" * 300 * i) for i in range(4)], run_id)
    for item in items[:3]:
        archive.capture(item, run_id)
    now[0] += timedelta(hours=9)  # the next UTC day
    archive.capture(items[3], run_id)
    archive.close()
    with db.new_session() as session:
        files = session.query(EvidenceFile).order_by(EvidenceFile.name).all()
        names = [ev.warc_file for ev in session.query(Evidence).order_by(Evidence.id)]
    assert len(files) >= 3 and all(f.sha256 for f in files)
    assert names[3].startswith("2026-11-28/") and all(n.startswith("2026-11-27/") for n in names[:3])
    assert len(set(names[:3])) >= 2, "the size limit closed a file"
    assert all((root / f.name).stat().st_size == f.size for f in files)
    assert verify(db, root).ok


def test_evidence_config_block_is_validated_with_its_field_path():
    from crawler.config import ConfigError, parse_config

    assert parse_config("evidence:\n  archive: all\n  max_file_mb: 5\n").evidence.max_file_bytes == 5 * 1024 * 1024
    with pytest.raises(ConfigError) as error:
        parse_config("evidence:\n  archive: everything\n")
    assert "line 2: evidence.archive" in str(error.value)


def test_export_refuses_a_folder_holding_files_and_names_a_folder_it_cannot_write(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text("state_dir: state\ntargets:\n"
                      "  - {id: xyb, name: 鑫盈宝, business: p2p, urls: ['http://xyb.test/']}\n", encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        run_id = start_run(db, "test")
        shot, plain = store(db, [page_item("http://xyb.test/", CLAIM, screenshot=png_bytes()),
                                 page_item("http://xyb.test/p2", "另一页：" + CLAIM)], run_id)
        archive = Archive(db, tmp_path / "state" / "evidence", EvidenceConfig())
        archive.capture(shot, run_id)
        archive.capture(plain, run_id)
        archive.close()

    def export(hit_id: int, folder):
        return cli("evidence", "export", str(hit_id), str(folder), "--config", str(config))

    out = tmp_path / "handover"
    assert export(shot.hit_id, out).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "screenshot.png" in before
    for hit_id in (plain.hit_id, shot.hit_id):  # another hit, or the same one again: a folder with files is refused
        refused = export(hit_id, out)
        assert refused.returncode == 1 and f"Error: {out} is not empty" in refused.stderr, refused.stderr
        assert "new (or empty) folder" in refused.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "hit 1's screenshot beside hit 2's manifest"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(plain.hit_id, empty).returncode == 0, "an empty folder is fine"
    assert json.loads((empty / "manifest.json").read_text(encoding="utf-8"))["hit_id"] == plain.hit_id
    assert not (empty / "screenshot.png").exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    unwritable = export(plain.hit_id, a_file / "out")
    assert unwritable.returncode == 1, unwritable.stderr
    assert unwritable.stderr.strip().splitlines() == [f"Error: cannot write {a_file / 'out'}: Not a directory"]


def test_export_of_a_hit_whose_file_fails_its_close_hash_says_so_warns_and_exits_1(tmp_path):
    """A byte changed outside the hit's records (here in the file's warcinfo record): the records
    verify and are handed over, but neither the manifest nor the exit status may say all is well."""
    config = tmp_path / "patrol.yaml"
    config.write_text("state_dir: state\ntargets:\n"
                      "  - {id: xyb, name: 鑫盈宝, business: p2p, urls: ['http://xyb.test/']}\n", encoding="utf-8")
    root = tmp_path / "state" / "evidence"
    with StateDB(load_config(config).db_url) as db:
        run_id = start_run(db, "test")
        (item,) = store(db, [page_item("http://xyb.test/", CLAIM, screenshot=png_bytes())], run_id)
        archive = Archive(db, root, EvidenceConfig())
        evidence_id = archive.capture(item, run_id)
        archive.close()
        with db.new_session() as session:
            ev = session.get(Evidence, evidence_id)
    warc = root / ev.warc_file
    data = bytearray(warc.read_bytes())
    assert min(r["offset"] for r in ev.records) > 20, "byte 20 is in the warcinfo record, not the hit's"
    data[20] ^= 0x01
    warc.write_bytes(bytes(data))

    verified = cli("evidence", "verify", "--config", str(config))
    assert verified.returncode == 1 and "file SHA-256 differs" in verified.stdout, verified.stdout
    assert f"hit {item.hit_id}:" not in verified.stdout, "the hit's own records are intact"

    out = tmp_path / "handover"
    exported = cli("evidence", "export", str(item.hit_id), str(out), "--config", str(config))
    assert exported.returncode == 1, exported.stdout + exported.stderr
    assert f"FAIL file: {ev.warc_file}: file SHA-256 differs from the one recorded at close" in exported.stderr
    assert f"Warning: hit {item.hit_id}'s own WARC records verified" in exported.stderr
    assert "verified: false" in exported.stderr and "finpatrol evidence verify" in exported.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["verified"] is False
    assert manifest["records_verified"] is True and manifest["file_verified"] is False
    assert manifest["file_problems"] == ["file SHA-256 differs from the one recorded at close"]
    assert (out / "page.html").read_bytes() == item.body, "the intact records are still handed over"
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"], name


def listed_forum_post(db, run_id: int, url: str = "http://bbs.test/thread-104.html#listed", attributed: bool = True):
    """A forum post as an opinion source lists it: stored under ``source:forum``, its listing row,
    and (as the attribute pipeline stores it) its attribution to the registered target ``xyb``."""
    from crawler.discovery.models import HitAttribution, ListedPage, ensure_schema
    from crawler.store.db import utcnow
    from crawler.store.models import TargetRow

    ensure_schema(db)
    with db.new_session() as session, session.begin():
        session.merge(TargetRow(id="source:forum", name="舆情来源 江津生活论坛 投资理财", business="other",
                                aliases=[], urls=[], updated_at=utcnow()))
    item = page_item(url, "鑫盈宝" + CLAIM)
    item.target_id, item.final_url = "source:forum", "http://bbs.test/forum-licai-1.html"
    (item,) = store(db, [item], run_id)
    with db.new_session() as session, session.begin():
        session.add(ListedPage(
            page_id=item.page_id, origin="source", origin_id="forum", kind="forum", slot=True,
            list_url="http://bbs.test/forum-licai-1.html", keyword="", rank=1, is_ad=None, advertiser="",
            landing_chain=[], slot_title="鑫盈宝维权", slot_text="鑫盈宝" + CLAIM, author="维权志愿者",
            posted_at="2026-11-28T21:15:00+08:00", replies=203, last_seen=utcnow()))
        if attributed:
            session.add(HitAttribution(hit_id=item.hit_id, page_id=item.page_id, target_id="xyb", reason="name",
                                       detail="鑫盈宝×2", origin="source", origin_id="forum", at=utcnow()))
    return item


LISTING = {
    "origin": "source", "origin_id": "forum", "list_url": "http://bbs.test/forum-licai-1.html", "slot": True,
    "keyword": "", "rank": 1, "is_ad": None, "advertiser": "", "landing_chain": [], "author": "维权志愿者",
    "posted_at": "2026-11-28T21:15:00+08:00", "replies": 203, "kind": "forum", "slot_title": "鑫盈宝维权",
    "slot_text": "鑫盈宝" + CLAIM,
}


def test_export_names_the_institution_an_opinion_hit_concerns_and_how_it_was_listed(state, tmp_path):
    db, root = state
    run_id = start_run(db, "test")
    post = listed_forum_post(db, run_id)
    other = listed_forum_post(db, run_id, "http://bbs.test/thread-105.html#listed", attributed=False)
    archive = Archive(db, root, EvidenceConfig())
    archive.capture(post, run_id)
    archive.capture(other, run_id)
    archive.close()
    manifest = export_hit(db, root, post.hit_id, tmp_path / "handover")
    assert manifest["target"] == {"id": "source:forum", "name": "舆情来源 江津生活论坛 投资理财",
                                  "credit_code": None, "business": "other"}, "kept as it was"
    assert manifest["attributed_to"] == {
        "id": "xyb", "name": "鑫盈宝（重庆）网络借贷信息中介有限公司", "credit_code": "91500116MA5U000000",
        "business": "p2p", "reason": "name", "reason_zh": "名称提及", "detail": "鑫盈宝×2"}
    assert manifest["listed"] == LISTING
    assert "list page that shows the hit as an entry" in manifest["files"]["page.html"]["description"]
    assert json.loads((tmp_path / "handover" / "manifest.json").read_text(encoding="utf-8")) == manifest
    nobody = export_hit(db, root, other.hit_id, tmp_path / "other")
    assert nobody["attributed_to"] is None, "attributed to no registered institution: none is named"
    assert nobody["listed"]["rank"] == 1


def test_show_names_the_institution_and_the_listing(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text("state_dir: state\ntargets:\n  - {id: xyb, name: 鑫盈宝（重庆）网络借贷信息中介有限公司, "
                      "credit_code: 91500116MA5U000000, business: p2p, urls: ['http://xyb.test/']}\n",
                      encoding="utf-8")
    with StateDB(load_config(config).db_url) as db:
        sync_targets(db, load_config(config).targets)
        post = listed_forum_post(db, start_run(db, "test"))
    shown = cli("show", str(post.hit_id), "--config", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    (hit,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert hit["target"] == "source:forum" and hit["id"] == post.hit_id
    assert hit["attributed_to"]["id"] == "xyb" and hit["attributed_to"]["reason_zh"] == "名称提及"
    assert hit["attributed_to"]["credit_code"] == "91500116MA5U000000"
    assert hit["listed"] == LISTING
    table = cli("show", str(post.hit_id), "--config", str(config)).stdout
    assert ("concerns xyb 鑫盈宝（重庆）网络借贷信息中介有限公司 (统一社会信用代码 91500116MA5U000000), "
            "名称提及 (name): 鑫盈宝×2") in table
    assert ("listed source forum, rank 1, author 维权志愿者, posted 2026-11-28 21:15, 203 replies, "
            "entry on http://bbs.test/forum-licai-1.html") in table


def test_export_of_an_own_site_hit_names_its_target_and_no_listing(state, tmp_path):
    db, root = state
    run_id = start_run(db, "test")
    (item,) = store(db, [page_item("http://xyb.test/", CLAIM)], run_id)
    archive = Archive(db, root, EvidenceConfig())
    archive.capture(item, run_id)
    archive.close()
    manifest = export_hit(db, root, item.hit_id, tmp_path / "handover")
    assert manifest["attributed_to"] == {
        "id": "xyb", "name": "鑫盈宝（重庆）网络借贷信息中介有限公司", "credit_code": "91500116MA5U000000",
        "business": "p2p", "reason": "own_site", "reason_zh": "本机构网站", "detail": ""}
    assert manifest["listed"] is None
    assert manifest["files"]["page.html"]["description"] == "page bytes as fetched (after gzip/br decoding)"


def test_export_of_a_rendered_page_says_the_page_is_the_dom_and_the_headers_the_servers(state, tmp_path):
    db, root = state
    run_id = start_run(db, "test")
    (item,) = store(db, [page_item("http://xyb.test/app", CLAIM, screenshot=png_bytes(), rendered=True)], run_id)
    archive = Archive(db, root, EvidenceConfig())
    archive.capture(item, run_id)
    archive.close()
    files = export_hit(db, root, item.hit_id, tmp_path / "handover")["files"]
    page, response, request = (files[name]["description"] for name in
                               ("page.html", "response-headers.txt", "request-headers.txt"))
    assert page.startswith("DOM serialised by Chromium after rendering")
    assert "not the bytes the server sent" in page and "not archived" in page
    assert "as fetched" not in page
    assert response.startswith("the server's status and response headers")
    assert "not page.html" in response and "not archived" in response
    assert "Chromium" in request
