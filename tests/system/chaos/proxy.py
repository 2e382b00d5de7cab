"""A round-robin TCP proxy on loopback, in a thread of its own.

Each client connection goes to the next upstream in turn and stays there (HTTP keep-alive
sticks to one receiver, as behind a real L4 balancer). An upstream that refuses the connection
(killed, or restarting) is skipped for the next one; if every upstream refuses, the client's
connection is closed and the sender retries. An upstream that dies mid-request closes its side,
and the proxy closes the client's: the request got no answer, exactly what Apiframe would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Sequence

__all__ = ["RoundRobinProxy"]

_CONNECT_TIMEOUT = 1.0
_CHUNK = 65536


class RoundRobinProxy:
    """``with RoundRobinProxy([port, ...]) as proxy:`` listens on ``proxy.url`` until the block
    ends.

    Args:
        upstreams: the loopback ports to balance over.
        port: the port to listen on; 0 (the default) takes a free one. A proxy stopped and
            started again on the same port is a backend that went away and came back.

    Attributes:
        connections: accepted upstream connections, per upstream port.
        skipped: connection attempts an upstream refused (or timed out), per port.
        dropped: client connections closed because no upstream answered.
    """

    def __init__(self, upstreams: Sequence[int], port: int = 0) -> None:
        self.upstreams = list(upstreams)
        self.connections: Counter[int] = Counter()
        self.skipped: Counter[int] = Counter()
        self.dropped = 0
        self.port = port
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        # Every open socket's writer, client side and upstream side, to close on stop.
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._serve, name="chaos-proxy", daemon=True)
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RoundRobinProxy:
        self._thread.start()
        self._ready.wait(10)
        if self._failure is not None:
            raise RuntimeError("the proxy did not start") from self._failure
        return self

    def __exit__(self, *_: object) -> None:
        # Idempotent: a test that stopped the proxy to cut a backend off may exit it again.
        if not self._thread.is_alive():
            return
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            raise
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        # Not ``async with server``: its wait_closed may wait for every client to hang up.
        server.close()
        # Connections still open (a client that kept its keep-alive, a frozen upstream, or
        # traffic in full flow when a test stops the proxy to cut a backend off): close every
        # socket first, so each relay ends on its own, then cancel what is left. Closing them
        # here, not only in the relays' ``finally``, matters: a relay task cancelled before its
        # first step never runs its ``finally``, and its socket would leak.
        for writer in list(self._writers):
            writer.close()
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # Again: a connection accepted in the same loop turn as server.close(), or an upstream
        # connected as its relay was cancelled, was not in the first sweep.
        for writer in list(self._writers):
            writer.close()
        # Transports finish closing in callbacks: let them run before the loop closes.
        await asyncio.sleep(0.05)

    def _order(self) -> list[int]:
        # Round robin: each new connection starts one further along (the loop's thread is the
        # only one touching _next, so no lock).
        start = self._next % len(self.upstreams)
        self._next += 1
        return self.upstreams[start:] + self.upstreams[:start]

    def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        # A plain callback, not a coroutine: asyncio calls it as the connection is made, so
        # the socket is tracked before any task exists (see _main's shutdown).
        self._writers.add(client_w)
        # Held until done: the loop keeps only a weak reference to a task.
        task = self._loop.create_task(self._client(client_r, client_w))
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)

    async def _client(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            if self._stop.is_set():
                return  # stopping: no new upstream connection to leak
            upstream = await self._connect()
            if upstream is None:
                self.dropped += 1
                return
            self._writers.add(upstream[1])
            try:
                await _relay(client_r, client_w, *upstream)
            finally:
                # close() is synchronous: it runs even when the task is being cancelled.
                upstream[1].close()
                self._writers.discard(upstream[1])
        finally:
            self._writers.discard(client_w)
            client_w.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for port in self._order():
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 a wait_for cancelled just as
                # the connection is made loses it, and its socket leaks (a ResourceWarning).
                async with asyncio.timeout(_CONNECT_TIMEOUT):
                    upstream = await asyncio.open_connection("127.0.0.1", port)
            except (OSError, TimeoutError):
                self.skipped[port] += 1
                continue
            self.connections[port] += 1
            # Tracked at once: a cancellation after this line still finds it in the sweep.
            self._writers.add(upstream[1])
            return upstream
        return None


async def _relay(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    up_r: asyncio.StreamReader,
    up_w: asyncio.StreamWriter,
) -> None:
    pumps = [
        asyncio.create_task(_pump(client_r, up_w)),
        asyncio.create_task(_pump(up_r, client_w)),
    ]
    try:
        # Either side ending ends the connection: HTTP clients never half-close mid-request,
        # and a receiver that died must look dead to the client at once.
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in pumps:
            task.cancel()
        # Before the await: a relay cancelled while it waits for its pumps still closes it.
        up_w.close()
        await asyncio.gather(*pumps, return_exceptions=True)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
