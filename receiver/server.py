"""The HTTP server's own limits: what a client may hold before it has proved anything.

uvicorn reads a request's headers and body for as long as the client cares to send them, and
accepts as many connections as the kernel hands it. A client that declares a body and never
finishes it, or dribbles its headers a byte at a time, holds a connection (and its buffers) for
ever; a thousand of them hold the process. :class:`BoundedProtocol` adds what uvicorn lacks,
as Go's ``ReadHeaderTimeout``/``ReadTimeout`` and nginx's ``client_header_timeout``/
``client_body_timeout`` do:

- the headers of a request must arrive within ``header_seconds`` of the connection (or of the
  request's first byte, on a kept-alive connection), and its body within ``body_seconds`` of
  its headers; past either, the client gets ``408`` and the connection is closed;
- past ``max_connections`` open connections, every request on a new connection is answered
  ``503`` with ``Retry-After`` (its body unread) and the connection closed.

The webhook endpoint bounds the rest: the body size, and the bytes of unverified bodies held at
once (:mod:`receiver.intake.webhook`).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BoundedProtocol", "bounded_protocol"]

_TIMEOUT_BODY = orjson.dumps(
    {"ok": False, "reason": "request_timeout", "detail": "the request did not arrive in time"}
)
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode("ascii") + b"\r\n"
    b"connection: close\r\n\r\n" + _TIMEOUT_BODY
)
_BUSY_BODY = orjson.dumps(
    {"ok": False, "reason": "too_many_connections", "detail": "too many open connections"}
)


async def _too_many_connections(scope: Any, receive: Any, send: Any) -> None:
    # The same JSON shape as every other rejection; the body is never read.
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_BUSY_BODY)).encode("ascii")),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BUSY_BODY})


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines and a connection cap.

    Use :func:`bounded_protocol` to make one with the limits set; uvicorn builds an instance per
    connection.
    """

    header_seconds: ClassVar[float] = 10.0
    body_seconds: ClassVar[float] = 30.0
    max_connections: ClassVar[int] = 1000

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Answer this connection's requests from here, so it holds nothing for long.
            self.app = _too_many_connections
        self._arm(self.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A kept-alive connection's next request: its headers are on the clock from their
        # first byte (the keep-alive timeout covered the wait before it).
        if self._deadline is None:
            self._arm(self.header_seconds)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_seconds)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(_TIMEOUT_RESPONSE)
        if cycle is not None and not cycle.response_complete:
            # What connection_lost would do, now: the app's receive() sees a disconnect and its
            # send() writes nothing more on a connection already answered.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def bounded_protocol(
    header_seconds: float, body_seconds: float, max_connections: int
) -> type[BoundedProtocol]:
    """A :class:`BoundedProtocol` class with these limits, for ``uvicorn.run(http=...)``."""
    return type(
        "BoundedProtocol",
        (BoundedProtocol,),
        {
            "header_seconds": header_seconds,
            "body_seconds": body_seconds,
            "max_connections": max_connections,
        },
    )
