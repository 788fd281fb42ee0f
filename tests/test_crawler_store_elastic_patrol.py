"""Whole patrols (real CLI, real local site) indexing into a real HTTP search server."""

from __future__ import annotations

import json
import time
import urllib.request

import yaml

from conftest import cli, json_lines
from crawler.config import load_config
from crawler.demo.server import Reply, SiteServer, routes
from crawler.store.db import StateDB
from crawler.store.elastic_docs import segment
from crawler.store.elastic_search import build_query
from crawler.store.search import Filters
from tests.es_fixtures import cluster, gate, osmem_base  # noqa: F401


def page(title: str, body: str, links: tuple[str, ...] = ()) -> str:
    nav = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><ul class='nav'>{nav}</ul><article><h1>{title}</h1><p>{body}</p></article></body></html>"
    )


BODIES = {
    "/p1.html": ("稳盈计划", "本平台承诺保本保息，年化收益率高达18%，稳赚不赔，欢迎投资。"),
    "/p2.html": ("公司介绍", "我们是一家信息中介平台，理财非存款，产品有风险，投资须谨慎。"),
    "/p3.html": ("原始股", "原始股认购火热进行中，内部认购，拉人头返利，保本保息。"),
    "/p4.html": ("平台公告", "近期部分出借人反映提现困难，平台正在处理逾期项目，请耐心等待。"),
    "/p5.html": ("联系我们", "地址：重庆市江津区几江街道，电话：023-00000000。"),
    "/p6.html": ("首付贷", "首付分期，众筹买房，月息2分，到期刚性兑付。"),
}


def site_routes(on_last=None) -> dict:
    links = tuple(BODIES) + ("/last.html",)
    table = {"/": page("鑫盈宝", "鑫盈宝网络借贷信息中介平台。", links)}
    table.update({path: page(*spec) for path, spec in BODIES.items()})

    def last(request):
        if on_last is not None:
            on_last()
        return Reply(body=page("最后一页", "平台资金池随存随取，保本保息。").encode("utf-8"),
                     headers={"Content-Type": "text/html; charset=utf-8"})

    table["/last.html"] = last
    return table


def write_config(path, site_url: str, es_block: dict | None) -> str:
    document = {"state_dir": "state", "allow_private_networks": True, "download_timeout": 5,
                "targets": [{"id": "xyb", "name": "鑫盈宝", "business": "p2p", "urls": [site_url]}]}
    if es_block:
        document["elasticsearch"] = es_block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return str(path)


def count(url: str, index: str) -> int:
    urllib.request.urlopen(urllib.request.Request(f"{url}/{index}/_refresh", method="POST"), timeout=5).read()
    with urllib.request.urlopen(f"{url}/{index}/_count", timeout=5) as response:
        return json.loads(response.read())["count"]


