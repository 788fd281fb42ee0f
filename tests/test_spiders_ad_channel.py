"""Ad channels end to end: search results with ad slots and a classifieds listing, crawled with
the real CLI; attribution by domain, advertiser and name; an unregistered site found via an ad."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from channel_sites import platform_routes, rogue_routes, search_routes
from conftest import cli, json_lines
from smtp_fixtures import finding, store_hits, verdict
from crawler.config import load_config
from crawler.demo.server import SiteServer, routes
from crawler.discovery.models import HitAttribution, ListedPage
from crawler.store.db import StateDB
from crawler.store.models import Page


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("channels")
    with SiteServer(routes(platform_routes())) as platform, SiteServer(routes(rogue_routes())) as rogue:
        with SiteServer(routes(search_routes(platform.base_url, rogue.base_url))) as portal:
            config = root / "patrol.yaml"
            config.write_text(yaml.safe_dump({
                "state_dir": "state", "allow_private_networks": True, "download_timeout": 5,
                "targets": [
                    {"id": "xyb", "name": "重庆鑫盈宝网络科技有限公司", "aliases": ["鑫盈宝"], "business": "p2p",
                     "urls": [platform.url("/")]},
                    {"id": "jd", "name": "重庆金鼎财富管理有限公司", "aliases": ["金鼎财富"],
                     "business": "asset_management", "urls": ["http://jinding.example/"]},
                    {"id": "kft", "name": "重庆快付通信息技术有限公司", "aliases": ["快付通"], "business": "payment",
                     "urls": ["http://kft.example/"]},
                ],
                "channels": [
                    {"id": "search", "url": portal.base_url + "/s/{page}?wd={keyword}", "keywords": ["理财"],
                     "pages": 3, "selectors": {"item": "div.r", "link": "h3 a", "snippet": "p.abs",
                                               "advertiser": ".adv", "ad_label": ".ad-label"}},
                    {"id": "fenlei", "kind": "classifieds", "url": portal.base_url + "/fenlei", "follow": False,
                     "selectors": {"item": "li.post", "link": "xpath:./a[@class='t']", "advertiser": "i",
                                   "date": "em"}},
                ],
            }, allow_unicode=True), encoding="utf-8")
            result = cli("patrol", "--config", str(config), "--channels")
            yield config, result, portal, rogue, platform


def listed(config) -> dict[str, dict]:
    db = StateDB(load_config(config).db_url)
    try:
        with db.new_session() as session:
            rows = session.query(ListedPage, Page).join(Page, Page.id == ListedPage.page_id).all()
            return {p.url: {"target": p.target_id, "labels": p.labels, "final_url": p.final_url,
                            **{c: getattr(lp, c) for c in ("rank", "is_ad", "advertiser", "landing_chain", "kind",
                                                           "keyword", "attributed_target", "attribution_reason",
                                                           "attribution_detail", "posted_at", "slot")}}
                    for lp, p in rows}
    finally:
        db.close()


def test_sweep_succeeds_and_reads_every_page_until_the_results_stop(swept):
    config, result, portal, _, _ = swept
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"/s/1", "/s/2", "/s/3", "/fenlei"} <= set(p.split("?")[0] for p in portal.requests)
    run = json_lines(cli("runs", "--config", str(config), "--json").stdout)[0]
    assert run["status"] == "ok" and run["targets"]["channel:search"]["pages"] >= 3


def test_slots_record_channel_keyword_rank_ad_and_advertiser(swept):
    config, _, portal, rogue, platform = swept
    rows = listed(config)
    ad = rows[platform.url("/promo.html") + "#listed"]
    assert ad["target"] == "channel:search" and ad["slot"] and ad["is_ad"] is True
    assert (ad["rank"], ad["advertiser"], ad["keyword"], ad["kind"]) == (1, "鑫盈宝官方", "理财", "ad")
    assert "guaranteed_return" in ad["labels"], "the ad copy itself is classified"
    organic = rows[portal.url("/wiki.html") + "#listed"]
    assert organic["is_ad"] is False and organic["rank"] == 3 and organic["kind"] is None
    assert not any("没有链接" in url for url in rows), "a slot without a link is skipped"
    classified = rows[portal.url("/info-1.html") + "#listed"]
    assert classified["advertiser"] == "快付通代理" and classified["posted_at"] == "2016-10-18"
    assert portal.url("/info-1.html") not in rows and "/info-1.html" not in portal.requests, "follow: false"


def test_landing_pages_keep_the_redirect_chain_and_are_classified(swept):
    config, _, _, rogue, _ = swept
    landing = listed(config)[rogue.url("/go?src=ad")]
    assert landing["landing_chain"] == [rogue.url("/go?src=ad"), rogue.url("/landing.html")]
    assert landing["final_url"] == rogue.url("/landing.html") and not landing["slot"]
    assert {"guaranteed_return", "fund_pool"} <= set(landing["labels"])


def test_attribution_by_domain_advertiser_and_name(swept):
    config, _, portal, rogue, platform = swept
    rows = listed(config)
    by_domain = rows[platform.url("/promo.html")]
    assert (by_domain["attributed_target"], by_domain["attribution_reason"]) == ("xyb", "domain")
    by_advertiser = rows[rogue.url("/gp.html")]
    assert (by_advertiser["attributed_target"], by_advertiser["attribution_reason"]) == ("jd", "advertiser")
    by_name = rows[portal.url("/bbs.html")]
    assert (by_name["attributed_target"], by_name["attribution_reason"]) == ("jd", "name")
    assert "金鼎财富" in by_name["attribution_detail"]
    assert rows[rogue.url("/go?src=ad")]["attributed_target"] is None, "金牛 names no registered target"
    assert rows[portal.url("/wiki.html")]["attributed_target"] is None
    db = StateDB(load_config(config).db_url)
    with db.new_session() as session:
        attributed = {(a.target_id, a.reason) for a in session.query(HitAttribution)}
    db.close()
    assert {("xyb", "domain"), ("jd", "advertiser")} <= attributed, "attribution is stored with the hit"


def test_unregistered_site_reached_through_an_ad_becomes_a_candidate(swept):
    config, _, _, rogue, _ = swept
    rows = json_lines(cli("candidates", "list", "--config", str(config), "--json").stdout)
    assert [r["domain"] for r in rows] == [rogue.base_url.split("//")[1]], "registered and list domains are not candidates"
    candidate = rows[0]
    assert candidate["company_names"][0] == "重庆金牛财富管理有限公司"
    assert candidate["restricted"] == {"重庆金牛财富管理有限公司": ["财富管理"]}
    assert candidate["icp"] == ["渝ICP备16099999号"] and candidate["via"] == ["channel:search"]
    assert {"guaranteed_return"} <= set(candidate["categories"]) and candidate["hit_ids"]


def decided_copy(config, tmp_path):
    """The swept config and state DB copied, so that a decision leaves the others' candidate open."""
    shutil.copytree(config.parent / "state", tmp_path / "state")
    copy = tmp_path / "patrol.yaml"
    copy.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
    return copy


