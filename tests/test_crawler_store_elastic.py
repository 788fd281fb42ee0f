"""Elasticsearch indexing against a real HTTP search server: setup, push, search, outage, rejections."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from crawler.config import Target
from crawler.items import PageItem
from crawler.store import elastic_queue as queue
from crawler.store.db import StateDB
from crawler.store.elastic_client import make_async_client
from crawler.store.elastic_search import search as es_search
from crawler.store.elastic_setup import setup, status
from crawler.store.elastic_sync import push_pending
from crawler.store.pages import save_pages
from crawler.store.runs import sync_targets
from crawler.store.search import Filters
from tests.es_fixtures import TcpGate, auth_rejecting, cluster, gate, mappings_copy, osmem_base  # noqa: F401

PAGES = {
    "/": ("平台首页", "本平台承诺保本保息，年化收益18%，资金由银行存管。", ["guaranteed_return", "high_yield"], "high"),
    "/about": ("关于我们", "我们是一家合规的信息中介平台，理财非存款，产品有风险，投资须谨慎。", [], "none"),
    "/news": ("平台公告", "近期部分用户反映提现困难，平台正在处理逾期项目。", ["collapse_signal"], "medium"),
    "/invest": ("投资项目", "原始股认购火热进行中，拉人头返利，保本保息。", ["illegal_fundraising", "guaranteed_return"], "high"),
}


def verdict(labels: list[str], risk: str, text: str, bad_yield=False) -> dict:
    findings = []
    for label in labels:
        word = {"guaranteed_return": "保本保息", "high_yield": "年化收益18%", "collapse_signal": "提现困难",
                "illegal_fundraising": "原始股认购"}[label]
        start = text.find(word)
        findings.append({"category": label, "rule_id": f"{label}.1", "text": word, "start": start,
                         "end": start + len(word), "field": "text", "snippet": text[max(0, start - 5):start + 15],
                         "weight": 1.0, "negated": False, "negated_by": None, "extra_key_from_classifier": 1})
    yields = [{"text": "年化收益18%", "low_annual_pct": "not a number" if bad_yield else 18.0,
               "high_annual_pct": 18.0, "period": "year", "promised": True}] if "high_yield" in labels else []
    return {"labels": labels, "risk": risk, "score": 0.9 if risk == "high" else 0.4, "context": "platform_page",
            "findings": findings, "yields": yields}


def item(target: str, base: str, path: str, title: str, text: str, labels, risk, when="2026-11-20T08:00:00+00:00",
         bad_yield=False) -> PageItem:
    body = f"<html><title>{title}</title><body>{text}</body></html>".encode()
    return PageItem(
        target_id=target, url=base + path, final_url=base + path, status=200, headers={}, body=body,
        encoding="utf-8", fetched_at=when, title=title, text=text, sha256=hashlib.sha256(body).hexdigest(),
        text_fingerprint=hashlib.sha256(text.encode()).hexdigest(), verdict=verdict(labels, risk, text, bad_yield),
    )


def fill(db: StateDB, target="alpha", base="http://alpha.example", pages=PAGES, run_id=None, **kw) -> list:
    sync_targets(db, [Target(id=target, name=f"{target}金融", business="p2p", urls=[base + "/"])])
    items = [item(target, base, path, *spec, **kw) for path, spec in pages.items()]
    return save_pages(db, items, run_id)


@pytest.fixture
def db(tmp_path):
    state = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield state
    state.close()


def run(coro):
    return asyncio.run(coro)


async def _with(config, fn):
    es = make_async_client(config)
    try:
        return await fn(es)
    finally:
        await es.close()


async def all_docs(es, alias: str) -> list[tuple[str, str]]:
    await es.indices.refresh(index=alias)
    body = await es.search(index=alias, query={"match_all": {}}, size=1000, source=False)
    return sorted((h["_id"], h["_index"]) for h in body["hits"]["hits"])


def test_setup_is_idempotent_and_upgrades_by_meta_version(cluster, tmp_path):
    config = cluster.config()
    first = run(_with(config, lambda es: setup(es, config)))
    assert {r["action"] for r in first if r["kind"] == "index template"} == {"installed"}
    assert {r["action"] for r in first if r["kind"] == "alias"} == {"created"}
    again = run(_with(config, lambda es: setup(es, config)))
    assert {r["action"] for r in again if r["kind"] in ("index template", "component template")} == {"current"}
    assert {r["action"] for r in again if r["kind"] == "alias"} == {"exists"}

    newer = mappings_copy(tmp_path)
    path = newer / "index_templates" / "finpatrol-hits.json"
    body = json.loads(path.read_text(encoding="utf-8"))
    hits_version, pages_version = body["_meta"]["version"], next(
        r["version"] for r in first if r["kind"] == "index template" and r["name"] == f"{cluster.prefix}-pages")
    body["_meta"]["version"] = body["template"]["mappings"]["_meta"]["version"] = hits_version + 1
    body["template"]["mappings"]["properties"]["reviewed_by"] = {"type": "keyword"}
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    upgraded = run(_with(config, lambda es: setup(es, config, newer)))
    hits_rows = {r["kind"]: r for r in upgraded if r["name"] == f"{cluster.prefix}-hits"}
    assert hits_rows["index template"]["action"] == "upgraded"
    assert hits_rows["alias"]["action"] == "mappings upgraded"
    assert {r["action"] for r in upgraded if r["name"] == f"{cluster.prefix}-pages" and r["kind"] != "policy"} == {"current", "exists"}

    async def check(es):
        mapping = await es.indices.get_mapping(index=f"{cluster.prefix}-hits")
        (only,) = mapping.body.values()
        assert only["mappings"]["properties"]["reviewed_by"] == {"type": "keyword"}
        assert only["mappings"]["dynamic"] == "strict"
        return await status(es, config)

    state = run(_with(config, check))
    assert state["families"]["hits"]["template_cluster"] == hits_version + 1
    assert state["families"]["pages"]["template_cluster"] == pages_version
    # The older files never downgrade what the cluster has.
    older = run(_with(config, lambda es: setup(es, config)))
    assert {r["action"] for r in older if r["name"] == f"{cluster.prefix}-hits" and r["kind"] == "index template"} == {"newer on cluster"}


def test_pages_and_hits_indexed_and_searched_in_chinese(cluster, db):
    config = cluster.config()
    fill(db)
    fill(db, target="beta", base="http://beta.example",
         pages={"/": ("贝塔理财", "贝塔平台保本保息，月息2分。", ["guaranteed_return"], "medium")})
    queue.enqueue_all(db)
    run(_with(config, lambda es: setup(es, config)))
    result = run(_with(config, lambda es: push_pending(db, es, config, refresh=True)))
    assert result.error is None and result.rejected == 0
    assert queue.counts(db) == {"page": {"indexed": 5}, "hit": {"indexed": 4}, "target": {"indexed": 2}}

    async def searches(es):
        got = {}
        got["all"] = await es_search(es, config, "保本保息", Filters())
        got["alpha"] = await es_search(es, config, "保本保息", Filters(targets=("alpha",)))
        got["high"] = await es_search(es, config, "保本保息", Filters(risk="high"))
        got["fundraising"] = await es_search(es, config, "保本保息", Filters(category="illegal_fundraising"))
        got["two_words"] = await es_search(es, config, "提现困难 逾期", Filters())
        got["none"] = await es_search(es, config, "区块链挖矿", Filters())
        return got

    got = run(_with(config, searches))
    assert {r["url"] for r in got["all"]} == {
        "http://alpha.example/", "http://alpha.example/invest", "http://beta.example/"}
    assert {r["target"] for r in got["alpha"]} == {"alpha"} and len(got["alpha"]) == 2
    assert {r["risk"] for r in got["high"]} == {"high"} and len(got["high"]) == 2
    assert [r["url"] for r in got["fundraising"]] == ["http://alpha.example/invest"]
    assert [r["url"] for r in got["two_words"]] == ["http://alpha.example/news"]
    assert got["none"] == []
    for r in got["all"]:
        assert "【保本保息】" in r["snippet"]
    embedded = db.index.search("保本保息", Filters(), 20)
    assert set(embedded[0]) == set(got["all"][0])  # the same JSON shape as the embedded index
    assert {r["page_id"] for r in embedded} == {r["page_id"] for r in got["all"]}


def test_a_traditional_page_is_found_by_simplified_words_and_its_own_characters_are_marked(cluster, db):
    """The snippet is the embedded index's: the page's own characters, marked where the query's words are."""
    config = cluster.config()
    fill(db, target="gamma", base="http://gamma.example",
         pages={"/": ("聚財寶理財", "香港聚財寶理財平台，穩健經營多年。本平台承諾保本保息，穩賺不賠。", [], "none")})
    queue.enqueue_all(db)
    run(_with(config, lambda es: setup(es, config)))
    run(_with(config, lambda es: push_pending(db, es, config, refresh=True)))
    for query in ("聚财宝 稳赚不赔", "聚財寶 穩賺不賠", "聚 财宝 稳赚不赔"):  # touching marks are one
        (found,) = run(_with(config, lambda es: es_search(es, config, query, Filters())))
        assert "【聚財寶】" in found["snippet"] and "【穩賺不賠】" in found["snippet"], found["snippet"]
        assert found["snippet"] == db.index.search(query, Filters(), 20)[0]["snippet"]


