"""``finpatrol search`` on the cluster: same filters and result shape as the embedded index.

Every jieba word of the query must match (as in the embedded index), either as
a word of the whitespace-analysed ``*_seg`` fields or as a phrase of the
``cjk``-analysed fields, so a word jieba splits differently in the page still
matches by its bigrams. Snippets are cut from the page's own text as the embedded
index cuts them (``crawler.store.search.snippet``), not the cluster's highlights: its
``cjk`` analysis does not fold characters as the ``*_seg`` terms are folded, so a
traditional page found by simplified words (聚財寶 by 聚财宝) came back unmarked.
Settings: ``ElasticConfig`` (index_prefix, origin).
"""

from __future__ import annotations

import logging

from elasticsearch import AsyncElasticsearch

from crawler.store.db import iso, parse_time
from crawler.store.elastic_client import ClusterUnavailable  # noqa: F401  (re-exported for the CLI)
from crawler.store.elastic_config import ElasticConfig
from crawler.store.search import CURRENT, Filters, query_terms, snippet

logger = logging.getLogger(__name__)

FIELDS = ("title^3", "title_seg^3", "text", "text_seg")


def build_query(query: str, filters: Filters, origin: str | None = None) -> dict:
    """The query body for the pages alias."""
    must = [
        {"multi_match": {"query": term, "type": "phrase", "fields": list(FIELDS)}}
        for term in query_terms(query)
    ]
    filter_ = []
    if origin:
        filter_.append({"term": {"origin": origin}})
    if filters.targets:
        filter_.append({"terms": {"target_id": list(filters.targets)}})
    if filters.category:
        filter_.append({"term": {"labels": filters.category}})
    if filters.risk:
        filter_.append({"term": {"risk": filters.risk}})
    when = {}
    if filters.since:
        when["gte"] = iso(filters.since)
    if filters.until:
        when["lt"] = iso(filters.until)
    if when:
        filter_.append({"range": {"fetched_at": when}})
    return {"bool": {"must": must, "filter": filter_}}


async def search(
    es: AsyncElasticsearch, config: ElasticConfig, query: str, filters: Filters, limit: int = 20,
) -> list[dict]:
    """Pages matching every word of the query, best first, as ``EmbeddedIndex.search`` returns them."""
    terms = query_terms(query)
    if not terms:
        return []
    response = await es.search(
        index=config.name("pages"), query=build_query(query, filters, config.origin), size=limit,
        source_excludes=["text_seg", "title_seg"],
        sort=["_score", {"fetched_at": "desc"}],
    )
    return [result(hit, query, terms) for hit in response["hits"]["hits"]]


def result(hit: dict, query: str, terms: list[str]) -> dict:
    src = hit["_source"]
    # a result listed by its title alone (a classifieds row) has no text: cut from the title
    cut = snippet(src.get("text") or src.get("title") or "", query, terms)
    return {
        "page_id": src.get("page_id"),
        "hit_id": src.get("hit_id"),
        "target": src.get("target_id"),
        "url": src.get("url"),
        "final_url": src.get("final_url"),
        "title": src.get("title") or "",
        "labels": list(src.get("labels") or ()),
        "risk": src.get("risk") or "none",
        "score": src.get("score") or 0.0,
        "fetched_at": iso(parse_time(src["fetched_at"])) if src.get("fetched_at") else None,
        "snippet": cut,
        "rank": round(float(hit.get("_score") or 0.0), 4),
        **CURRENT,  # the cluster holds pages as they are now, not their earlier versions
    }


def search_cluster(config: ElasticConfig, query: str, filters: Filters, limit: int = 20) -> list[dict]:
    """``search`` for a command line: own client and event loop; errors as ``ClusterUnavailable``."""
    import asyncio

    from elastic_transport import TransportError
    from elasticsearch import ApiError

    from crawler.store.elastic_client import ClusterUnavailable, describe, make_async_client

    async def once() -> list[dict]:
        es = make_async_client(config)
        try:
            return await search(es, config, query, filters, limit)
        except (ApiError, TransportError) as e:
            raise ClusterUnavailable(describe(e, config)) from e
        finally:
            await es.close()

    return asyncio.run(once())
