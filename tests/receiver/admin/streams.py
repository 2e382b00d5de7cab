"""A receiver on loopback in the test's own event loop, and ``/api/events`` read as events:
for the tests that need real connections (a stream held open, a client that goes away)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from receiver.app import create_app
from receiver.dev.loopback import serve_loopback
from receiver.settings import Settings
from tests.receiver.admin.scenario import TOKEN
from tests.support.webhooks import API_KEY


@contextlib.asynccontextmanager
async def served(tmp_path: Path, database_url: str, **overrides: Any) -> AsyncIterator[str]:
    """The receiver (no worker, the admin token :data:`TOKEN`, a quick feed) served on a free
    loopback port until the block ends; yields its URL."""
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "database_url": database_url,
        "storage_url": str(tmp_path / "assets"),
        "handlers": [],
        "admin_token": TOKEN,
        "auto_migrate": True,
        "run_worker": False,
        "reconcile": False,
        "events_poll_seconds": 0.1,
        "log_level": "warning",
    }
    server, task, url = await serve_loopback(create_app(Settings(**{**values, **overrides})))
    try:
        yield url
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """Parse a text/event-stream into (event, data) pairs."""
    name, data = "message", list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield name, orjson.loads("\n".join(data))
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
