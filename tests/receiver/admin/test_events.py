"""``/api/events`` over real connections: at most FRAMEHOOK_EVENTS_MAX_STREAMS streams per
process, a slot given back when a client goes away, and polls that never take the threads or
connections the webhook and readiness need."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from sqlalchemy import create_engine, make_url, text

from receiver.admin.events import POLL_THREADS, STREAMS_RETRY_AFTER
from tests.receiver.admin.scenario import AUTH, progress
from tests.receiver.admin.streams import events, served
from tests.support.webhooks import signed_headers

Stream = tuple[httpx.Response, AsyncIterator[tuple[str, Any]]]


async def open_stream(stack: contextlib.AsyncExitStack, client: httpx.AsyncClient) -> Stream:
    """A stream held open until ``stack`` closes, once its ``ready`` event came, with its
    events still to read (dropping that reader would close the connection)."""
    response = await stack.enter_async_context(client.stream("GET", "/api/events", headers=AUTH))
    assert response.status_code == 200
    reader = events(response)
    async with asyncio.timeout(5):
        assert (await anext(reader))[0] == "ready"
    return response, reader


async def webhook(client: httpx.AsyncClient) -> int:
    body = orjson.dumps(progress(f"job-{uuid.uuid4().hex[:8]}", 20))
    answer = await client.post("/webhooks/apiframe", content=body, headers=signed_headers(body))
    return answer.status_code


@pytest.mark.anyio
async def test_streams_past_the_cap_are_refused_until_one_ends(
    tmp_path: Path, database_url: str
) -> None:
    """With three streams open (the cap), a fourth is a 503 with Retry-After and a reason,
    while webhooks, readiness and the rest of the API answer; when a client goes away its slot
    serves the next stream."""
    async with (
        served(tmp_path, database_url, events_max_streams=3) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        streams = [await open_stream(stack, client) for _ in range(3)]
        refused = await client.get("/api/events", headers=AUTH)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == str(STREAMS_RETRY_AFTER)
        assert refused.json()["reason"] == "too_many_streams"
        # A stream refused for its token takes no slot, and is told so (not "busy").
        assert (await client.get("/api/events")).status_code == 401

        assert await webhook(client) == 202
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/api/jobs", headers=AUTH)).status_code == 200

        await streams[0][0].aclose()  # a client goes away mid-stream
        async with asyncio.timeout(5):
            while True:
                again = await stack.enter_async_context(
                    client.stream("GET", "/api/events", headers=AUTH)
                )
                if again.status_code == 200:
                    break
                await asyncio.sleep(0.05)
        # It took the one slot freed: the cap holds again.
        assert (await client.get("/api/events", headers=AUTH)).status_code == 503


@pytest.mark.postgres
@pytest.mark.anyio
async def test_polls_stuck_in_the_database_leave_webhooks_and_readiness_alone(
    tmp_path: Path, postgres_database: str
) -> None:
    """Twelve streams whose polls wait on a locked table hold only the streams' own threads
    (and as many pooled connections): webhooks are still accepted and /readyz says ready."""
    url = make_url(postgres_database).set(drivername="postgresql+psycopg")
    locker = create_engine(url)
    try:
        async with (
            served(tmp_path, postgres_database, events_max_streams=12) as base,
            httpx.AsyncClient(base_url=base, timeout=10) as client,
            contextlib.AsyncExitStack() as stack,
        ):
            with locker.connect() as lock, locker.connect() as observer:
                # Every poll reads ``assets`` first; the intake and readiness never do.
                lock.execute(text("LOCK TABLE assets IN ACCESS EXCLUSIVE MODE"))
                streams = [await open_stream(stack, client) for _ in range(12)]

                def waiting() -> int:
                    query = "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    return int(observer.execute(text(query)).scalar_one())

                for _ in range(200):
                    if await anyio.to_thread.run_sync(waiting) >= POLL_THREADS:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # a moment for more polls to pile up, if they could
                assert await anyio.to_thread.run_sync(waiting) == POLL_THREADS
                ready = await client.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert await webhook(client) == 202
                lock.rollback()  # the polls go on, so the streams can end
                assert len(streams) == 12
    finally:
        locker.dispose()
