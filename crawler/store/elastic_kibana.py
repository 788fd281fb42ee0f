"""Kibana saved objects: import them, and list the fields they reference.

``import_saved_objects`` posts ``es_mappings/kibana/finpatrol.ndjson`` to
Kibana's ``/api/saved_objects/_import?overwrite=true`` (multipart, with the
``kbn-xsrf`` header), using the same credentials and CA as the cluster.
``referenced_fields`` is what the test checks against the strict mappings.
Settings: ``ElasticConfig`` (ca_certs, verify_certs) and the credential variables.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import ssl
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from crawler.store.elastic_config import ElasticConfig, credentials

logger = logging.getLogger(__name__)

FIELD_IN_KQL = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*:")


class KibanaError(Exception):
    """Kibana refused or could not be reached; phrased for the operator."""


def _auth_header() -> dict:
    creds = credentials()
    if "api_key" in creds:
        return {"Authorization": f"ApiKey {creds['api_key']}"}
    if "basic_auth" in creds:
        token = base64.b64encode(":".join(creds["basic_auth"]).encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def _ssl_context(config: ElasticConfig | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(config.ca_certs) if config and config.ca_certs else None)
    if config is not None and not config.verify_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def import_saved_objects(url: str, ndjson: Path, config: ElasticConfig | None, space: str | None = None,
                         timeout: float = 60.0) -> dict:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{ndjson.name}\"\r\n"
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode() + ndjson.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    base = url.rstrip("/") + (f"/s/{space}" if space else "")
    request = urllib.request.Request(
        f"{base}/api/saved_objects/_import?overwrite=true", data=body, method="POST",
        headers={"kbn-xsrf": "true", "Content-Type": f"multipart/form-data; boundary={boundary}", **_auth_header()},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_ssl_context(config)) as response:
            answer = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:500]
        if e.code == 401:
            raise KibanaError(f"Kibana at {url}: authentication failed (HTTP 401): {detail}") from None
        raise KibanaError(f"Kibana at {url} answered HTTP {e.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        raise KibanaError(f"cannot reach Kibana at {url}: {getattr(e, 'reason', e)}") from None
    if not answer.get("success", False) and answer.get("errors"):
        logger.warning("Kibana reported %d import errors", len(answer["errors"]))
    return answer


def load_objects(ndjson: Path) -> list[dict]:
    return [json.loads(line) for line in ndjson.read_text(encoding="utf-8").splitlines() if line.strip()]


def referenced_fields(obj: dict) -> set[str]:
    """Field names a saved object uses: columns, sort, query, filters, visualization params."""
    attrs = obj.get("attributes", {})
    fields: set[str] = set(attrs.get("columns", ()))
    for entry in attrs.get("sort", ()):
        if isinstance(entry, (list, tuple)) and entry:
            fields.add(entry[0])
    blobs = []
    search_source = attrs.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
    if search_source:
        blobs.append(json.loads(search_source))
    if attrs.get("visState"):
        blobs.append(json.loads(attrs["visState"]))
    for blob in blobs:
        fields |= _fields_in(blob)
    if obj.get("type") == "index-pattern":
        fields |= set(json.loads(attrs.get("fieldFormatMap") or "{}"))
        if attrs.get("timeFieldName"):
            fields.add(attrs["timeFieldName"])
    return {f for f in fields if not f.startswith("_")}


def _fields_in(node) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "field" and isinstance(value, str):
                out.add(value)
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                out |= set(FIELD_IN_KQL.findall(value["query"]))
            elif key == "meta" and isinstance(value, dict) and isinstance(value.get("key"), str):
                out.add(value["key"])
            else:
                out |= _fields_in(value)
    elif isinstance(node, list):
        for item in node:
            out |= _fields_in(item)
    return out
