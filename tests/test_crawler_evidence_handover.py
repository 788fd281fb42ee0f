"""Evidence that stands up later: the 404 that took a page down is archived with its hit, the
manifest says why and when a hit went (and that it came back), the headers are the WARC's, and a
handed-over folder is re-checked. Real patrols of a local site, read with the real CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from channel_sites import html
from conftest import cli, json_lines, tamper_warc_record
from crawler.config import load_config
from crawler.demo.server import SiteServer, routes
from crawler.evidence.models import Evidence
from crawler.store.db import StateDB
from crawler.store.models import Hit

SECURITY = "<p>借款人逾期时，{}，100%本息保障。</p>"
PROMO = html("鑫盈宝新手标", "<p>鑫盈宝新手标，保本保息，年化收益率高达18%。</p>")


def site(**pages: str) -> dict:
    links = "".join(f"<a href='/{name}.html'>{name}</a> " for name in pages)
    return {"/": html("鑫盈宝", f"<p>{links}</p>")} | {f"/{name}.html": body for name, body in pages.items()}


def patrolled(config: str) -> int:
    result = cli("patrol", "--config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    return max(r["id"] for r in json_lines(cli("runs", "--config", config, "--json").stdout))


def hits_at(config: str, name: str) -> list[dict]:
    return sorted((h for h in json_lines(cli("hits", "--config", config, "--json").stdout)
                   if h["url"].endswith(f"/{name}.html")), key=lambda h: h["id"])


def export(config: str, hit_id: int, folder: Path, *extra: str) -> tuple[dict, str]:
    result = cli("evidence", "export", str(hit_id), str(folder), "--config", config, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8")), result.stdout


def records(path: Path) -> dict[str, tuple]:
    """WARC-Record-ID → (type, HTTP status line or None, payload)."""
    out = {}
    with open(path, "rb") as f:
        for record in ArchiveIterator(f):
            status = record.http_headers.statusline if record.http_headers else None
            out[record.rec_headers.get_header("WARC-Record-ID")] = (
                record.rec_type, status, record.content_stream().read())
    return out


def test_a_deleted_pages_404_is_archived_with_its_hit_and_the_manifest_says_why_and_when(make_config, tmp_path):
    pages = site(security=html("风控措施", SECURITY.format("风险准备金先行赔付")), promo=PROMO)
    with SiteServer(routes(pages)) as server:
        config = str(make_config([{"id": "xyb", "urls": [server.url("/")]}]))
        run1 = patrolled(config)
        (promo,), (guarantee,) = hits_at(config, "promo"), hits_at(config, "security")
        del pages["/promo.html"]  # deleted, still linked: 404
        pages["/security.html"] = html("风控措施", SECURITY.format("平台先行赔付"))  # reworded
        run2 = patrolled(config)
        pages["/security.html"] = html("风控措施", SECURITY.format("风险准备金先行赔付"))  # the old words back
        run3 = patrolled(config)

    with StateDB(load_config(config).db_url) as db, db.new_session() as session:
        gone = session.query(Evidence).filter(Evidence.gone_hit_id == promo["id"]).all()
        claim = session.query(Evidence).filter(Evidence.hit_id == promo["id"]).all()
        reopened_at = session.get(Hit, guarantee["id"]).reopened_at
    assert [(ev.status, ev.run_id, ev.hit_id) for ev in gone] == [(404, run2, None)], "the answer; no claim"
    assert [ev.status for ev in claim] == [200]
    warc = load_config(config).state_dir / "evidence" / gone[0].warc_file
    assert records(warc)[gone[0].record_id][:2] == ("response", "404 Not Found")

    manifest, _ = export(config, promo["id"], tmp_path / "promo", "--latest")
    assert manifest["http_status"] == 200, "--latest is still the claim's last capture, not the 404"
    removal = manifest["hit_removal"]
    assert (removal["why"], removal["run_id"], removal["replaced_by"]) == ("page_gone", run2, None)
    assert manifest["hit_removed_run_id"] == run2
    assert removal["gone_capture"]["http_status"] == 404 and removal["gone_capture"]["id"] == gone[0].id
    exported = records(tmp_path / "promo" / "gone-response.warc.gz")
    assert exported[gone[0].record_id][:2] == ("response", "404 Not Found")
    assert [(e["event"], e["run_id"], e.get("why")) for e in manifest["hit_history"]] == [
        ("opened", run1, None), ("removed", run2, "page_gone")]

    # Online in run 1 and run 3, but replaced by a rewording in run 2: the manifest says so.
    manifest, _ = export(config, guarantee["id"], tmp_path / "guarantee", "--latest")
    (successor,) = [h for h in hits_at(config, "security") if h["id"] != guarantee["id"]]
    assert [(e["event"], e["run_id"], e.get("why"), e.get("replaced_by")) for e in manifest["hit_history"]] == [
        ("opened", run1, None, None), ("removed", run2, "replaced", successor["id"]), ("back", run3, None, None)]
    assert manifest["hit_removal"] is None and manifest["hit_removed_run_id"] is None
    assert "hit_reopened_at" in manifest
    assert (manifest["hit_reopened_at"] or {}).get("utc") == (
        reopened_at.isoformat(timespec="seconds") + "+00:00" if reopened_at else None)
    assert "gone-response.warc.gz" not in manifest["files"]


def test_response_headers_are_the_warc_response_records_status_line_and_headers(make_config, tmp_path):
    with SiteServer(routes(site(promo=PROMO))) as server:
        config = str(make_config([{"id": "xyb", "urls": [server.url("/")]}]))
        patrolled(config)
    (promo,) = hits_at(config, "promo")
    manifest, _ = export(config, promo["id"], tmp_path / "x")
    head = (tmp_path / "x" / "response-headers.txt").read_bytes()
    with open(tmp_path / "x" / "evidence.warc.gz", "rb") as f:
        (response,) = [r for r in ArchiveIterator(f) if r.rec_type == "response"]
        expected = [f"{response.http_headers.protocol} {response.http_headers.statusline}"]
        expected += [f"{name}: {value}" for name, value in response.http_headers.headers]
    assert head.decode().split("\r\n") == expected + [""]
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nx-archive-orig-content-length: " in head
    assert manifest["files"]["response-headers.txt"]["sha256"] == hashlib.sha256(head).hexdigest()
    raw = gzip.decompress((tmp_path / "x" / "evidence.warc.gz").read_bytes())
    assert b"\r\n\r\n" + head + b"\r\n" in raw, "byte for byte as the record holds it"


def rewrite_sums(folder: Path, manifest_too: bool = False) -> None:
    """What a careful forger does: make SHA256SUMS (and the manifest) fit the edited files."""
    if manifest_too:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        for name, entry in manifest["files"].items():
            entry["sha256"] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    names = sorted(p.name for p in folder.iterdir() if p.name != "SHA256SUMS")
    (folder / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names))


def verify_export(folder: Path, *extra: str):
    return cli("evidence", "verify-export", str(folder), *extra)


def test_a_handed_over_folder_is_rechecked_and_every_change_is_named(make_config, tmp_path):
    with SiteServer(routes(site(promo=PROMO))) as server:
        config = str(make_config([{"id": "xyb", "urls": [server.url("/")]}]))
        patrolled(config)
    (promo,) = hits_at(config, "promo")
    folder = tmp_path / "handover"
    manifest, printed = export(config, promo["id"], folder)
    receipt = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    assert f"{receipt}  {folder / 'manifest.json'}" in printed and f"--receipt {receipt}" in printed, printed
    listed = (folder / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in listed) == sorted(set(manifest["files"]) | {"manifest.json"})
    coreutils = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert coreutils.returncode == 0, coreutils.stdout + coreutils.stderr
    ok = verify_export(folder, "--receipt", receipt)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr

    page = (folder / "page.html").read_bytes()
    (folder / "page.html").write_bytes(page.replace("保本保息".encode(), "市场有险".encode()))
    edited = verify_export(folder)
    assert edited.returncode == 1
    assert "FAIL page.html: SHA-256 differs from SHA256SUMS" in edited.stdout, edited.stdout
    rewrite_sums(folder)
    assert "FAIL page.html: SHA-256 differs from the one manifest.json names" in verify_export(folder).stdout
    rewrite_sums(folder, manifest_too=True)
    forged = verify_export(folder, "--receipt", receipt)
    assert forged.returncode == 1 and "differs from the receipt" in forged.stdout, forged.stdout

    (folder / "page.html").write_bytes(page)
    rewrite_sums(folder, manifest_too=True)
    tamper_warc_record(folder / "evidence.warc.gz", manifest["warc"]["record_id"], "保本保息", "市场有险")
    rewrite_sums(folder, manifest_too=True)
    warc = verify_export(folder)
    assert warc.returncode == 1
    assert f"FAIL evidence.warc.gz: record {manifest['warc']['record_id']}: WARC" in warc.stdout, warc.stdout
    assert "page bytes differ from the manifest's SHA-256" in warc.stdout

    (folder / "screenshot.png").write_bytes(b"not the export's")
    (folder / "request-headers.txt").unlink()
    changed = verify_export(folder).stdout
    assert "FAIL screenshot.png: not listed in SHA256SUMS" in changed and "FAIL request-headers.txt: missing" in changed
