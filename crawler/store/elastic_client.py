"""Clients for the configured cluster, and errors phrased for the operator.

``make_async_client`` is what indexing, ``es`` commands and search use (the
async client never blocks Scrapy's reactor); ``make_sync_client`` exists for
benchmarks. With ``flavor: opensearch`` the node classes below rewrite the
client's ``application/vnd.elasticsearch+json; compatible-with=N`` headers to
plain ``application/json`` (OpenSearch answers 406 to the former) and vouch for
the product header that the official client checks on every response.
Settings: the ``elasticsearch:`` block (``ElasticConfig``) and the credential
environment variables of ``crawler.store.elastic_config``.
"""

from __future__ import annotations

import logging
import re

from elastic_transport import AiohttpHttpNode, HttpHeaders, Urllib3HttpNode
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
)

from crawler.store.elastic_config import API_KEY_ENV, PASSWORD_ENV, USERNAME_ENV, ElasticConfig, credentials

logger = logging.getLogger(__name__)

_COMPAT = re.compile(r"application/vnd\.elasticsearch\+([a-z-]+)\s*;\s*compatible-with=\d+")


def plain_headers(headers: HttpHeaders | None) -> HttpHeaders | None:
    """Compatibility mimetypes → plain ones (``application/json``, ``application/x-ndjson``)."""
    if not headers:
        return headers
    fixed = HttpHeaders(headers)
    for name in ("accept", "content-type"):
        value = fixed.get(name)
        if value:
            fixed[name] = _COMPAT.sub(r"application/\1", value)
    return fixed


def _vouch(response):
    """OpenSearch does not send ``X-Elastic-Product``; the client refuses 2xx answers without it."""
    headers = response.meta.headers
    if "x-elastic-product" not in headers:
        headers = HttpHeaders(headers)
        headers["x-elastic-product"] = "Elasticsearch"
        response.meta.headers = headers
    return response


class OpenSearchAsyncNode(AiohttpHttpNode):
    """aiohttp node that speaks plain JSON to OpenSearch-compatible servers."""

    async def perform_request(self, method, target, body=None, headers=None, **kwargs):
        return _vouch(await super().perform_request(method, target, body, plain_headers(headers), **kwargs))


class OpenSearchSyncNode(Urllib3HttpNode):
    """urllib3 node that speaks plain JSON to OpenSearch-compatible servers."""

    def perform_request(self, method, target, body=None, headers=None, **kwargs):
        return _vouch(super().perform_request(method, target, body, plain_headers(headers), **kwargs))


def _client_kwargs(config: ElasticConfig) -> dict:
    kwargs = {
        "hosts": list(config.hosts),
        "request_timeout": config.request_timeout,
        "max_retries": config.max_retries,
        "retry_on_timeout": True,
        "verify_certs": config.verify_certs,
    }
    if config.ca_certs:
        kwargs["ca_certs"] = str(config.ca_certs)
    kwargs.update(credentials())
    return kwargs


def make_async_client(config: ElasticConfig) -> AsyncElasticsearch:
    node_class = OpenSearchAsyncNode if config.flavor == "opensearch" else "aiohttp"
    return AsyncElasticsearch(node_class=node_class, **_client_kwargs(config))


def make_sync_client(config: ElasticConfig) -> Elasticsearch:
    node_class = OpenSearchSyncNode if config.flavor == "opensearch" else "urllib3"
    return Elasticsearch(node_class=node_class, **_client_kwargs(config))


class ClusterUnavailable(Exception):
    """The cluster could not be reached or refused us; already phrased for the operator."""


def describe(error: Exception, config: ElasticConfig) -> str:
    """One line an operator can act on, for any client error."""
    hosts = ", ".join(config.hosts)
    if isinstance(error, AuthenticationException):
        return (
            f"authentication failed at {hosts} (HTTP 401): check {API_KEY_ENV}, or "
            f"{USERNAME_ENV} and {PASSWORD_ENV}, in the environment ({_reason(error)})"
        )
    if isinstance(error, AuthorizationException):
        return f"not allowed at {hosts} (HTTP 403): the key's role lacks a privilege ({_reason(error)})"
    if isinstance(error, ConnectionTimeout):
        return f"cluster at {hosts} did not answer within {config.request_timeout:g} s"
    if isinstance(error, TransportConnectionError):
        return f"cannot connect to {hosts}: {error.message}"
    if isinstance(error, ApiError):
        return f"cluster at {hosts} answered HTTP {error.status_code}: {_reason(error)}"
    return f"{type(error).__name__}: {error}"


def _reason(error: ApiError) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    err = body.get("error")
    if isinstance(err, dict):
        return f"{err.get('type')}: {err.get('reason')}"
    return str(err or error.message)