def test_outage_between_batches_loses_and_duplicates_nothing(cluster, db, gate, tmp_path):
    down = cluster.config(gate.url, batch_size=3)
    run(_with(down, lambda es: setup(es, down)))
    fill(db, run_id=None)
    queue.enqueue_all(db)
    first = run(_with(down, lambda es: push_pending(db, es, down, max_batches=1)))
    assert first.acked == 3

    gate.close()  # the cluster goes away for a while; the patrol goes on
    fill(db, target="beta", base="http://beta.example",
         pages={"/": ("贝塔理财", "贝塔平台保本保息。", ["guaranteed_return"], "medium")})
    fill(db, when="2026-11-21T08:00:00+00:00")  # the same pages patrolled again: hits' last_seen moves
    queue.enqueue_all(db)
    failed = run(_with(down, lambda es: push_pending(db, es, down)))
    assert failed.error and "cannot connect" in failed.error and failed.acked == 0
    pending = queue.counts(db)
    assert sum(c.get("pending", 0) for c in pending.values()) == 11

    gate.open()  # back, on the same address
    done = run(_with(down, lambda es: push_pending(db, es, down, refresh=True)))
    assert done.error is None
    assert {k: set(v) for k, v in queue.counts(db).items()} == {k: {"indexed"} for k in ("page", "hit", "target")}

    # A run without outage: the same state DB content pushed in one go into a second, fresh prefix.
    calm = cluster.config(index_prefix=cluster.prefix + "-calm", batch_size=100)
    calm_db = StateDB(f"sqlite:///{tmp_path / 'calm.db'}")
    fill(calm_db)
    fill(calm_db, target="beta", base="http://beta.example",
         pages={"/": ("贝塔理财", "贝塔平台保本保息。", ["guaranteed_return"], "medium")})
    fill(calm_db, when="2026-11-21T08:00:00+00:00")
    queue.enqueue_all(calm_db)
    run(_with(calm, lambda es: setup(es, calm)))
    run(_with(calm, lambda es: push_pending(calm_db, es, calm, refresh=True)))
    calm_db.close()

    async def compare(es):
        for family in ("pages", "hits", "targets"):
            with_outage = await all_docs(es, down.name(family))
            without = await all_docs(es, calm.name(family))
            ids = [i for i, _ in with_outage]
            assert len(ids) == len(set(ids)), f"{family}: a document twice"
            assert ids == [i for i, _ in without], f"{family}: not the same documents"
        body = await es.search(index=down.name("hits"), query={"term": {"target_id": "alpha"}}, size=10)
        assert {h["_source"]["last_seen"] for h in body["hits"]["hits"]} == {"2026-11-21T08:00:00+00:00"}

    run(_with(down, compare))


