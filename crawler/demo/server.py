"""One local HTTP server for the demo, the tests and the benchmarks.

Owns ``SiteServer`` (a threaded stdlib HTTP/1.1 server on 127.0.0.1 that answers
through a *resolver* function), the ``Reply`` a resolver returns (including the
hostile behaviours tests need: delay, hang, reset, chunked), two resolver
builders (``routes`` for hand-written replies, ``static_site`` for a directory of
files) and ``serve_demo_sites`` which serves every bundled demo institution in
``crawler/demo/sites/``. Standard library only; no settings.

A static site's ``_site.json`` may set::

    {"charset": "gbk",                  # charset of its text files (default utf-8)
     "send_charset_header": true,       # add "; charset=..." to text Content-Types
     "no_charset_header": ["/a.html"],  # paths served without it (meta tag decides)
     "headers": {"X-Powered-By": "..."},# extra headers on every reply
     "validators": false,               # no ETag / 304 (default: like nginx, ETag on every file)
     "redirects": {"/old": "/new"}}     # 301 redirects; keys with a query match first

In text files ``__SITE_<id>__`` placeholders are replaced from ``substitutions``
and ``__BASE_URL__`` by the serving server's own base URL. Dates relative to the
day of the request, in Beijing time (UTC+8, Asia/Shanghai), keep the demo's posts
recent however long ago the sites were written: ``__DAYS_AGO_<n>__`` becomes that
day's ``YYYY-MM-DD`` (so ``__DAYS_AGO_1__ 21:15`` and
``datetime="__DAYS_AGO_1__T21:15:00+08:00"`` are yesterday evening) and
``__RFC822_DAYS_AGO_<n>__`` its RFC 822 date for feeds (``Sat, 22 Oct 2016``, to go
before ``08:00:00 +0800``). Use days ago with times of day that have passed by any
hour the demo runs: ``__DAYS_AGO_0__ 09:00`` is in the future before nine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import posixpath
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

SITES_DIR = Path(__file__).parent / "sites"
TEXT_TYPES = ("text/", "application/xml", "application/javascript", "application/json",
              "image/svg+xml", "application/rss+xml", "application/atom+xml")
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991
DAYS_AGO = re.compile(rb"__(RFC822_)?DAYS_AGO_(\d{1,4})__")
NOT_FOUND_PAGE = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>404 Not Found</title>"
                  "</head><body><h1>404 Not Found</h1><p>页面不存在</p></body></html>").encode()


@dataclass(frozen=True)
class Reply:
    """What the server sends for one request."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0    # seconds before the headers (cut short when the server stops)
    hang: bool = False    # headers and half the body, then stall until the server stops
    reset: bool = False   # abort the connection (RST) without a response
    chunked: bool = False  # Transfer-Encoding: chunked instead of Content-Length


@dataclass(frozen=True)
class Request:
    """One request as a resolver sees it."""

    method: str
    path: str                 # as sent, with the query string
    headers: Mapping[str, str]  # case-insensitive (an email.message.Message)
    host: str                 # the Host header
    base_url: str             # the serving SiteServer's base URL
    body: bytes = b""


