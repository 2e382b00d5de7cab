"""A real loopback CDN for download tests: serves files, and misbehaves on request.

Each path gets a ``Route``: the bytes, and how to serve them (a lying Content-Length, a
connection cut mid-body, a stall, failures before success, redirects, gzip). Every request is
counted per path, and every accepted connection overall, so tests can tell that a refused URL
never reached the server.
"""

from __future__ import annotations

import gzip
import http.server
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeCdn", "Route"]


@dataclass
class Route:
    """How one path answers.

    Attributes:
        body: the file.
        content_type: sent as Content-Type.
        status: the status once the failures are used up.
        fail_first: answer ``fail_status`` (with ``fail_headers``) this many times first.
        declared_length: Content-Length to claim instead of the true one (a lie).
        cut_after: send only this many body bytes, then close the connection.
        stall_after: send this many bytes, then stall for ``stall_seconds``.
        location: answer a redirect (``status`` 302 by default) to this URL.
        gzip: send the body gzip-compressed with Content-Encoding: gzip (whatever was asked).
        chunked: send with Transfer-Encoding: chunked (no Content-Length).
    """

    body: bytes = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    fail_first: int = 0
    fail_status: int = 503
    fail_headers: dict[str, str] = field(default_factory=dict)
    declared_length: int | None = None
    cut_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 0.0
    location: str | None = None
    gzip: bool = False
    chunked: bool = False


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        cdn = self.server.cdn
        path = self.path.split("?", 1)[0]
        with cdn.lock:
            cdn.hits[path] += 1
            cdn.requests.append((path, dict(self.headers.items())))
            hit = cdn.hits[path]
            route = cdn.routes.get(path)
            cdn.active += 1
            cdn.peak = max(cdn.peak, cdn.active)
        try:
            self._answer(path, hit, route)
        finally:
            with cdn.lock:
                cdn.active -= 1

    def _answer(self, path: str, hit: int, route: Route | None) -> None:
        if route is None:
            self._send(404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"})
            return
        if hit <= route.fail_first:
            self._send(route.fail_status, b"busy", route.fail_headers)
            return
        if route.location is not None:
            status = route.status if 300 <= route.status < 400 else 302
            self._send(status, b"", {"Location": route.location})
            return
        body = gzip.compress(route.body) if route.gzip else route.body
        headers = {"Content-Type": route.content_type}
        if route.gzip:
            headers["Content-Encoding"] = "gzip"
        if route.chunked:
            headers["Transfer-Encoding"] = "chunked"
        else:
            declared = route.declared_length
            headers["Content-Length"] = str(len(body) if declared is None else declared)
        self._start(route.status, headers)
        if route.chunked:
            for start in range(0, len(body), 65536):
                part = body[start : start + 65536]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if route.stall_after is not None:
            self.wfile.write(body[: route.stall_after])
            self.wfile.flush()
            time.sleep(route.stall_seconds)
            body = body[route.stall_after :]
        if route.cut_after is not None:
            body = body[: route.cut_after]
        self.wfile.write(body)
        if route.cut_after is not None or route.declared_length is not None:
            # What a real server does once its body ends early: the connection goes.
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self._start(status, {**headers, "Content-Length": str(len(body))})
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    cdn: FakeCdn

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self.cdn.lock:
            self.cdn.connections += 1
        if self.cdn.tls is not None:
            # The handshake happens on first read, in the request thread, not the accept loop.
            connection = self.cdn.tls.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address


class FakeCdn:
    """A threaded HTTP(S) server on 127.0.0.1; ``with FakeCdn() as cdn`` runs it.

    Args:
        tls: a server-side SSL context to serve https (a ``trustme`` certificate).
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        self.active = 0
        self.peak = 0
        """Most requests in progress at once."""
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.cdn = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def route(self, path: str, route: Route) -> str:
        """Serve ``route`` at ``path``; return the path."""
        self.routes[path] = route
        return path

    def __enter__(self) -> FakeCdn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serving(self) -> Iterator[FakeCdn]:
        """For fixtures: ``yield from cdn.serving()``."""
        with self:
            yield self
