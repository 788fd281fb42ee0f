"""Evidence of rectification: the page as fetched by the patrol that found a hit's claims gone (edited
away, reworded, or the URL redirecting to a page without them) is archived once, linked to the hit it
closed (``gone_hit_id``), exported beside the claim's capture and re-checked. Real patrols of a
changing local site, read with the real CLI."""

from __future__ import annotations

import json

from channel_sites import html
from conftest import cli, tamper_warc_record
from crawler.config import load_config
from crawler.demo.server import Reply, SiteServer, routes
from crawler.evidence.models import Evidence
from crawler.store.db import StateDB
from crawler.store.captures import stored_evidence
from test_crawler_evidence_handover import export, hits_at, patrolled, records, rewrite_sums, site, verify_export

PROMO = html("鑫盈宝新手标", "<p>鑫盈宝新手标，保本保息，年化收益率高达18%。</p>")
RECTIFIED = html("鑫盈宝新手标", "<p>鑫盈宝新手标，投资有风险，过往收益不代表未来。</p>")
BOTH = html("风控措施", "<p>本平台承诺保本保息，年化收益率高达18%。</p>")
ONE_DROPPED = html("风控措施", "<p>本平台承诺保本保息。</p>")  # the yield claim rectified, the guarantee kept


def removal_captures(config: str, hit_id: int) -> list[Evidence]:
    with StateDB(load_config(config).db_url) as db, db.new_session() as session:
        return session.query(Evidence).filter(Evidence.gone_hit_id == hit_id).order_by(Evidence.id).all()


def warc_records(config: str, ev: Evidence) -> dict[str, tuple]:
    return records(load_config(config).state_dir / "evidence" / ev.warc_file)


def test_the_page_without_its_claims_is_archived_once_and_handed_over_with_the_hit(make_config, tmp_path):
    pages = site(promo=PROMO, security=BOTH)
    with SiteServer(routes(pages)) as server:
        config = str(make_config([{"id": "xyb", "urls": [server.url("/")]}]))
        patrolled(config)
        (promo,), (guarantee,) = hits_at(config, "promo"), hits_at(config, "security")
        pages["/promo.html"], pages["/security.html"] = RECTIFIED, ONE_DROPPED
        run2 = patrolled(config)
        run3 = patrolled(config)  # unchanged: nothing more to prove
    assert run3 > run2

    (after,) = removal_captures(config, promo["id"])
    assert (after.status, after.run_id, after.hit_id) == (200, run2, None), "the page after: no claim's proof"
    kind, status, body = warc_records(config, after)[after.record_id]
    assert (kind, status) == ("response", "200 OK") and "投资有风险".encode() in body and "保本保息".encode() not in body

    (successor,) = [h for h in hits_at(config, "security") if h["id"] != guarantee["id"]]
    (reworded,) = removal_captures(config, guarantee["id"])
    assert (reworded.hit_id, reworded.run_id) == (successor["id"], run2), \
        "one capture: the successor's proof, and the page without the rectified yield claim"

    with StateDB(load_config(config).db_url) as db:  # what reports and ES read as a hit's proof
        proof = stored_evidence(db, [promo["id"], successor["id"]])
    assert proof[promo["id"]]["warc_record_id"] != after.record_id
    assert proof[successor["id"]]["warc_record_id"] == reworded.record_id

    folder = tmp_path / "promo"
    manifest, _ = export(config, promo["id"], folder, "--latest")
    assert manifest["http_status"] == 200 and "保本保息".encode() in (folder / "page.html").read_bytes(), \
        "--latest is still the claim's last capture"
    removal = manifest["hit_removal"]
    assert (removal["why"], removal["run_id"]) == ("claim_removed", run2)
    shown = removal["removal_capture"]
    assert (shown["id"], shown["exported_as"], shown["exported_page"]) == (
        after.id, "after-removal.warc.gz", "page-after-removal.html")
    assert shown["redirect_chain"] == [{"url": promo["url"], "status": 200}]
    assert "gone_capture" not in removal and "gone-response.warc.gz" not in manifest["files"]
    assert (folder / "page-after-removal.html").read_bytes() == body
    assert after.record_id in records(folder / "after-removal.warc.gz")
    assert [(e["event"], e["run_id"], (e.get("removal_capture") or {}).get("id")) for e in manifest["hit_history"]] \
        == [("opened", 1, None), ("removed", run2, after.id)]
    summed = {line.split("  ")[1] for line in (folder / "SHA256SUMS").read_text().splitlines()}
    assert {"page-after-removal.html", "after-removal.warc.gz"} <= summed
    assert verify_export(folder).returncode == 0

    manifest, _ = export(config, guarantee["id"], tmp_path / "guarantee")
    assert (manifest["hit_removal"]["why"], manifest["hit_removal"]["replaced_by"]) == ("replaced", successor["id"])
    assert manifest["hit_removal"]["removal_capture"]["id"] == reworded.id

    shown_state = cli("show", str(promo["id"]), "--config", config).stdout
    assert f"in run {run2}, capture {after.id}\n" in shown_state, shown_state
    assert json.loads(cli("show", str(promo["id"]), "--config", config, "--json").stdout)["removal_capture"][
        "id"] == after.id

    (folder / "page-after-removal.html").write_bytes(PROMO.encode())  # the claim put back into the proof
    edited = verify_export(folder)
    assert edited.returncode == 1, edited.stdout
    assert "FAIL page-after-removal.html: SHA-256 differs from SHA256SUMS" in edited.stdout, edited.stdout
    (folder / "page-after-removal.html").write_bytes(body)
    tamper_warc_record(folder / "after-removal.warc.gz", after.record_id, "投资有风险", "保本保息啊")
    rewrite_sums(folder, manifest_too=True)
    forged = verify_export(folder).stdout
    assert (f"FAIL after-removal.warc.gz: record {after.record_id}: page bytes differ from the manifest's "
            "SHA-256") in forged, forged


def test_a_page_now_redirecting_to_a_page_without_its_claims_is_removed_with_the_chain_archived(
        make_config, tmp_path):
    pages = site(promo=PROMO)
    with SiteServer(routes(pages)) as server:
        config = str(make_config([{"id": "xyb", "urls": [server.url("/")]}]))
        patrolled(config)
        (promo,) = hits_at(config, "promo")
        pages["/promo.html"] = Reply(301, {"Location": server.url("/")})  # taken off: to the home page
        run2 = patrolled(config)
        patrolled(config)

    (hit,) = hits_at(config, "promo")
    assert (hit["removed_reason"], hit["removed_run"]) == ("claim_removed", run2), "closed, not open for ever"
    (after,) = removal_captures(config, promo["id"])
    assert (after.url, after.final_url, after.status, after.run_id) == (
        promo["url"], server.url("/"), 200, run2)
    (metadata,) = [body for kind, _, body in warc_records(config, after).values() if kind == "metadata"]
    assert json.loads(metadata)["redirect_chain"] == [{"url": promo["url"], "status": 301},
                                                      {"url": server.url("/"), "status": 200}]

    manifest, _ = export(config, promo["id"], tmp_path / "promo")
    assert manifest["hit_removal"]["removal_capture"]["redirect_chain"][0] == {"url": promo["url"], "status": 301}
    shown_state = cli("show", str(promo["id"]), "--config", config).stdout
    assert f"capture {after.id} ({promo['url']} redirected to {server.url('/')})" in shown_state, shown_state
    shown = json.loads(cli("show", str(promo["id"]), "--config", config, "--json").stdout)
    assert shown["final_url"] == promo["url"], "the claim was seen at the promo page, not at the home page"
