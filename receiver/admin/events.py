"""``GET /api/events``: the live feed (``receiver.admin.feed``) as server-sent events, with a
bounded number of streams open at once.

Each open stream polls the database every ``FRAMEHOOK_EVENTS_POLL_SECONDS``. Left unbounded,
600 streams once held the thread pool that the webhook and ``/readyz`` share, and readiness
answered 503. So a process keeps at most ``FRAMEHOOK_EVENTS_MAX_STREAMS`` streams open (the next
one is refused with a 503 and ``Retry-After``, before any database work), and their polls run
under a limiter of their own, :data:`POLL_THREADS` at a time, never on the shared pool's tokens.
Those threads are also all the connections the streams can take from the engine's pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from receiver.admin.auth import AdminToken
from receiver.admin.feed import Change, Feed
from receiver.admin.paging import parse_text
from receiver.errors import Unavailable
from receiver.responses import DATABASE_UNAVAILABLE

__all__ = ["POLL_THREADS", "STREAMS_RETRY_AFTER", "EventsEndpoint", "StreamSlots"]

POLL_THREADS = 2
"""Stream polls running at once. A poll is a few indexed reads (milliseconds), so two threads
keep up with a full house of streams, and take two connections at most from the pool that the
intake's writers and readiness need."""

STREAMS_RETRY_AFTER = 10
"""Seconds a refused client waits: a slot frees only when another stream ends (a closed tab),
and a refusal costs the server nothing but the answer."""

_DOWN = orjson.dumps({"reason": DATABASE_UNAVAILABLE}).decode()


@dataclass(slots=True)
class StreamSlots:
    """How many streams this process has open, out of ``limit``.

    Only the event loop's thread touches it (the endpoint and the stream run there), so a
    plain count is enough.
    """

    limit: int
    held: int = 0

    def take(self) -> None:
        """Hold one slot for a new stream.

        Raises:
            Unavailable: every slot is held (a 503 with ``Retry-After``).
        """
        if self.held >= self.limit:
            raise Unavailable(
                "too_many_streams",
                f"{self.limit} live streams are open on this server "
                "(FRAMEHOOK_EVENTS_MAX_STREAMS); try again later",
                retry_after=STREAMS_RETRY_AFTER,
            )
        self.held += 1

    def give_back(self) -> None:
        """Free the slot of a stream that ended."""
        self.held -= 1


class _SlotResponse(EventSourceResponse):
    """An event stream that gives its slot back when its answer ends, however it ends: the
    feed stopped, the client went away, the server is shutting down, or an error."""

    def __init__(
        self, slots: StreamSlots, content: AsyncIterator[ServerSentEvent], **kw: Any
    ) -> None:
        super().__init__(content, **kw)
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give_back()


@dataclass(slots=True)
class EventsEndpoint:
    """``GET /api/events[?job=ID]``, behind the admin token.

    Attributes:
        slots: the streams open in this process, out of ``FRAMEHOOK_EVENTS_MAX_STREAMS``.
        limiter: the threads the streams' polls run on (:data:`POLL_THREADS`).
    """

    token: AdminToken = field(repr=False)
    poll_seconds: float
    slots: StreamSlots
    limiter: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(POLL_THREADS)
    )

    async def handle(self, request: Request) -> Response:
        """Server-sent events of what changes (see ``receiver.admin.feed``).

        Raises:
            Unauthorized: no admin token.
            BadQuery: ``job`` is not usable text.
            Unavailable: this process has every stream it may hold open already.
        """
        self.token.require(request)
        feed = Feed(watch=parse_text(request.query_params.get("job"), "job"))
        engine: Engine = request.app.state.engine
        # X-Accel-Buffering: a reverse proxy (nginx) would otherwise hold events back.
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        response = _SlotResponse(self.slots, self._stream(engine, feed), ping=15, headers=headers)
        self.slots.take()
        return response

    async def _stream(self, engine: Engine, feed: Feed) -> AsyncIterator[ServerSentEvent]:
        def poll() -> list[Change]:
            with engine.connect() as connection, connection.begin():
                return feed.poll(connection)

        yield ServerSentEvent(data="{}", event="ready", retry=2000)
        down = False
        while True:
            try:
                changes = await anyio.to_thread.run_sync(poll, limiter=self.limiter)
            except OperationalError:
                # The answer has started, so no 503 now: the stream stays open, the client
                # shows "database unavailable", and the next poll that works carries on
                # where this one stopped.
                if not down:
                    yield ServerSentEvent(data=_DOWN, event="down")
                down = True
            else:
                if down:
                    yield ServerSentEvent(data="{}", event="ready")
                down = False
                for name, data in changes:
                    yield ServerSentEvent(data=orjson.dumps(data).decode(), event=name)
            await anyio.sleep(self.poll_seconds)
