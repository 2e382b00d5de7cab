"""/readyz: a commit that failed on a full database, and a starved default thread pool."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from sqlalchemy import Engine, event
from starlette.testclient import TestClient

from receiver import Settings, create_app
from tests.support.webhooks import API_KEY, signed_headers, webhook_body

URL = "/webhooks/apiframe"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The app on a SQLite database of the test's own."""
    settings = Settings(
        api_key=API_KEY,
        database_url=f"sqlite:///{tmp_path / 'fh.db'}",
        handlers=["download"],
        run_worker=False,
        storage_url="memory://",
        reconcile=False,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _post(client: TestClient, job: str) -> tuple[int, str | None]:
    # Padded past a page: storing it needs new pages, which a capped database cannot grow.
    body = orjson.dumps(webhook_body("progress", jobId=job, progress=5, padding="x" * 8000))
    answer = client.post(URL, content=body, headers=signed_headers(body))
    return answer.status_code, answer.json().get("reason")


def test_a_commit_failing_on_a_full_database_makes_readyz_503_until_one_succeeds(
    client: TestClient,
) -> None:
    """SQLite says "database or disk is full": the webhook gets 503 disk_full, /readyz 503
    commits_failing; room again: the next webhook is stored and /readyz says 200."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    pages = {"max": 1}  # PRAGMA max_page_count never goes below the database's size

    @event.listens_for(engine, "checkout")
    def cap(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages['max']}")

    engine.pool.dispose()  # the writer's next connection is a capped one
    assert _post(client, "full") == (503, "disk_full")
    unready = client.get("/readyz")
    assert (unready.status_code, unready.json()["reason"]) == (503, "commits_failing")
    assert "database or disk is full" in unready.json()["detail"]

    pages["max"] = 1_000_000
    assert _post(client, "full") == (202, None)
    assert client.get("/readyz").json() == {"ok": True}


def test_readyz_answers_while_the_default_thread_pool_is_taken(client: TestClient) -> None:
    """Every token of anyio's default thread limiter held by blocked threads (a flood of other
    thread-pool users): /readyz still answers 200, at once, on threads of its own."""
    portal = client.portal
    assert portal is not None
    release = threading.Event()
    # Whatever happens, the borrowed threads are let go (the test must not hang on them).
    safety = threading.Timer(30, release.set)
    safety.start()

    def limiter() -> anyio.CapacityLimiter:
        return anyio.to_thread.current_default_thread_limiter()

    total = int(portal.call(limiter).total_tokens)
    for _ in range(total):
        portal.start_task_soon(anyio.to_thread.run_sync, release.wait)
    try:
        while portal.call(limiter).borrowed_tokens < total:
            time.sleep(0.01)
        started = time.monotonic()
        answer = client.get("/readyz")
        took = time.monotonic() - started
    finally:
        release.set()
        safety.cancel()
    assert answer.json() == {"ok": True}
    assert took < 1.0