def candidate_of(config) -> dict:
    (row,) = json_lines(cli("candidates", "list", "--config", str(config), "--json").stdout)
    return row


def test_candidates_promote_and_dismiss(swept, tmp_path):
    copy = decided_copy(swept[0], tmp_path)
    candidate = candidate_of(copy)
    result = cli("candidates", "promote", str(candidate["id"]), "--config", str(copy), "--id", "jinniu",
                 "--business", "asset_management", "--note", "假冒理财")
    assert result.returncode == 0, result.stderr
    promoted_at = candidate_of(copy)["decided_at"]
    target = load_config(copy).target("jinniu")
    assert target.name == "重庆金牛财富管理有限公司" and target.urls[0].endswith(candidate["domain"] + "/")
    again = cli("candidates", "promote", str(candidate["id"]), "--config", str(copy), "--id", "jinniu2")
    assert again.returncode != 0 and "was promoted to target jinniu on" in again.stderr, again.stderr
    assert [t.id for t in load_config(copy).targets].count("jinniu2") == 0, "refused before the config is touched"
    assert json_lines(cli("candidates", "list", "--config", str(copy), "--json", "--status", "promoted").stdout)
    dismissed = cli("candidates", "dismiss", str(candidate["id"]), "--config", str(copy), "--note", "oops")
    assert dismissed.returncode == 1 and "dismissed" not in dismissed.stdout
    assert "was promoted to target jinniu on" in dismissed.stderr and "enabled: false" in dismissed.stderr
    assert str(copy) in dismissed.stderr and "Traceback" not in dismissed.stderr
    kept = candidate_of(copy)
    assert (kept["status"], kept["promoted_target"], kept["note"]) == ("promoted", "jinniu", "假冒理财"), \
        "the promotion is not lost"
    assert kept["decided_at"] == promoted_at
    assert cli("candidates", "dismiss", "999", "--config", str(copy)).returncode != 0