def test_unknown_outcome_after_rollover_is_found_not_duplicated(cluster, db):
    """An acknowledgement lost in transit, then a rollover: the re-send overwrites, never copies."""
    config = cluster.config()
    run(_with(config, lambda es: setup(es, config)))
    fill(db, pages={"/": PAGES["/"]})
    queue.enqueue_all(db)
    run(_with(config, lambda es: push_pending(db, es, config)))
    alias = config.name("pages")
    db.execute("UPDATE es_docs SET state = 'pending', attempts = 1, index_name = NULL WHERE kind = 'page'")

    async def roll_and_push(es):
        await es.indices.create(index=f"{alias}-000002")
        await es.indices.update_aliases(actions=[
            {"add": {"index": f"{alias}-000001", "alias": alias, "is_write_index": False}},
            {"add": {"index": f"{alias}-000002", "alias": alias, "is_write_index": True}},
        ])
        result = await push_pending(db, es, config, refresh=True)
        return result, await all_docs(es, alias)

    result, docs = run(_with(config, roll_and_push))
    assert result.acked == 1
    assert [index for _, index in docs] == [f"{alias}-000001"]


def test_rejected_documents_are_recorded_with_the_reason(cluster, db, tmp_path):
    from conftest import cli

    config = cluster.config()
    run(_with(config, lambda es: setup(es, config)))
    fill(db, pages={"/": PAGES["/"], "/about": PAGES["/about"]}, bad_yield=True)
    queue.enqueue_all(db)
    result = run(_with(config, lambda es: push_pending(db, es, config)))
    assert result.rejected == 1 and result.error is None
    assert queue.counts(db)["hit"] == {"rejected": 1}
    assert queue.counts(db)["page"] == {"indexed": 2}
    (rejection,) = queue.rejections(db)
    assert rejection["kind"] == "hit" and "mapper_parsing_exception" in rejection["reason"]
    assert "low_annual_pct" in rejection["reason"]

    config_file = tmp_path / "patrol.yaml"
    config_file.write_text(json.dumps({"database_url": db.url, "elasticsearch": cluster.yaml_block()}), encoding="utf-8")
    shown = cli("es", "status", "--config", str(config_file), "--json")
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout)
    assert out["pending"]["hit"] == {"rejected": 1}
    assert "low_annual_pct" in out["rejections"][0]["reason"]


