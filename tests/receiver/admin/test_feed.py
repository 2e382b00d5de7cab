"""The live feed: ``Feed.poll`` on SQLite and PostgreSQL, and ``/api/events`` read over a real
loopback connection while webhooks arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from receiver.admin.feed import JOB_BATCH, OVERLAP, Feed
from receiver.db.engine import writing
from tests.receiver.admin.scenario import AUTH, TOKEN, post, progress
from tests.receiver.admin.streams import events, served
from tests.support.webhooks import signed_headers


def poll(engine: Engine, feed: Feed) -> list[tuple[str, dict[str, Any]]]:
    with engine.connect() as connection, connection.begin():
        return feed.poll(connection)


def jobs_in(changes: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, int]]:
    return [(data["id"], data["progress"]) for name, data in changes if name == "job"]


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(admin_token=TOKEN)


def test_a_poll_sends_each_change_once_oldest_first(api: TestClient) -> None:
    """Jobs changed since the stream opened come once each, in the order they changed; a job
    that changes again comes again with its new state."""
    engine: Engine = api.app.state.engine  # type: ignore[attr-defined]
    post(api, progress("job-old", 10))
    feed = Feed(since=datetime.now(UTC))
    # Within the look-back window, a change from just before the stream opened still comes.
    assert jobs_in(poll(engine, feed)) == [("job-old", 10)]
    post(api, progress("job-a", 20))
    post(api, progress("job-b", 30))
    assert jobs_in(poll(engine, feed)) == [("job-a", 20), ("job-b", 30)]
    assert jobs_in(poll(engine, feed)) == []
    post(api, progress("job-a", 60))
    assert jobs_in(poll(engine, feed)) == [("job-a", 60)]


def test_changes_older_than_the_window_are_not_resent(api: TestClient, db: Engine) -> None:
    """A stream opened now does not replay history beyond its look-back window."""
    post(api, progress("job-history", 10))
    with writing(db) as connection:
        old = datetime.now(UTC) - OVERLAP * 3
        connection.execute(text("UPDATE jobs SET updated_at = :old"), {"old": old})
    assert jobs_in(poll(db, Feed())) == []


def test_more_changes_than_a_batch_say_overflow(api: TestClient, db: Engine) -> None:
    """Past JOB_BATCH changes in one poll the client is told to reload, and gets the newest."""
    now = datetime.now(UTC)
    with writing(db) as connection:
        connection.execute(
            text(
                "INSERT INTO jobs (id, status, progress, created_at, updated_at) "
                "VALUES (:id, 'PROCESSING', 5, :at, :at)"
            ),
            [
                {"id": f"bulk-{n:03}", "at": now + timedelta(milliseconds=n)}
                for n in range(JOB_BATCH + 5)
            ],
        )
    changes = poll(db, Feed(since=now))
    assert changes[0] == ("overflow", {"jobs": JOB_BATCH})
    ids = [data["id"] for name, data in changes if name == "job"]
    assert ids == [f"bulk-{n:03}" for n in range(5, JOB_BATCH + 5)]


def test_dead_tasks_are_sent_whole_when_they_change(api: TestClient, db: Engine) -> None:
    """The dead list comes at the first poll and again only when a task dies or leaves it."""
    for n in (1, 2):
        post(api, {**progress(f"job-d{n}", 100), "event": "completed", "status": "COMPLETED"})
    feed = Feed()
    first = [data for name, data in poll(db, feed) if name == "dead"]
    assert first == [{"items": []}]
    with writing(db) as connection:
        connection.execute(
            text("UPDATE tasks SET status = 'dead', last_error = 'gone', updated_at = :now"),
            {"now": datetime.now(UTC)},
        )
    dead = [data for name, data in poll(db, feed) if name == "dead"]
    assert [(t["jobId"], t["lastError"]) for t in dead[0]["items"]] == [
        ("job-d2", "gone"),
        ("job-d1", "gone"),
    ]
    assert [name for name, _ in poll(db, feed) if name == "dead"] == []
    with writing(db) as connection:
        connection.execute(text("UPDATE tasks SET status = 'queued' WHERE job_id = 'job-d1'"))
    (after,) = [data for name, data in poll(db, feed) if name == "dead"]
    assert [t["jobId"] for t in after["items"]] == ["job-d2"]


def test_a_watched_job_reports_task_and_asset_changes(api: TestClient, db: Engine) -> None:
    """``timeline`` comes at the first poll and whenever the job's tasks or assets change,
    never for another job's."""
    post(api, {**progress("job-w", 100), "event": "completed", "status": "COMPLETED"})
    post(api, {**progress("job-other", 100), "event": "completed", "status": "COMPLETED"})
    feed = Feed(watch="job-w")
    assert ("timeline", {"jobId": "job-w"}) in poll(db, feed)
    assert [n for n, _ in poll(db, feed) if n == "timeline"] == []
    with writing(db) as connection:
        connection.execute(
            text("UPDATE tasks SET attempts = 1, updated_at = :now WHERE job_id = 'job-other'"),
            {"now": datetime.now(UTC) + timedelta(seconds=1)},
        )
    assert [n for n, _ in poll(db, feed) if n == "timeline"] == []
    with writing(db) as connection:
        connection.execute(
            text("UPDATE tasks SET attempts = 1, updated_at = :now WHERE job_id = 'job-w'"),
            {"now": datetime.now(UTC) + timedelta(seconds=1)},
        )
    assert [n for n, _ in poll(db, feed) if n == "timeline"] == ["timeline"]


# ---- /api/events over a real connection ---------------------------------------------------


def test_the_stream_carries_progress_as_webhooks_arrive(tmp_path: Path, database_url: str) -> None:
    """Open /api/events, post progress webhooks: each arrives on the stream as a ``job``
    event, in order, while the connection stays open; and the server still stops promptly."""
    asyncio.run(follow_progress(tmp_path, database_url))


async def follow_progress(tmp_path: Path, database_url: str) -> None:
    async with (
        served(tmp_path, database_url) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        assert (await client.get("/api/events")).status_code == 401
        async with client.stream("GET", "/api/events", headers=AUTH) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            assert (await anext(stream))[0] == "ready"
            seen: list[int] = []
            for value in (10, 55, 90):
                body = orjson.dumps(progress("job-live", value))
                answer = await client.post(
                    "/webhooks/apiframe", content=body, headers=signed_headers(body)
                )
                assert answer.status_code == 202
                async with asyncio.timeout(5):
                    async for name, data in stream:
                        if name == "job" and data["id"] == "job-live":
                            seen.append(data["progress"])
                            break
            assert seen == [10, 55, 90]