def doc_ids(url: str, index: str) -> list[str]:
    count(url, index)
    request = urllib.request.Request(
        f"{url}/{index}/_search", data=json.dumps({"size": 1000, "_source": False}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return sorted(h["_id"] for h in json.loads(response.read())["hits"]["hits"])


def search_all(url: str, index: str) -> list[dict]:
    count(url, index)
    request = urllib.request.Request(
        f"{url}/{index}/_search", data=json.dumps({"size": 1000}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return [h["_source"] for h in json.loads(response.read())["hits"]["hits"]]


def test_patrol_indexes_and_search_uses_the_cluster(cluster, tmp_path):
    with SiteServer(routes(site_routes())) as site:
        config = write_config(tmp_path / "a" / "patrol.yaml", site.url("/"), cluster.yaml_block(batch_size=2))
        assert cli("es", "setup", "--config", config).returncode == 0
        patrolled = cli("patrol", "--config", config)
        assert patrolled.returncode == 0, patrolled.stderr
    status = json.loads(cli("es", "status", "--config", config, "--json").stdout)
    assert set(status["pending"]) == {"page", "hit", "target"}
    assert all(set(states) == {"indexed"} for states in status["pending"].values())
    assert status["cluster"]["families"]["pages"]["documents"] == 8

    hits = search_all(cluster.url, f"{cluster.prefix}-hits")
    assert hits and all(h["evidence"]["sha256"] for h in hits)
    db = StateDB(load_config(config).db_url)
    warcs = {row[0]: row[1] for row in db.execute("SELECT hit_id, warc_file FROM evidence WHERE hit_id IS NOT NULL")}
    db.close()
    assert warcs, "the evidence pipeline recorded WARC evidence for the hits"
    assert {h["hit_id"]: h["evidence"].get("warc_file") for h in hits if h["hit_id"] in warcs} == warcs

    found = json_lines(cli("search", "保本保息", "--config", config, "--json").stdout)
    assert {r["url"].rsplit("/", 1)[1] for r in found} == {"p1.html", "p3.html", "last.html"}
    assert all("【保本保息】" in r["snippet"] for r in found)
    high = json_lines(cli("search", "保本保息", "--risk", "high", "--config", config, "--json").stdout)
    assert {r["risk"] for r in high} <= {"high"}
    embedded_config = write_config(tmp_path / "a" / "embedded.yaml", site.url("/"), None)
    embedded = json_lines(cli("search", "保本保息", "--config", embedded_config, "--json").stdout)
    assert {r["page_id"] for r in embedded} == {r["page_id"] for r in found}
    assert [set(r) for r in embedded][:1] == [set(r) for r in found][:1]


def test_cluster_down_mid_patrol_then_sync_gives_the_same_documents(cluster, gate, tmp_path):
    def close_gate_once_something_is_indexed():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and count(cluster.url, f"{cluster.prefix}-pages") == 0:
            time.sleep(0.1)
        gate.close()

    with SiteServer(routes(site_routes(close_gate_once_something_is_indexed))) as site:
        block = cluster.yaml_block(gate.url, batch_size=2)
        config = write_config(tmp_path / "outage" / "patrol.yaml", site.url("/"), block)
        assert cli("es", "setup", "--config", config).returncode == 0
        patrolled = cli("patrol", "--config", config)
        assert patrolled.returncode == 0, patrolled.stderr
        before = json.loads(cli("es", "status", "--config", config, "--json").stdout or "{}")
        assert before["error"] and sum(s.get("pending", 0) for s in before["pending"].values()) > 0
        assert 0 < count(cluster.url, f"{cluster.prefix}-pages") < 8

        gate.open()
        synced = cli("es", "sync", "--config", config, "--json")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert json_lines(synced.stdout)[0]["pending"] == 0

        calm_block = cluster.yaml_block(index_prefix=cluster.prefix + "-calm", batch_size=2)
        calm = write_config(tmp_path / "calm" / "patrol.yaml", site.url("/"), calm_block)
        assert cli("es", "setup", "--config", calm).returncode == 0
        assert cli("patrol", "--config", calm).returncode == 0

    for family in ("pages", "hits", "targets"):
        with_outage = doc_ids(cluster.url, f"{cluster.prefix}-{family}")
        without = doc_ids(cluster.url, f"{cluster.prefix}-calm-{family}")
        assert len(with_outage) == len(set(with_outage)), f"{family}: a document twice"
        assert with_outage == without, f"{family}: not the same documents"


SECURITY = "借款人逾期时，{}，100%本息保障。"


def test_rectified_reworded_and_gone_hits_are_sent_again(cluster, tmp_path):
    """A patrol that removes hits updates their documents: Kibana must not show them live."""
    links = ("/security.html", "/promo.html", "/pool.html")
    table = {
        "/": page("鑫盈宝", "鑫盈宝网络借贷信息中介平台。", links),
        "/security.html": page("风控措施", SECURITY.format("风险准备金先行赔付")),
        "/promo.html": page("鑫盈宝新手标", "鑫盈宝新手标，保本保息，年化收益率高达18%。"),
        "/pool.html": page("活期宝", "平台资金池随存随取，保本保息。"),
    }
    with SiteServer(routes(table)) as site:
        config = write_config(tmp_path / "r" / "patrol.yaml", site.url("/"), cluster.yaml_block(batch_size=2))
        assert cli("es", "setup", "--config", config).returncode == 0
        first = cli("patrol", "--config", config)
        assert first.returncode == 0, first.stderr
        before = {h["url"].rsplit("/", 1)[1]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}
        assert set(before) == {"security.html", "promo.html", "pool.html"}

        # The guarantee is reworded, the promo claim taken down, the pool page deleted.
        table["/security.html"] = page("风控措施", SECURITY.format("平台先行赔付"))
        table["/promo.html"] = page("鑫盈宝新手标", "鑫盈宝新手标，市场有风险，投资需谨慎。")
        table["/"] = page("鑫盈宝", "鑫盈宝网络借贷信息中介平台。", links[:2])
        del table["/pool.html"]
        second = cli("patrol", "--config", config)
        assert second.returncode == 0, second.stderr

    docs = {d["hit_id"]: d for d in search_all(cluster.url, f"{cluster.prefix}-hits")}
    stored = {h["id"]: h for h in json_lines(cli("hits", "--config", config, "--json").stdout)}
    (reworded,) = [h for h in stored.values() if h["url"].endswith("/security.html") and not h["removed_at"]]
    assert set(docs) == set(stored)
    old_guarantee = docs[before["security.html"]["id"]]
    assert old_guarantee["removed_at"] and old_guarantee["current"] is False
    assert old_guarantee["replaced_by"] == reworded["id"]
    for name in ("promo.html", "pool.html"):
        doc = docs[before[name]["id"]]
        assert doc["removed_at"] and doc["current"] is False and doc["replaced_by"] is None, name
    live = docs[reworded["id"]]
    assert live["current"] is True and live["removed_at"] is None and live["replaced_by"] is None
    assert {d["post"] for d in docs.values()} == {site.url(f"/{name}") for name in before}

    pages = {d["url"].rsplit("/", 1)[1]: d for d in search_all(cluster.url, f"{cluster.prefix}-pages")}
    assert pages["pool.html"]["gone_at"] and pages["promo.html"]["gone_at"] is None


def found_in(url: str, index: str, words: str) -> set[int]:
    """Hit ids of the documents the cluster finds by these words (the query ``finpatrol search`` sends)."""
    count(url, index)
    body = {"size": 1000, "query": build_query(words, Filters()), "_source": ["hit_id"]}
    request = urllib.request.Request(f"{url}/{index}/_search", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return {h["_source"]["hit_id"] for h in json.loads(response.read())["hits"]["hits"]}


def test_a_replaced_hit_keeps_the_words_it_was_found_in(cluster, tmp_path):
    """A hit's document holds the title and text of the version it was found in, not the page's
    current text: a reworded claim stays findable by its own words, with text matching its findings."""
    table = {
        "/": page("鑫盈宝", "鑫盈宝网络借贷信息中介平台。", ("/security.html", "/promo.html", "/offer.html")),
        "/security.html": page("风控措施", SECURITY.format("风险准备金先行赔付")),
        "/promo.html": page("鑫盈宝新手标", "鑫盈宝新手标，保本保息，年化收益率高达18%。"),
        "/offer.html": page("原始股", "原始股认购火热进行中，内部认购，拉人头返利。"),
    }
    with SiteServer(routes(table)) as site:
        config = write_config(tmp_path / "w" / "patrol.yaml", site.url("/"), cluster.yaml_block(batch_size=2))
        assert cli("es", "setup", "--config", config).returncode == 0
        assert cli("patrol", "--config", config).returncode == 0
        table["/security.html"] = page("风险保障", SECURITY.format("平台先行赔付"))
        table["/promo.html"] = page("鑫盈宝新手标", "鑫盈宝新手标，市场有风险，投资需谨慎。")
        table["/offer.html"] = Reply(302, {"Location": "/", "Content-Length": "0"})
        second = cli("patrol", "--config", config)
        assert second.returncode == 0, second.stderr

    stored = json_lines(cli("hits", "--config", config, "--json").stdout)
    (old,) = [h for h in stored if h["url"].endswith("/security.html") and h["removed_at"]]
    (new,) = [h for h in stored if h["url"].endswith("/security.html") and not h["removed_at"]]
    (rectified,) = [h for h in stored if h["url"].endswith("/promo.html")]
    assert rectified["removed_at"]
    hits = f"{cluster.prefix}-hits"
    docs = {d["hit_id"]: d for d in search_all(cluster.url, hits)}
    assert docs[old["id"]]["replaced_by"] == new["id"]
    assert "风险准备金先行赔付" in docs[old["id"]]["text"] and "平台先行赔付" not in docs[old["id"]]["text"]
    assert docs[old["id"]]["title"] == "风控措施"
    assert "平台先行赔付" in docs[new["id"]]["text"] and docs[new["id"]]["title"] == "风险保障"
    assert "保本保息" in docs[rectified["id"]]["text"]
    for doc in docs.values():  # the jieba terms are those of the hit's own words
        assert (doc["title_seg"], doc["text_seg"]) == (segment(doc["title"]), segment(doc["text"])), doc["hit_id"]
    (offer,) = [h for h in stored if h["url"].endswith("/offer.html")]
    assert docs[offer["id"]]["final_url"] == docs[offer["id"]]["evidence"]["final_url"] == site.url("/offer.html"), \
        "where the claim was seen, though the page redirects to the home page now"
    assert found_in(cluster.url, hits, "风险准备金") == {old["id"]}
    assert found_in(cluster.url, hits, "保本保息") == {rectified["id"]}
    assert found_in(cluster.url, hits, "平台先行赔付") == {new["id"]}

    pages = {d["url"].rsplit("/", 1)[1]: d for d in search_all(cluster.url, f"{cluster.prefix}-pages")}
    assert "平台先行赔付" in pages["security.html"]["text"] and "风险准备金" not in pages["security.html"]["text"]
    assert "投资需谨慎" in pages["promo.html"]["text"]