Resolver = Callable[[Request], "Reply | None"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version, sys_version = "nginx", ""  # "Server: nginx", like a small real site
    disable_nagle_algorithm = True
    timeout = 30  # idle keep-alive connections are dropped after this
    server: _HTTPServer

    def setup(self):
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self):
        self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def handle(self):
        try:
            super().handle()
        except OSError as e:  # client went away mid-response, or the server stopped
            logger.debug("%s: connection from %s ended: %r", self.server.site.name, self.client_address, e)

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        logger.debug("%s: " + format, self.server.site.name, *args)

    def _serve(self):
        site = self.server.site
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        site._record(self.path)
        request = Request(self.command, self.path, self.headers, self.headers.get("Host", ""), site.base_url, body)
        try:
            reply = site.resolver(request)
        except Exception:
            logger.exception("%s: resolver failed for %s", site.name, self.path)
            reply = Reply(500, {"Content-Type": "text/plain; charset=utf-8"}, b"resolver error")
        if reply is None:
            reply = Reply(404, {"Content-Type": "text/html; charset=utf-8"}, NOT_FOUND_PAGE)
        self._send(reply, site.stopping)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _serve

    def _send(self, reply: Reply, stopping: threading.Event):
        if reply.delay and stopping.wait(reply.delay):
            self.close_connection = True
            return
        if reply.reset:
            self._reset()
            return
        self.send_response(reply.status)
        names = {k.lower() for k in reply.headers}
        for name, value in reply.headers.items():
            self.send_header(name, value)
        no_body = self.command == "HEAD" or reply.status in (204, 304) or 100 <= reply.status < 200
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif "content-length" not in names and reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(reply.body)))
        if reply.hang:
            self.send_header("Connection", "close")
        self.end_headers()
        if no_body:
            return
        if reply.hang:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            stopping.wait()
            self.close_connection = True
        elif reply.chunked:
            step = max(1, len(reply.body) // 3)
            for i in range(0, len(reply.body), step):
                piece = reply.body[i:i + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(reply.body)

    def _reset(self):
        """Close with SO_LINGER 0, so the client gets a RST instead of a response."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile reference so close() really closes the fd
        self.connection.close()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, site: SiteServer, port: int):
        self.site = site
        self.connections: set[socket.socket] = set()
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request, client_address):
        logger.debug("%s: error serving %s", self.site.name, client_address, exc_info=True)


class SiteServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering through ``resolver``.

    ``port=0`` (the default, and what tests use) lets the OS pick a free port;
    a non-zero port is tried first and falls back to a free one when taken.
    """

    def __init__(self, resolver: Resolver, *, name: str = "site", port: int = 0):
        self.resolver = resolver
        self.name = name
        self.requests: list[str] = []
        self.stopping = threading.Event()
        self._preferred_port = port
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._port = 0  # the last port bound, still reported after stop()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError(f"{self.name}: server not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def _record(self, path: str):
        with self._lock:
            self.requests.append(path)

    def start(self) -> SiteServer:
        if self._httpd is not None:
            return self
        try:
            self._httpd = _HTTPServer(self, self._preferred_port)
        except OSError:
            if not self._preferred_port:
                raise
            logger.debug("%s: port %d taken, using a free one", self.name, self._preferred_port)
            self._httpd = _HTTPServer(self, 0)
        self._port = self._httpd.server_address[1]
        self.stopping.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"SiteServer-{self.name}", daemon=True)
        self._thread.start()
        logger.debug("%s: serving on %s", self.name, self.base_url)
        return self

    def stop(self):
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()  # wakes delayed and hanging replies
        httpd.shutdown()
        httpd.server_close()
        for conn in list(httpd.connections):  # wakes idle keep-alive readers
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def _as_reply(value: Reply | bytes | str) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, value.encode("utf-8"))
    return Reply(200, {"Content-Type": "text/html"}, bytes(value))


def routes(mapping: Mapping[str, Reply | bytes | str | Callable[[Request], Reply]]) -> Resolver:
    """Exact-path resolver: the path with its query is tried first, then without it.

    The mapping is read on every request, so a test can edit the site between patrols.
    """

    def resolve(request: Request) -> Reply | None:
        for key in (request.path, request.path.split("?", 1)[0]):
            if key in mapping:
                value = mapping[key]
                return value(request) if callable(value) else _as_reply(value)
        return None

    return resolve


def with_validators(request: Request, reply: Reply) -> Reply:
    """A 200 reply with an ETag over its body, or 304 Not Modified when the client has it.

    What a static web server does (nginx sends an ETag for every file), so patrols
    can re-validate pages instead of downloading them again.
    """
    if reply.status != 200 or request.method not in ("GET", "HEAD"):
        return reply
    etag = '"' + hashlib.sha256(reply.body).hexdigest()[:32] + '"'
    headers = {**reply.headers, "ETag": etag}
    asked = {tag.strip() for tag in (request.headers.get("If-None-Match") or "").split(",")}
    if etag in asked or "*" in asked:
        kept = {name: value for name, value in headers.items() if name.lower() != "content-length"}
        return Reply(304, kept)
    return replace(reply, headers=headers)


