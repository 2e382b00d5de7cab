"""What a poll finds, recorded as its webhook would be, on SQLite and PostgreSQL: a CANCELLED
job ends, a finished job's file count is set, odd values in the job resource are set aside."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from receiver.apiframe.client import ApiframeClient
from receiver.apiframe.events import parse_body
from receiver.db.engine import writing
from receiver.intake.recorder import Arrival, Recorder, Subscription
from receiver.reconcile.reconciler import Reconciler
from receiver.retry import RetryPolicy
from tests.support.database import rows
from tests.support.webhooks import API_KEY

JOB = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CDN = "https://cdn2.apiframe.ai"


def resource(**fields: Any) -> dict[str, Any]:
    """A job resource as ``GET /v2/jobs/:id`` answers, ``fields`` on top."""
    base = {
        "id": JOB,
        "status": "PROCESSING",
        "model": "veo-3.1",
        "progress": 10,
        "result": None,
        "error": None,
        "creditCost": None,
        "webhookStatus": "pending",
        "createdAt": "2026-11-22T00:00:00.000Z",
        "completedAt": None,
    }
    return base | fields


def deep(levels: int) -> bytes:
    return b"[" * levels + b'"https://cdn2.apiframe.ai/deep.png"' + b"]" * levels


def api(job: dict[str, Any], listed: bytes | None = None) -> ApiframeClient:
    """A client whose API knows one job, as ``job`` (its ``result`` given as JSON text when
    it is bytes), and lists ``listed`` (a JSON array's text) as its newest jobs."""
    result = job.get("result")
    resource = orjson.dumps({**job, "result": "@"}).replace(
        b'"@"', result if isinstance(result, bytes) else orjson.dumps(result)
    )

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/v2/jobs/{JOB}":
            return httpx.Response(200, content=resource)
        if request.url.path == "/v2/jobs" and listed is not None:
            page = b'{"jobs":' + listed + b',"nextCursor":null,"hasMore":false}'
            return httpx.Response(200, content=page)
        return httpx.Response(404, json={"error": "not found"})

    return ApiframeClient(
        API_KEY,
        "http://fake.test",
        policy=RetryPolicy(0.01, 0.05, 100),
        transport=httpx.MockTransport(answer),
    )


def running(db: Engine, recorder: Recorder) -> None:
    """The job, as a progress webhook left it: PROCESSING at 40 %."""
    body = orjson.dumps({"event": "progress", "jobId": JOB, "progress": 40})
    with writing(db) as connection:
        recorder.record(connection, Arrival(parse_body(body), body, datetime.now(UTC), "r"))


async def poll(db: Engine, job: dict[str, Any]) -> dict[str, int]:
    recorder = Recorder(db.dialect.name, [Subscription("download", frozenset({"completed"}))])
    running(db, recorder)
    client = api(job)
    try:
        report = await Reconciler(db, recorder, client).poll([JOB])
    finally:
        await client.aclose()
    return dict(report.outcomes)


@pytest.mark.anyio
async def test_a_poll_that_finds_the_job_cancelled_ends_it(db: Engine) -> None:
    """CANCELLED from the job API moves the job to CANCELLED, no credits, no files, no task,
    so it is not looked up again after every wait."""
    assert await poll(db, resource(status="CANCELLED", creditCost=3)) == {"updated": 1}
    (job,) = rows(db, "SELECT status, progress, credit_cost, files_expected FROM jobs")
    assert (job.status, job.progress, job.credit_cost, job.files_expected) == (
        "CANCELLED",
        100,
        None,
        0,
    )
    assert rows(db, "SELECT * FROM tasks") == []
    (polled,) = rows(db, "SELECT event, outcome FROM deliveries WHERE source = 'poll'")
    assert (polled.event, polled.outcome) == ("cancelled", "accepted")


@pytest.mark.anyio
async def test_a_poll_that_finds_the_job_completed_counts_its_files(db: Engine) -> None:
    """COMPLETED from the job API records how many files the result names."""
    result = {"videos": [f"{CDN}/1.mp4", f"{CDN}/2.mp4"]}
    found = resource(status="COMPLETED", progress=100, result=result, creditCost=40)
    assert await poll(db, found) == {"updated": 1}
    (job,) = rows(db, "SELECT status, credit_cost, files_expected FROM jobs")
    assert (job.status, job.credit_cost, job.files_expected) == ("COMPLETED", 40, 2)


@pytest.mark.anyio
async def test_odd_values_in_a_polled_job_are_set_aside_not_fatal(db: Engine) -> None:
    """A completedAt past 9999 in UTC and a cost of 1e308 from the job API: the job still
    completes, both null, the poll delivery flagged."""
    found = resource(
        status="COMPLETED",
        progress=100,
        result=f"{CDN}/x.png",
        creditCost=1e308,
        completedAt="9999-12-31T23:59:59-14:00",
    )
    assert await poll(db, found) == {"updated": 1}
    (job,) = rows(db, "SELECT status, credit_cost, completed_at, files_expected FROM jobs")
    assert (job.status, job.credit_cost, job.completed_at, job.files_expected) == (
        "COMPLETED",
        None,
        None,
        1,
    )
    (polled,) = rows(db, "SELECT flags FROM deliveries WHERE source = 'poll'")
    assert polled.flags == "credit_cost_invalid,completed_at_invalid"


@pytest.mark.anyio
async def test_a_polled_result_nested_deeper_than_orjson_writes_is_set_aside(db: Engine) -> None:
    """A result 600 levels deep from the job API: the poll is recorded (the job completed, its
    result null and flagged) instead of failing every sweep."""
    found = resource(status="COMPLETED", progress=100, result=deep(600), creditCost=4)
    assert await poll(db, found) == {"updated": 1}
    (job,) = rows(db, "SELECT status, result, credit_cost FROM jobs")
    assert (job.status, job.result, job.credit_cost) == ("COMPLETED", None, 4)
    (polled,) = rows(db, "SELECT flags FROM deliveries WHERE source = 'poll'")
    assert polled.flags == "result_invalid"


@pytest.mark.anyio
async def test_a_listed_job_without_a_text_id_is_skipped_not_fatal(db: Engine) -> None:
    """Walking the job list past a job whose id is no text (here 900 levels deep) still
    records the jobs beside it."""
    listed = (
        b'[{"id":'
        + deep(900)
        + b',"status":"COMPLETED"},'
        + orjson.dumps(resource(status="CANCELLED"))
        + b"]"
    )
    recorder = Recorder(db.dialect.name, [Subscription("download", frozenset({"completed"}))])
    client = api(resource(), listed)
    try:
        since = datetime(2026, 1, 1, tzinfo=UTC)
        report = await Reconciler(db, recorder, client).discover(since)
    finally:
        await client.aclose()
    assert (report.outcomes["listed"], report.outcomes["updated"]) == (2, 1)
    (job,) = rows(db, "SELECT id, status FROM jobs")
    assert (job.id, job.status) == (JOB, "CANCELLED")
