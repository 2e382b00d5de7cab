"""Serving apps on loopback inside one event loop: the demo's and the simulator's servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import uvicorn
from sqlalchemy import Engine

from receiver.settings import Settings

__all__ = ["Loopback", "LoopbackServer", "loopback_settings", "serve_loopback"]


class _Closable(Protocol):
    async def aclose(self) -> None: ...


_C = TypeVar("_C", bound=_Closable)


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


class Loopback:
    """One loopback run's servers, clients and engines, released together on exit.

    On the way out, clients close first (nothing new is sent), then every server is told to
    stop at once and awaited together (one graceful shutdown's wait, not one per server), and
    the engines go last, once nothing can write through them::

        async with Loopback() as run:
            api_url = await run.serve(create_fake_apiframe(key))
            client = run.close_later(ApiframeClient(key, api_url))
    """

    def __init__(self) -> None:
        self._servers: list[tuple[LoopbackServer, asyncio.Task[None]]] = []
        self._clients: list[_Closable] = []
        self._engines: list[Engine] = []

    async def serve(self, app: Any) -> str:
        """Serve ``app`` on a free loopback port until the run ends; return its URL.

        Raises:
            SystemExit: the app's start-up failed (uvicorn logged why).
        """
        server, task, url = await serve_loopback(app)
        self._servers.append((server, task))
        return url

    def close_later(self, client: _C) -> _C:
        """``client``, closed (``aclose``) when the run ends."""
        self._clients.append(client)
        return client

    def dispose_later(self, engine: Engine) -> Engine:
        """``engine``, disposed when the run ends."""
        self._engines.append(engine)
        return engine

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for client in reversed(self._clients):
            await client.aclose()
        for server, _task in reversed(self._servers):
            server.should_exit = True
        await asyncio.gather(*(task for _server, task in self._servers), return_exceptions=True)
        for engine in self._engines:
            engine.dispose()


def loopback_settings(directory: Path, api_key: str, api_url: str, **overrides: Any) -> Settings:
    """A receiver beside a fake Apiframe on loopback: SQLite and files under ``directory``,
    the embedded worker, downloads allowed from loopback; ``overrides`` on top."""
    values: dict[str, Any] = {
        "api_key": api_key,
        "database_url": f"sqlite:///{directory / 'framehook.db'}",
        "storage_url": str(directory / "assets"),
        "handlers": ["download"],
        "asset_hosts": ["127.0.0.1", "localhost"],
        "asset_allow_http": True,
        "asset_allow_networks": ["127.0.0.0/8", "::1/128"],
        "apiframe_url": api_url,
        "auto_migrate": True,
        "run_worker": True,
        "poll_seconds": 0.5,
        "log_format": "console",
        "log_level": "warning",
    }
    values.update(overrides)
    return Settings(**values)