def _site_config(root: Path) -> dict:
    try:
        return json.loads((root / "_site.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _content_type(path: Path, config: dict, url_path: str) -> str:
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if ctype.startswith(TEXT_TYPES) and config.get("send_charset_header", True) \
            and url_path not in config.get("no_charset_header", ()):
        ctype += f"; charset={config.get('charset', 'utf-8')}"
    return ctype


def days_ago(n: int, today: date | None = None) -> date:
    """The day ``n`` days before ``today`` (default: today in Beijing, at call time)."""
    return (today or datetime.now(BEIJING).date()) - timedelta(days=n)


def rfc822_date(day: date) -> str:
    """``Sat, 22 Oct 2016``: the date part of an RFC 822 time (the email package's, English whatever the locale)."""
    return format_datetime(datetime.combine(day, time()))[:16]


def _substitute(data: bytes, substitutions: Mapping[str, str], charset: str) -> bytes:
    for key, value in substitutions.items():
        token = key.encode("ascii")
        if token in data:
            data = data.replace(token, value.encode(charset))
    if b"DAYS_AGO_" in data:
        today = datetime.now(BEIJING).date()  # once per file: one page, one today

        def date_for(match: re.Match) -> bytes:
            day = days_ago(int(match[2]), today)
            return (rfc822_date(day) if match[1] else day.isoformat()).encode(charset)

        data = DAYS_AGO.sub(date_for, data)
    return data


def static_site(root: Path, *, substitutions: Mapping[str, str] | None = None) -> Resolver:
    """Serve the files under ``root`` (read at request time, so edits show up).

    ``substitutions`` is kept by reference and read at request time, so a caller
    can fill it once all servers have their ports.
    """
    root = Path(root).resolve()
    subs = substitutions if substitutions is not None else {}

    def resolve(request: Request) -> Reply | None:
        config = _site_config(root)
        url_path = posixpath.normpath(unquote(urlsplit(request.path).path))
        url_path = url_path if url_path.startswith("/") else "/" + url_path
        extra = dict(config.get("headers", {}))
        redirects = config.get("redirects", {})
        for key in (request.path, url_path):
            if key in redirects:
                return Reply(301, {**extra, "Location": redirects[key], "Content-Length": "0"})
        try:
            target = (root / url_path.lstrip("/")).resolve()
        except (OSError, ValueError):  # e.g. an embedded NUL byte
            return None
        if not target.is_relative_to(root) or target.name.startswith("_"):
            return None
        if target.is_dir():
            if not request.path.split("?", 1)[0].endswith("/"):
                return Reply(301, {**extra, "Location": url_path + "/", "Content-Length": "0"})
            target, url_path = target / "index.html", url_path.rstrip("/") + "/index.html"
        if not target.is_file():
            return None
        ctype = _content_type(target, config, url_path)
        data = target.read_bytes()
        if ctype.startswith(TEXT_TYPES):
            charset = config.get("charset", "utf-8")
            data = _substitute(data, {**subs, "__BASE_URL__": request.base_url}, charset)
        reply = Reply(200, {**extra, "Content-Type": ctype}, data)
        return with_validators(request, reply) if config.get("validators", True) else reply

    return resolve


@contextmanager
def serve_demo_sites(ports: Mapping[str, int] | None = None,
                     sites_dir: Path = SITES_DIR) -> Iterator[dict[str, SiteServer]]:
    """Serve every directory of ``sites_dir`` (site id = directory name), all started.

    ``ports`` optionally asks for a port per site id (free ones are used when
    taken); ``__SITE_<id>__`` in any site's text files becomes that site's base URL.
    """
    ports = ports or {}
    substitutions: dict[str, str] = {}
    servers: dict[str, SiteServer] = {}
    try:
        for site_dir in sorted(p for p in Path(sites_dir).iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            server = SiteServer(static_site(site_dir, substitutions=substitutions),
                                name=site_dir.name, port=int(ports.get(site_dir.name, 0)))
            servers[site_dir.name] = server.start()
        substitutions.update({f"__SITE_{sid}__": s.base_url for sid, s in servers.items()})
        yield servers
    finally:
        for server in servers.values():
            server.stop()