def test_a_dismissed_candidate_promoted_later_keeps_the_dismissal(swept, tmp_path):
    copy = decided_copy(swept[0], tmp_path)
    candidate = candidate_of(copy)
    assert cli("candidates", "dismiss", str(candidate["id"]), "--config", str(copy), "--note", "像是中介").returncode == 0
    dismissed_at = candidate_of(copy)["decided_at"]
    result = cli("candidates", "promote", str(candidate["id"]), "--config", str(copy), "--note", "核实为非法集资")
    assert result.returncode == 0, result.stderr
    assert "it had been dismissed on" in result.stdout and "像是中介" in result.stdout
    row = candidate_of(copy)
    assert row["status"] == "promoted" and row["note"].startswith("核实为非法集资")
    assert f"[earlier: dismissed {dismissed_at}: 像是中介]" in row["note"]


def test_a_promoted_target_id_names_the_port_and_is_not_taken(swept, tmp_path):
    copy = decided_copy(swept[0], tmp_path)
    candidate = candidate_of(copy)
    host, port = candidate["domain"].split(":")
    slug = f"{host.replace('.', '-')}-{port}"
    document = yaml.safe_load(copy.read_text(encoding="utf-8"))
    document["targets"].append({"id": slug, "name": "同一主机的另一端口", "business": "other",
                                "urls": [f"http://{host}:9/"]})
    copy.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    result = cli("candidates", "promote", str(candidate["id"]), "--config", str(copy))
    assert result.returncode == 0, result.stderr
    assert f"→ target {slug}-2 " in result.stdout
    target = load_config(copy).target(f"{slug}-2")
    assert target.allowed_domains == (candidate["domain"],)
    assert candidate_of(copy)["promoted_target"] == f"{slug}-2"


def test_promote_refuses_an_id_a_channel_has_or_a_removed_target_had(swept, tmp_path):
    copy = decided_copy(swept[0], tmp_path)
    candidate = candidate_of(copy)
    for taken in ("search", "channel:search"):  # the channel's id, and the id its pages are stored under
        refused = cli("candidates", "promote", str(candidate["id"]), "--config", str(copy), "--id", taken)
        assert refused.returncode == 1 and f"id {taken!r} is taken" in refused.stderr, refused.stderr
    assert candidate_of(copy)["status"] == "open" and "search" not in [t.id for t in load_config(copy).targets]
    with StateDB(load_config(copy).db_url) as db:  # kft patrolled once, then removed from the config
        store_hits(db, [("kft", "http://kft.example/", "快付通个人POS机办理", verdict([finding("payment_violation", "个人POS机")]))])
    document = yaml.safe_load(copy.read_text(encoding="utf-8"))
    document["targets"] = [t for t in document["targets"] if t["id"] != "kft"]
    copy.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    refused = cli("candidates", "promote", str(candidate["id"]), "--config", str(copy), "--id", "kft")
    assert refused.returncode == 1 and "id 'kft' is taken" in refused.stderr, "it would inherit kft's records"


