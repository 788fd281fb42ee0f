"""Documents per second through finpatrol's indexing path beside a plain ``helpers.bulk``.

Run by hand:  .venv/bin/python benchmarks/es_index.py [--pages 2000] [--url URL --flavor F]

Without --url an osmem-server (in-memory OpenSearch-compatible) is started.
Both sides index the same documents into fresh prefixes of the same cluster in
the same run: finpatrol's side includes building every document from the state
DB (jieba segmentation included), the pending bookkeeping and the async bulk;
the baseline sends the already-built documents with the sync ``helpers.bulk``.
The overhead target is ≤ 20 %.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elasticsearch import helpers  # noqa: E402

from crawler.config import Target  # noqa: E402
from crawler.items import PageItem  # noqa: E402
from crawler.store import elastic_queue as queue  # noqa: E402
from crawler.store.db import StateDB  # noqa: E402
from crawler.store.elastic_client import make_async_client, make_sync_client  # noqa: E402
from crawler.store.elastic_config import ElasticConfig  # noqa: E402
from crawler.store.elastic_setup import setup  # noqa: E402
from crawler.store.elastic_sync import build, push_pending  # noqa: E402
from crawler.store.pages import save_pages  # noqa: E402
from crawler.store.runs import sync_targets  # noqa: E402

TEXT = ("本平台承诺保本保息，年化收益率高达18%，稳赚不赔。近期部分出借人反映提现困难，平台正在处理逾期项目。"
        "我们是一家信息中介平台，理财非存款，产品有风险，投资须谨慎。地址：重庆市江津区几江街道。") * 8


def fill(db: StateDB, pages: int) -> None:
    sync_targets(db, [Target(id=f"t{i}", name=f"机构{i}", business="p2p", urls=[f"http://t{i}.example/"]) for i in range(20)])
    items = []
    for n in range(pages):
        text = f"第{n}页。" + TEXT
        labels = ["guaranteed_return"] if n % 3 == 0 else []
        verdict = {"labels": labels, "risk": "high" if labels else "none", "score": 0.9 if labels else 0.0,
                   "context": "platform_page", "yields": [],
                   "findings": [{"category": "guaranteed_return", "rule_id": "g.1", "text": "保本保息", "start": 8,
                                 "end": 12, "field": "text", "snippet": text[:30], "weight": 1.0, "negated": False}] if labels else []}
        body = text.encode()
        items.append(PageItem(
            target_id=f"t{n % 20}", url=f"http://t{n % 20}.example/p{n}.html", final_url=f"http://t{n % 20}.example/p{n}.html",
            status=200, headers={}, body=body, encoding="utf-8", fetched_at="2026-11-20T08:00:00+00:00",
            title=f"产品{n}", text=text, sha256=hashlib.sha256(body).hexdigest(),
            text_fingerprint=hashlib.sha256(body).hexdigest(), verdict=verdict))
    for start in range(0, len(items), 500):
        save_pages(db, items[start:start + 500], None)


async def finpatrol_side(db: StateDB, config: ElasticConfig) -> tuple[int, float]:
    es = make_async_client(config)
    try:
        await setup(es, config)
        queue.enqueue_all(db)
        started = time.perf_counter()
        result = await push_pending(db, es, config)
        elapsed = time.perf_counter() - started
        assert result.error is None, result.error
        return result.acked, elapsed
    finally:
        await es.close()


def baseline_side(db: StateDB, config: ElasticConfig) -> tuple[int, float]:
    queue.enqueue_all(db)
    docs = []
    while batch := queue.take(db, 1000, skip=len(docs)):
        built, _ = build(db, config.origin, batch)
        docs += built
    es = make_sync_client(config)
    try:
        asyncio.run(_setup_only(config))
        actions = [{"_op_type": "index", "_index": config.name({"page": "pages", "hit": "hits", "target": "targets"}[p.kind]),
                    "_id": doc_id, "_source": source} for p, doc_id, source in docs]
        started = time.perf_counter()
        ok, errors = helpers.bulk(es, actions, chunk_size=config.batch_size, raise_on_error=False)
        elapsed = time.perf_counter() - started
        assert not errors, errors[:1]
        return ok, elapsed
    finally:
        es.close()


async def _setup_only(config: ElasticConfig) -> None:
    es = make_async_client(config)
    try:
        await setup(es, config)
    finally:
        await es.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each side counts")
    parser.add_argument("--url")
    parser.add_argument("--flavor", default="opensearch", choices=("elasticsearch", "opensearch"))
    args = parser.parse_args()
    server = None
    url = args.url
    if url is None:
        from osmem_server import OsmemServer

        server = OsmemServer.start(freeze=False)
        url = server.url
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = StateDB(f"sqlite:///{tmp}/bench.db")
            fill(db, args.pages)
            base = {"hosts": [url], "flavor": args.flavor, "batch_size": 500, "origin": "bench"}
            ours_runs, plain_runs = [], []
            for n in range(args.rounds):  # alternate; each side gets an empty cluster (a fresh clone) when we own it
                for side, runs in (("fp", ours_runs), ("plain", plain_runs)):
                    clone = server.clone() if server is not None else None
                    config = ElasticConfig(**{**base, "hosts": [clone.url if clone else url]}, index_prefix=f"bench{side}{n}")
                    db.execute("DELETE FROM es_docs")
                    if side == "fp":
                        runs.append(asyncio.run(finpatrol_side(db, config)))
                    else:  # its documents are built before its clock starts: it measures transport only
                        runs.append(baseline_side(db, config))
                    if clone is not None:
                        clone.close()
            (ours_n, ours_s), (plain_n, plain_s) = min(ours_runs, key=lambda r: r[1]), min(plain_runs, key=lambda r: r[1])
            db.close()
    finally:
        if server is not None:
            server.close()
    ours, plain = ours_n / ours_s, plain_n / plain_s
    print(f"documents: finpatrol {ours_n}, helpers.bulk {plain_n}")
    print(f"finpatrol path (build from state DB + jieba + bookkeeping + async bulk): {ours:,.0f} docs/s")
    print(f"plain helpers.bulk of the same documents:                            {plain:,.0f} docs/s")
    print(f"ratio finpatrol/plain: {ours / plain:.2f}  (overhead {100 * (plain / ours - 1):.0f} %, target <= 20 %)")


if __name__ == "__main__":
    main()
