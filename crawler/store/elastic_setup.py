"""Install and inspect the cluster side: templates, lifecycle policy, aliases.

Everything comes from ``es_mappings/`` (JSON data, named with the default
prefix ``finpatrol-``; another ``index_prefix`` is substituted on the way).
``setup`` is idempotent: an object whose ``_meta.version`` on the cluster equals
the file's is left alone, a lower one is upgraded (templates are replaced and
the new mappings are put on the live indices behind each alias), a higher one
is reported and never downgraded. Every family lives behind an alias with a
write index (``finpatrol-hits`` → ``finpatrol-hits-000001``). The pages policy
is installed where the cluster has a lifecycle API (ILM on Elasticsearch, ISM
on OpenSearch); a cluster without one gets no rollover, and ``status`` says so.
Settings: ``ElasticConfig`` (index_prefix, flavor, pages_retention_days, rollover_*).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError

from crawler.store.elastic_config import ElasticConfig

logger = logging.getLogger(__name__)

MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "es_mappings"
FAMILIES = ("pages", "hits", "targets", "alerts")
DEFAULT_PREFIX = "finpatrol-"


@dataclass
class Mappings:
    """The JSON of ``es_mappings/`` with the configured prefix applied."""

    components: dict[str, dict] = field(default_factory=dict)
    templates: dict[str, dict] = field(default_factory=dict)
    policy: dict | None = None

    @staticmethod
    def load(config: ElasticConfig, root: Path = MAPPINGS_DIR) -> "Mappings":
        prefix = config.index_prefix + "-"

        def read(path: Path) -> dict:
            return json.loads(path.read_text(encoding="utf-8").replace(DEFAULT_PREFIX, prefix))

        out = Mappings()
        for path in sorted((root / "component_templates").glob("*.json")):
            out.components[path.stem.replace(DEFAULT_PREFIX, prefix, 1)] = read(path)
        for path in sorted((root / "index_templates").glob("*.json")):
            out.templates[path.stem.replace(DEFAULT_PREFIX, prefix, 1)] = read(path)
        policy = root / "policies" / config.flavor / "finpatrol-pages.json"
        if policy.exists():
            text = policy.read_text(encoding="utf-8").replace(DEFAULT_PREFIX, prefix)
            for key, value in {
                "{retention_days}": str(config.pages_retention_days),
                "{rollover_max_age}": config.rollover_max_age,
                "{rollover_max_primary_shard_size}": config.rollover_max_primary_shard_size,
            }.items():
                text = text.replace(key, value)
            out.policy = json.loads(text)
        return out


def version_of(body: dict | None) -> int | None:
    meta = (body or {}).get("_meta") or {}
    value = meta.get("version")
    return int(value) if isinstance(value, (int, float, str)) and str(value).isdigit() else None


async def _template_version(es: AsyncElasticsearch, name: str, component: bool) -> int | None:
    try:
        if component:
            body = await es.cluster.get_component_template(name=name)
            return version_of(body["component_templates"][0]["component_template"])
        body = await es.indices.get_index_template(name=name)
        return version_of(body["index_templates"][0]["index_template"])
    except NotFoundError:
        return None


def _decide(current: int | None, wanted: int | None) -> str:
    if current is None:
        return "installed"
    if wanted is not None and current < wanted:
        return "upgraded"
    if wanted is not None and current > wanted:
        return "newer on cluster"
    return "current"


async def lifecycle_api(es: AsyncElasticsearch, config: ElasticConfig) -> bool:
    """True when the cluster answers the lifecycle API (ILM or ISM) at all."""
    path = "/_ilm/policy" if config.flavor == "elasticsearch" else "/_plugins/_ism/policies"
    try:
        await es.perform_request("GET", path, headers={"accept": "application/json"})
        return True
    except NotFoundError as e:  # an API that exists answers 404 for "no such policy" with a body
        return isinstance(e.body, dict) and "error" in e.body and "no handler" not in str(e.body)
    except ApiError:
        return False


async def _install_policy(es, config: ElasticConfig, mappings: Mappings) -> tuple[str, int | None]:
    name = config.name("pages")
    body = {k: v for k, v in mappings.policy.items() if k != "_meta"}
    wanted = version_of(mappings.policy)
    json_headers = {"accept": "application/json", "content-type": "application/json"}
    if config.flavor == "elasticsearch":
        path = f"/_ilm/policy/{name}"
        try:
            current = (await es.perform_request("GET", path, headers=json_headers))[name]["policy"]
            have = version_of(current)
        except NotFoundError:
            have = None
        action = _decide(have, wanted)
        if action in ("installed", "upgraded"):
            await es.perform_request("PUT", path, body=body, headers=json_headers)
        return action, wanted
    path = f"/_plugins/_ism/policies/{name}"
    params = ""
    try:
        current = await es.perform_request("GET", path, headers=json_headers)
        have = version_of({"_meta": {"version": _ism_version(current["policy"].get("description", ""))}})
        params = f"?if_seq_no={current['_seq_no']}&if_primary_term={current['_primary_term']}"
    except NotFoundError:
        have = None
    action = _decide(have, wanted)
    if action in ("installed", "upgraded"):
        await es.perform_request("PUT", path + params, body=body, headers=json_headers)
    return action, wanted


def _ism_version(description: str) -> int | None:
    """ISM policies have no _meta; the version is written as ``(_meta.version N)`` in the description."""
    marker = "_meta.version "
    if marker not in description:
        return None
    digits = description.split(marker, 1)[1].split(")", 1)[0].strip()
    return int(digits) if digits.isdigit() else None


def _lifecycle_settings(config: ElasticConfig) -> dict:
    alias = config.name("pages")
    if config.flavor == "elasticsearch":
        return {"index.lifecycle.name": alias, "index.lifecycle.rollover_alias": alias}
    return {"plugins.index_state_management.rollover_alias": alias}


async def setup(es: AsyncElasticsearch, config: ElasticConfig, root: Path = MAPPINGS_DIR) -> list[dict]:
    """Install or upgrade everything; one report row per object: kind, name, action, version."""
    mappings = Mappings.load(config, root)
    report: list[dict] = []
    has_lifecycle = await lifecycle_api(es, config)
    if mappings.policy is not None and has_lifecycle:
        action, wanted = await _install_policy(es, config, mappings)
        report.append({"kind": "policy", "name": config.name("pages"), "action": action, "version": wanted})
    else:
        report.append({"kind": "policy", "name": config.name("pages"), "action": "unsupported by cluster",
                       "version": version_of(mappings.policy)})
    for name, body in mappings.components.items():
        wanted, have = version_of(body), await _template_version(es, name, component=True)
        action = _decide(have, wanted)
        if action in ("installed", "upgraded"):
            await es.cluster.put_component_template(name=name, **body_args(body))
        report.append({"kind": "component template", "name": name, "action": action, "version": wanted})
    for name, body in mappings.templates.items():
        if has_lifecycle and (body.get("_meta") or {}).get("lifecycle"):
            body = json.loads(json.dumps(body))
            body["template"]["settings"].update(_lifecycle_settings(config))
        wanted, have = version_of(body), await _template_version(es, name, component=False)
        action = _decide(have, wanted)
        if action in ("installed", "upgraded"):
            await es.indices.put_index_template(name=name, **body_args(body))
        report.append({"kind": "index template", "name": name, "action": action, "version": wanted})
        alias = body["_meta"]["alias"]
        alias_action = await ensure_alias(es, alias)
        if action == "upgraded" and alias_action == "exists":
            await es.indices.put_mapping(index=alias, **body["template"]["mappings"])
            alias_action = "mappings upgraded"
        report.append({"kind": "alias", "name": alias, "action": alias_action, "version": wanted})
    return report


def body_args(body: dict) -> dict:
    """A template file as keyword arguments of the client (``_meta`` → ``meta``)."""
    return {("meta" if k == "_meta" else k): v for k, v in body.items()}


async def ensure_alias(es: AsyncElasticsearch, alias: str) -> str:
    """Create ``<alias>-000001`` as the alias's write index unless the alias exists."""
    if await es.indices.exists_alias(name=alias):
        return "exists"
    index = f"{alias}-000001"
    if await es.indices.exists(index=index):
        await es.indices.put_alias(index=index, name=alias, is_write_index=True)
        return "attached"
    await es.indices.create(index=index, aliases={alias: {"is_write_index": True}})
    return "created"


async def status(es: AsyncElasticsearch, config: ElasticConfig, root: Path = MAPPINGS_DIR) -> dict:
    """Cluster name, version and health; per family the template versions and live documents."""
    info = await es.info()
    health = await es.cluster.health()
    mappings = Mappings.load(config, root)
    out = {
        "cluster": info.get("cluster_name"),
        "distribution": info["version"].get("distribution", "elasticsearch"),
        "version": info["version"].get("number"),
        "health": health.get("status"),
        "lifecycle_api": await lifecycle_api(es, config),
        "families": {},
    }
    for name, body in mappings.templates.items():
        alias = body["_meta"]["alias"]
        row = {"alias": alias, "template_file": version_of(body),
               "template_cluster": await _template_version(es, name, component=False)}
        try:
            indices = await es.indices.get_alias(name=alias)
            row["indices"] = sorted(indices.body)
            row["documents"] = (await es.count(index=alias))["count"]
        except NotFoundError:
            row["indices"], row["documents"] = [], None
        out["families"][alias.removeprefix(config.index_prefix + "-")] = row
    return out