def test_target_ids_of_candidates_on_two_ports_of_one_host_differ():
    from crawler.discovery.candidates import target_slug

    first = {"domain": "127.0.0.1:8080", "urls": ["http://127.0.0.1:8080/a.html"]}
    second = {"domain": "127.0.0.1:8081", "urls": ["http://127.0.0.1:8081/"]}
    plain = {"domain": "licai.example.com", "urls": ["https://LiCai.Example.com/x"]}
    assert (target_slug(first), target_slug(second)) == ("127-0-0-1-8080", "127-0-0-1-8081")
    assert target_slug(plain) == "licai-example-com"
    assert target_slug(plain, {"licai-example-com", "licai-example-com-2"}) == "licai-example-com-3"
    long = {"domain": "a" * 80 + ".cn", "urls": []}
    assert len(target_slug(long)) <= 64 and len(target_slug(long, {target_slug(long)})) <= 64
    assert re.fullmatch(r"[a-z0-9_-]+", target_slug({"domain": "例子.中国", "urls": ["http://例子.中国/"]}))


def test_a_promoted_candidates_hits_are_in_the_new_targets_dossier(swept, tmp_path):
    copy = decided_copy(swept[0], tmp_path)
    candidate = candidate_of(copy)
    result = cli("candidates", "promote", str(candidate["id"]), "--config", str(copy), "--id", "jinniu")
    assert result.returncode == 0, result.stderr
    assert f"{len(candidate['hit_ids'])} of its hit(s) attributed to jinniu (domain)" in result.stdout
    assert "taken over from jd" in result.stdout, "an attribution by advertiser gives way to the domain"
    dossier = cli("dossier", "jinniu", "--config", str(copy), "--format", "json")
    assert dossier.returncode == 0, dossier.stderr
    hits = json.loads(dossier.stdout)["hits"]
    assert sorted(h["id"] for h in hits) == sorted(candidate["hit_ids"])
    assert {h["attribution"]["reason"] for h in hits} == {"domain"}
    assert {h["attribution"]["detail"] for h in hits} == {candidate["domain"]}
    jd = json.loads(cli("dossier", "jd", "--config", str(copy), "--format", "json").stdout)["hits"]
    assert not {h["id"] for h in jd} & set(candidate["hit_ids"])


def test_a_listed_result_is_found_by_its_own_words_not_by_its_neighbours_on_the_list(swept):
    config, _, portal, rogue, _ = swept
    found = {r["url"] for r in json_lines(cli("search", "稳赚不赔", "--config", str(config), "--json").stdout)}
    assert rogue.url("/go?src=ad") + "#listed" in found, "the ad that says it"
    assert portal.url("/wiki.html") + "#listed" not in found, "listed on the same page, says nothing of it"
    found = {r["url"] for r in json_lines(cli("search", "计算方法", "--config", str(config), "--json").stdout)}
    assert portal.url("/wiki.html") + "#listed" in found


def test_search_snippets_mark_the_query_even_for_a_result_listed_by_its_title_alone(swept):
    config, _, portal, rogue, _ = swept
    found = {r["url"]: r for r in json_lines(cli("search", "免费领取", "--config", str(config), "--json").stdout)}
    assert "【免费领取】" in found[portal.url("/info-1.html") + "#listed"]["snippet"], found
    landing = {r["url"]: r for r in json_lines(cli("search", "资金池", "--config", str(config), "--json").stdout)}
    assert "【资金池】" in landing[rogue.url("/go?src=ad")]["snippet"]
