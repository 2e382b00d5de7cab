"""Bodies without ``event`` and cancelled jobs, through POST /webhooks/apiframe, on SQLite and
PostgreSQL."""

from __future__ import annotations

import orjson
from sqlalchemy import Engine
from starlette.testclient import TestClient

from tests.support.database import rows
from tests.support.webhooks import sample, signed_headers, webhook_body

URL = "/webhooks/apiframe"
JOB = "5e6f7081-92a3-4b4c-8d5e-6f708192a3b4"
RESULT = {"images": ["https://cdn2.apiframe.ai/a.png", "https://cdn2.apiframe.ai/b.png"]}


def post(client: TestClient, body: dict[str, object], event: str | None = None) -> tuple[int, str]:
    raw = orjson.dumps(body)
    answer = client.post(URL, content=raw, headers=signed_headers(raw, event=event))
    return answer.status_code, answer.json().get("outcome", "")


def test_a_status_only_completion_captures_the_job(client: TestClient, db: Engine) -> None:
    """{jobId, status: COMPLETED, result}: accepted, the job COMPLETED, its download queued
    as a completed event, the delivery stored as completed and flagged event_inferred (and
    an X-Webhook-Event saying completed agrees with it)."""
    body = {"jobId": JOB, "status": "COMPLETED", "result": RESULT}
    status, outcome = post(client, body, event="completed")
    assert (status, outcome) == (202, "accepted")
    (job,) = rows(db, "SELECT status, progress FROM jobs")
    assert (job.status, job.progress) == ("COMPLETED", 100)
    (task,) = rows(db, "SELECT handler, event, status FROM tasks")
    assert (task.handler, task.event, task.status) == ("download", "completed", "queued")
    (delivery,) = rows(
        db, "SELECT event, header_event, outcome, flags, event_mismatch FROM deliveries"
    )
    assert (delivery.event, delivery.outcome, delivery.flags) == (
        "completed",
        "accepted",
        "event_inferred",
    )
    assert (delivery.header_event, bool(delivery.event_mismatch)) == ("completed", False)


def test_a_typed_body_and_the_documented_body_are_one_event(client: TestClient, db: Engine) -> None:
    """{jobId, type: failed} then the same failure with event: the second is a duplicate."""
    assert post(client, {"jobId": JOB, "type": "failed", "error": "boom"}) == (202, "accepted")
    again = webhook_body("failed", jobId=JOB, error="boom")
    assert post(client, again) == (200, "duplicate")
    (job,) = rows(db, "SELECT status, error FROM jobs")
    assert (job.status, job.error) == ("FAILED", "boom")
    flags = [r.flags for r in rows(db, "SELECT flags FROM deliveries ORDER BY id")]
    assert flags == ["event_inferred", None]


def test_a_cancelled_event_ends_the_job_without_credits(client: TestClient, db: Engine) -> None:
    """A cancelled event moves a running job to CANCELLED (terminal, no cost, no result); a
    completion after it is a conflict and changes nothing."""
    assert post(client, webhook_body("progress", jobId=JOB, progress=40)) == (202, "accepted")
    status, outcome = post(client, {"jobId": JOB, "status": "CANCELLED", "creditCost": 8})
    assert (status, outcome) == (202, "accepted")
    late = webhook_body("completed", jobId=JOB, result=RESULT, creditCost=8)
    assert post(client, late) == (200, "conflict")
    assert post(client, webhook_body("progress", jobId=JOB, progress=90)) == (202, "stale")
    (job,) = rows(db, "SELECT status, progress, credit_cost, result FROM jobs")
    assert (job.status, job.progress, job.credit_cost, job.result) == ("CANCELLED", 100, None, None)
    assert rows(db, "SELECT * FROM tasks") == []


def test_the_cancelled_sample_is_accepted_not_unrecognized(client: TestClient, db: Engine) -> None:
    """Apiframe's job status CANCELLED sent as an event names its job and ends it."""
    raw = sample("unknown-event-future")
    answer = client.post(URL, content=raw, headers=signed_headers(raw))
    assert (answer.status_code, answer.json()["outcome"]) == (202, "accepted")
    (job,) = rows(db, "SELECT id, status, model FROM jobs")
    assert (job.id, job.status, job.model) == (
        "7c8d9eaf-0112-4d23-e4f5-a6b7c8d9e0f1",
        "CANCELLED",
        "veo-3.1",
    )
