"""A lean HTTP/1.1 server for the benchmarks: bodies from memory, ETags and 304, keep-alive.

Why not ``crawler.demo.server.SiteServer``: it answers through ``BaseHTTPRequestHandler``
with a thread per connection and hashes every body it sends, about 0.6 ms of CPU a
request here. The full patrol keeps both cores busy and the bare crawl one, so that CPU
was taken from the patrol's share only, while a real site costs the patrolling machine
nothing. This server answers every request from bytes prepared once, on one asyncio
loop in a thread. It knows GET and HEAD of static bodies, nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable

NOT_FOUND_HEAD = b"HTTP/1.1 404 Not Found\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n"


class LeanServer:
    """Serves ``body(path)`` (bytes, or None for 404) as text/html on 127.0.0.1.

    While ``validators()`` is true every 200 carries an ETag and a request whose
    If-None-Match names it gets 304 Not Modified, as from a static web server. Each 200
    body ends with ``tail()``, e.g. a comment that changes on every request, as the
    timestamp of a page built per request does; such a body has no ETag, since it is
    never the same twice.
    """

    def __init__(self, body: Callable[[str], bytes | None], validators: Callable[[], bool],
                 tail: Callable[[], bytes] = bytes):
        self.body, self.validators, self.tail = body, validators, tail
        self.replies: dict[str, tuple[bytes, bytes] | None] = {}  # path -> (etag, body)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_forever, name="LeanServer", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def __enter__(self) -> LeanServer:
        server = self.loop.run_until_complete(self.loop.create_server(lambda: _Connection(self), "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def answer(self, head: bytes) -> bytes:
        """The whole response to one request head (request line and headers)."""
        lines = head.split(b"\r\n")
        method, target = lines[0].split(b" ")[:2]
        reply = self._reply(target.decode("latin-1").split("?")[0])
        if reply is None:
            return NOT_FOUND_HEAD + (b"" if method == b"HEAD" else b"not found")
        etag, body = reply
        fields = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html; charset=utf-8\r\n"
        tail = self.tail()
        if self.validators() and not tail:
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"if-none-match" and etag in value:
                    return b"HTTP/1.1 304 Not Modified\r\nServer: nginx\r\nETag: " + etag + b"\r\n\r\n"
            fields += b"ETag: " + etag + b"\r\n"
        body += tail
        return fields + b"Content-Length: %d\r\n\r\n" % len(body) + (b"" if method == b"HEAD" else body)

    def _reply(self, path: str) -> tuple[bytes, bytes] | None:
        if path not in self.replies:
            body = self.body(path)
            self.replies[path] = None if body is None else (
                b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"', body)
        return self.replies[path]


class _Connection(asyncio.Protocol):
    def __init__(self, server: LeanServer):
        self.server, self.buffer, self.transport = server, b"", None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:  # GET and HEAD carry no body
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            self.transport.write(self.server.answer(head))
