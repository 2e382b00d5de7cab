"""Serving apps on loopback inside one event loop: the demo's and the simulator's servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

__all__ = ["LoopbackServer", "serve_loopback"]


class LoopbackServer(uvicorn.Server):
    """A uvicorn server that leaves signals alone: several share one loop, the caller's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_loopback(app: Any) -> tuple[LoopbackServer, asyncio.Task[None], str]:
    """Serve ``app`` on a free loopback port; return the server, its task and its URL.

    Raises:
        SystemExit: the app's start-up failed (uvicorn logged why).
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, server_header=False, timeout_graceful_shutdown=5
    )
    server = LoopbackServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has only a flag
        await asyncio.sleep(0.02)
    if not server.started:
        sock.close()
        raise SystemExit(1)
    return server, task, f"http://127.0.0.1:{port}"
