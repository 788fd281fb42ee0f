"""Kibana saved objects reference only mapped fields; roles and the OpenSearch node class."""

from __future__ import annotations

import asyncio
import json

import pytest
from elasticsearch import ApiError

from crawler.store.elastic_client import make_async_client
from crawler.store.elastic_kibana import load_objects, referenced_fields
from crawler.store.elastic_setup import MAPPINGS_DIR
from tests.es_fixtures import cluster, osmem_base  # noqa: F401

KIBANA = MAPPINGS_DIR / "kibana" / "finpatrol.ndjson"


def mapped_fields(family: str) -> set[str]:
    body = json.loads((MAPPINGS_DIR / "index_templates" / f"finpatrol-{family}.json").read_text(encoding="utf-8"))
    out: set[str] = set()

    def walk(props: dict, prefix: str) -> None:
        for name, spec in props.items():
            out.add(prefix + name)
            for sub in spec.get("fields", {}):
                out.add(f"{prefix}{name}.{sub}")
            walk(spec.get("properties", {}), f"{prefix}{name}.")

    walk(body["template"]["mappings"]["properties"], "")
    return out


def data_view_of(obj: dict, objects: dict) -> str | None:
    if obj["type"] == "index-pattern":
        return obj["attributes"]["title"]
    for ref in obj.get("references", ()):
        if ref["type"] == "index-pattern":
            return objects[ref["id"]]["attributes"]["title"]
    return None


def test_every_field_a_saved_object_references_is_mapped():
    objects = {o["id"]: o for o in load_objects(KIBANA)}
    checked = 0
    for obj in objects.values():
        view = data_view_of(obj, objects)
        if view is None:
            continue
        fields = referenced_fields(obj)
        missing = fields - mapped_fields(view.removeprefix("finpatrol-"))
        assert not missing, f"{obj['type']} {obj['id']} uses unmapped fields {sorted(missing)} of {view}"
        checked += len(fields)
    assert checked > 40


def test_saved_objects_cover_the_dashboard_and_every_category():
    from crawler.store.elastic_docs import SIGNAL_CATEGORIES

    objects = {o["id"]: o for o in load_objects(KIBANA)}
    views = {o["attributes"]["title"] for o in objects.values() if o["type"] == "index-pattern"}
    assert {"finpatrol-hits", "finpatrol-pages"} <= views
    searches = [o for o in objects.values() if o["type"] == "search"]
    labelled = {o["id"].removeprefix("finpatrol-hits-") for o in searches if o["id"].startswith("finpatrol-hits-")}
    assert SIGNAL_CATEGORIES <= labelled and len(labelled) == 12
    dashboard = objects["finpatrol-overview"]
    assert {r["id"] for r in dashboard["references"]} <= set(objects)
    assert len(json.loads(dashboard["attributes"]["panelsJSON"])) == 4


def test_a_referenced_field_that_is_not_mapped_is_caught():
    obj = {"type": "search", "attributes": {"columns": ["url", "no_such_field"],
           "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"query": {"query": "labels : x and ghost : y"}})}}}
    assert {"no_such_field", "ghost"} <= referenced_fields(obj) - mapped_fields("hits")


def test_roles_investigator_reads_and_writer_cannot_delete():
    roles = {p.stem: json.loads(p.read_text()) for p in (MAPPINGS_DIR / "roles").glob("*.json")}
    investigator = {p for i in roles["finpatrol_investigator"]["indices"] for p in i["privileges"]}
    writer = {p for i in roles["finpatrol_writer"]["indices"] for p in i["privileges"]}
    assert investigator == {"read", "view_index_metadata"}
    assert "index" in writer and not writer & {"delete", "delete_index", "manage", "all", "write"}


def test_opensearch_flavor_sends_plain_json_where_the_compat_header_gets_406(cluster):
    if cluster.flavor != "opensearch":
        pytest.skip("only meaningful against an OpenSearch-compatible server")

    async def create(flavor: str, name: str):
        es = make_async_client(cluster.config(flavor=flavor))
        try:
            return await es.index(index=name, document={"title": "保本保息"})
        finally:
            await es.close()

    with pytest.raises(ApiError) as caught:
        asyncio.run(create("elasticsearch", "compat-header"))
    assert caught.value.status_code == 406
    assert asyncio.run(create("opensearch", "plain-json"))["result"] == "created"
