"""The job API client trusts no answer that says two things: a job resource naming a key twice
is an error, and reconciliation leaves the job as it was."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from receiver.apiframe.client import ApiframeClient, ApiframeError
from receiver.apiframe.events import parse_body
from receiver.db.engine import writing
from receiver.intake.recorder import Arrival, Recorder, Subscription
from receiver.reconcile.reconciler import Reconciler
from tests.support.database import rows
from tests.support.webhooks import API_KEY

JOB = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
# The job resource, still running by its first status and completed by its second (the one
# orjson keeps).
TWO_STATUSES = (
    b'{"id":"' + JOB.encode() + b'","status":"PROCESSING","progress":100,'
    b'"result":"https://cdn2.apiframe.ai/x.png","status":"COMPLETED","model":"m"}'
)


def client(body: bytes) -> ApiframeClient:
    """A client whose API answers every lookup with ``body``."""
    answer = httpx.MockTransport(lambda _request: httpx.Response(200, content=body))
    return ApiframeClient(API_KEY, "http://fake.test", attempts=1, transport=answer)


@pytest.mark.anyio
async def test_a_job_resource_naming_a_key_twice_is_an_error_naming_it() -> None:
    """Two ``status`` keys in a job lookup: ``ApiframeError`` naming the key, not the last
    one's value."""
    api = client(TWO_STATUSES)
    try:
        with pytest.raises(ApiframeError, match='"status" twice in one object at the top level'):
            await api.job(JOB)
    finally:
        await api.aclose()


@pytest.mark.anyio
async def test_a_listing_naming_a_key_twice_is_an_error() -> None:
    """A job list whose second job names ``id`` twice is refused whole."""
    page = b'{"jobs":[{"id":"a"},{"id":"b","id":"c"}],"hasMore":false}'
    api = client(page)
    try:
        with pytest.raises(ApiframeError, match=r'"id" twice in one object in jobs\[\]'):
            await api.jobs()
    finally:
        await api.aclose()


@pytest.mark.anyio
async def test_a_poll_answered_with_a_key_twice_leaves_the_job_as_it_was(db: Engine) -> None:
    """Reconciliation counts the lookup as an error and records nothing: the job stays at
    the progress its webhook gave, no delivery from the poll, nothing queued."""
    recorder = Recorder(db.dialect.name, [Subscription("download", frozenset({"completed"}))])
    running = orjson.dumps({"event": "progress", "jobId": JOB, "progress": 40})
    with writing(db) as connection:
        recorder.record(connection, Arrival(parse_body(running), running, datetime.now(UTC), "r"))
    api = client(TWO_STATUSES)
    try:
        report = await Reconciler(db, recorder, api).poll([JOB])
    finally:
        await api.aclose()
    assert dict(report.outcomes) == {"error": 1}
    assert [(j.status, j.progress) for j in rows(db, "SELECT * FROM jobs")] == [("PROCESSING", 40)]
    assert rows(db, "SELECT * FROM deliveries WHERE source = 'poll'") == []
    assert rows(db, "SELECT * FROM tasks") == []