def test_authentication_failure_is_reported_clearly(auth_rejecting, db, tmp_path):
    from conftest import cli

    fill(db, pages={"/": PAGES["/"]})
    queue.enqueue_all(db)
    config_file = tmp_path / "patrol.yaml"
    block = {"hosts": [auth_rejecting], "flavor": "elasticsearch", "request_timeout": 5, "max_retries": 0}
    config_file.write_text(json.dumps({"database_url": db.url, "elasticsearch": block}), encoding="utf-8")
    synced = cli("es", "sync", "--config", str(config_file), env={"FINPATROL_ES_API_KEY": "wrong"})
    assert synced.returncode == 1
    assert "authentication failed" in synced.stdout + synced.stderr
    assert "FINPATROL_ES_API_KEY" in synced.stdout + synced.stderr
    assert sum(c.get("pending", 0) for c in queue.counts(db).values()) == 3  # nothing lost
    setup_run = cli("es", "setup", "--config", str(config_file))
    assert setup_run.returncode == 1 and "authentication failed" in setup_run.stderr


def test_secrets_in_the_config_file_are_refused(tmp_path):
    from crawler.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as caught:
        parse_config("elasticsearch:\n  hosts: [https://127.0.0.1:9200]\n  password: hunter2\n")
    assert "FINPATROL_ES_PASSWORD" in str(caught.value) and "hunter2" not in str(caught.value)
