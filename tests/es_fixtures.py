"""Search-server fixtures for the Elasticsearch tests (import them in the test module).

By default a real HTTP search server runs here: ``osmem-server``, an in-memory
OpenSearch-compatible server (static binary, started once per session); every
test gets a fresh clone of it on its own port. With ``FINPATROL_TEST_ES_URL``
set, the tests use that external cluster instead, each with its own index prefix,
deleted afterwards (``FINPATROL_TEST_ES_FLAVOR`` says elasticsearch or opensearch).

``TcpGate`` is a TCP forwarder in front of the server that can be closed and
reopened on the same port: the cluster "goes down" for the client exactly as a
dead node does (connection refused), while the in-memory server keeps what it
had acknowledged, as a real cluster keeps its data across an outage.
``AuthRejecting`` is an HTTP server answering every request like a secured
cluster given a wrong key.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crawler.store.elastic_config import ElasticConfig

EXTERNAL = os.environ.get("FINPATROL_TEST_ES_URL")


@dataclass
class Cluster:
    url: str
    prefix: str
    flavor: str

    def config(self, url: str | None = None, **overrides) -> ElasticConfig:
        values = {"hosts": [url or self.url], "flavor": self.flavor, "index_prefix": self.prefix,
                  "origin": "test", "batch_size": 50, "request_timeout": 5, "max_retries": 0} | overrides
        return ElasticConfig(**values)

    def yaml_block(self, url: str | None = None, **overrides) -> dict:
        return {"hosts": [url or self.url], "flavor": self.flavor, "index_prefix": self.prefix,
                "origin": "test", "request_timeout": 5, "max_retries": 0} | overrides


@pytest.fixture(scope="session")
def osmem_base():
    if EXTERNAL:
        yield None
        return
    from osmem_server import OsmemServer

    server = OsmemServer.start(freeze=False)
    yield server
    server.close()


@pytest.fixture
def cluster(osmem_base):
    """A fresh, empty cluster (or a fresh prefix on the external one)."""
    if EXTERNAL:
        flavor = os.environ.get("FINPATROL_TEST_ES_FLAVOR", "elasticsearch")
        found = Cluster(EXTERNAL.rstrip("/"), f"fpt{uuid.uuid4().hex[:8]}", flavor)
        yield found
        _cleanup_external(found)
        return
    clone = osmem_base.clone()
    yield Cluster(clone.url, "finpatrol", "opensearch")
    clone.close()


def _cleanup_external(found: Cluster) -> None:
    from crawler.store.elastic_client import make_sync_client

    es = make_sync_client(found.config())
    try:
        es.indices.delete(index=f"{found.prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        for family in ("pages", "hits", "targets", "alerts"):
            es.options(ignore_status=404).indices.delete_index_template(name=f"{found.prefix}-{family}")
        es.options(ignore_status=404).cluster.delete_component_template(name=f"{found.prefix}-analysis")
    finally:
        es.close()


class TcpGate:
    """127.0.0.1:port → upstream; ``close()`` drops every connection and refuses new ones."""

    def __init__(self, upstream_url: str):
        host_port = upstream_url.split("://", 1)[1].rstrip("/")
        host, port = host_port.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.open()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def gate(cluster):
    g = TcpGate(cluster.url)
    yield g
    g.close()


class _Reject(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({
            "error": {"type": "security_exception",
                      "reason": "unable to authenticate with provided credentials and anonymous access is not allowed for this request",
                      "header": {"WWW-Authenticate": ["Basic realm=\"security\"", "ApiKey"]}},
            "status": 401}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("WWW-Authenticate", "ApiKey")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def auth_rejecting():
    """URL of an HTTP server that answers 401 security_exception to everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Reject)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def mappings_copy(tmp_path: Path) -> Path:
    """A writable copy of es_mappings/ for upgrade tests."""
    import shutil

    from crawler.store.elastic_setup import MAPPINGS_DIR

    target = tmp_path / "es_mappings"
    shutil.copytree(MAPPINGS_DIR, target)
    return target
