"""POST /webhooks/apiframe end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from starlette.testclient import TestClient

from receiver import Derivation, sign
from tests.support.database import rows
from tests.support.webhooks import (
    API_KEY,
    OTHER_KEY,
    sample,
    sample_names,
    signed_headers,
    webhook_body,
)

URL = "/webhooks/apiframe"


def post(client: TestClient, body: bytes, **kw: object) -> tuple[int, dict[str, object]]:
    headers = signed_headers(body, **kw)  # type: ignore[arg-type]
    response = client.post(URL, content=body, headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_is_accepted_and_stored_byte_for_byte(
    client: TestClient, db: Engine, name: str
) -> None:
    """Each fixture gets 202 and its raw bytes are stored exactly as received."""
    body = sample(name)
    status, answer = post(client, body)
    assert status == 202
    assert answer["outcome"] in ("accepted", "unrecognized")
    (stored,) = rows(db, "SELECT body, outcome, key_index, key_derivation FROM deliveries")
    assert bytes(stored.body) == body
    assert (stored.key_index, stored.key_derivation) == (0, "digest")


def test_completed_job_state_and_task_are_committed_with_the_answer(
    client: TestClient, db: Engine
) -> None:
    """After 202 the job row, the delivery and one task for the download handler exist."""
    status, answer = post(client, sample("completed-midjourney"), event="completed")
    assert status == 202
    (job,) = rows(db, "SELECT id, status, progress, model, credit_cost FROM jobs")
    assert (job.status, job.progress, job.model, job.credit_cost) == (
        "COMPLETED",
        100,
        "midjourney",
        16,
    )
    (task,) = rows(db, "SELECT handler, event, status, delivery_id, priority FROM tasks")
    assert (task.handler, task.event, task.status) == ("download", "completed", "queued")
    assert task.delivery_id == answer["deliveryId"]


def test_progress_gets_no_task_for_a_completed_only_handler(client: TestClient, db: Engine) -> None:
    """The download handler subscribes to completed only: a progress event queues nothing."""
    status, _ = post(client, sample("progress-midjourney-45"))
    assert status == 202
    assert rows(db, "SELECT * FROM tasks") == []
    (job,) = rows(db, "SELECT status, progress FROM jobs")
    assert (job.status, job.progress) == ("PROCESSING", 45)


def test_duplicate_answers_200_and_is_kept_as_duplicate(client: TestClient, db: Engine) -> None:
    """The same event twice: 202 then 200; both deliveries kept; one task only."""
    body = sample("completed-kling-video")
    assert post(client, body)[0] == 202
    status, answer = post(client, body)
    assert (status, answer["outcome"]) == (200, "duplicate")
    outcomes = [r.outcome for r in rows(db, "SELECT outcome FROM deliveries ORDER BY id")]
    assert outcomes == ["accepted", "duplicate"]
    assert len(rows(db, "SELECT * FROM tasks")) == 1


def test_reserialised_duplicate_is_still_a_duplicate(client: TestClient, db: Engine) -> None:
    """Same JSON in other bytes (key order, spacing) is a duplicate, not a conflict."""
    body = sample("completed-suno")
    other = orjson.dumps(dict(reversed(list(orjson.loads(body).items()))))
    post(client, body)
    assert post(client, other)[1]["outcome"] == "duplicate"


def test_same_key_with_different_body_is_a_conflict_and_first_wins(
    client: TestClient, db: Engine
) -> None:
    """A second completed with another result: 200 conflict; the job keeps the first result."""
    first = sample("completed-gpt-image-2")
    data = orjson.loads(first)
    data["result"] = {"images": ["https://cdn2.apiframe.ai/images/other.webp"]}
    post(client, first)
    status, answer = post(client, orjson.dumps(data))
    assert (status, answer["outcome"]) == (200, "conflict")
    (job,) = rows(db, "SELECT result FROM jobs")
    assert (
        orjson.loads(job.result)
        if isinstance(job.result, str)
        else job.result == orjson.loads(first)["result"]
    )
    assert len(rows(db, "SELECT * FROM tasks")) == 1


def test_failed_after_completed_is_a_conflict(client: TestClient, db: Engine) -> None:
    """A different terminal event after the first changes nothing and is flagged."""
    done = orjson.loads(sample("completed-gpt-image-2"))
    fail = webhook_body("failed", jobId=done["jobId"], error="late")
    post(client, orjson.dumps(done))
    status, answer = post(client, orjson.dumps(fail))
    assert (status, answer["outcome"]) == (200, "conflict")
    (job,) = rows(db, "SELECT status, error FROM jobs")
    assert (job.status, job.error) == ("COMPLETED", None)


def test_progress_after_completed_is_stale(client: TestClient, db: Engine) -> None:
    """A late progress is stored as stale (202), changes nothing, queues nothing."""
    post(client, sample("completed-midjourney"))
    status, answer = post(client, sample("progress-midjourney-45"))
    assert (status, answer["outcome"]) == (202, "stale")
    (job,) = rows(db, "SELECT status, progress FROM jobs")
    assert (job.status, job.progress) == ("COMPLETED", 100)
    assert len(rows(db, "SELECT * FROM tasks")) == 1


def test_unknown_event_is_stored_acknowledged_and_dispatched_to_no_one(
    client: TestClient, db: Engine
) -> None:
    """A future event type: 202 unrecognized, kept raw, no job change, no task."""
    body = orjson.dumps({"event": "expired", "jobId": "7c8d9eaf", "status": "COMPLETED"})
    status, answer = post(client, body)
    assert (status, answer["outcome"]) == (202, "unrecognized")
    assert rows(db, "SELECT * FROM jobs") == []
    assert rows(db, "SELECT * FROM tasks") == []
    (delivery,) = rows(db, "SELECT outcome, event, job_id FROM deliveries")
    assert (delivery.outcome, delivery.event) == ("unrecognized", "expired")
    assert post(client, body)[1]["outcome"] == "duplicate"


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"<html>oops</html>", "not_json"), (b'{"event":"completed"}', "invalid_event")],
)
def test_verified_but_unusable_body_is_stored_and_answered_400(
    client: TestClient, db: Engine, body: bytes, reason: str
) -> None:
    """Signed garbage: 400 with a reason, and kept as a malformed delivery for inspection."""
    status, answer = post(client, body)
    assert (status, answer["reason"]) == (400, reason)
    (delivery,) = rows(db, "SELECT outcome, body FROM deliveries")
    assert delivery.outcome == "malformed"
    assert bytes(delivery.body) == body


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "signature_missing"),
        ({"X-Webhook-Signature": "sha256=nothex"}, "signature_malformed"),
        ({"X-Webhook-Signature": "sha256=" + "0" * 64}, "signature_mismatch"),
        ({"X-Webhook-Signature": sign(b"{}", API_KEY)}, "signature_mismatch"),
        (
            {"X-Webhook-Signature": sign(sample("completed-midjourney"), "afk_someone_else")},
            "signature_mismatch",
        ),
    ],
)
def test_unverified_requests_get_401_and_are_never_stored(
    client: TestClient, db: Engine, headers: dict[str, str], reason: str
) -> None:
    """Missing, malformed or wrong signatures: 401 with a reason, nothing written."""
    response = client.post(URL, content=sample("completed-midjourney"), headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == reason
    assert rows(db, "SELECT * FROM deliveries") == []
    assert rows(db, "SELECT * FROM ledger") == []


def test_several_signature_headers_are_refused(client: TestClient) -> None:
    """Two X-Webhook-Signature headers are ambiguous: 401, not a guess."""
    body = sample("completed-midjourney")
    good = sign(body, API_KEY)
    response = client.post(
        URL, content=body, headers=[("X-Webhook-Signature", good), ("X-Webhook-Signature", good)]
    )
    assert (response.status_code, response.json()["reason"]) == (401, "signature_malformed")


def test_rotated_key_and_hex_derivation_are_accepted_and_recorded(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """A second key from FRAMEHOOK_API_KEYS, hex-text derivation: accepted, recorded by index."""
    client = make_client(api_keys=OTHER_KEY)
    status, _ = post(
        client, sample("completed-suno-stems"), key=OTHER_KEY, derivation=Derivation.HEX
    )
    assert status == 202
    (delivery,) = rows(db, "SELECT key_index, key_derivation FROM deliveries")
    assert (delivery.key_index, delivery.key_derivation) == (1, "hex")


def test_event_header_disagreeing_with_body_is_flagged(client: TestClient, db: Engine) -> None:
    """X-Webhook-Event says progress, the body says completed: stored, flagged, body wins."""
    status, answer = post(client, sample("completed-topaz-upscale"), event="progress")
    assert (status, answer["outcome"]) == (202, "accepted")
    (delivery,) = rows(db, "SELECT event, header_event, event_mismatch FROM deliveries")
    assert (delivery.event, delivery.header_event, bool(delivery.event_mismatch)) == (
        "completed",
        "progress",
        True,
    )
    (job,) = rows(db, "SELECT status FROM jobs")
    assert job.status == "COMPLETED"


def test_declared_oversized_body_is_refused_before_reading(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """Content-Length over the limit: 413 with a reason, nothing stored."""
    client = make_client(max_body_bytes=2048)
    body = b'{"event":"progress","jobId":"j","pad":"' + b"x" * 4096 + b'"}'
    response = client.post(URL, content=body, headers=signed_headers(body))
    assert (response.status_code, response.json()["reason"]) == (413, "body_too_large")
    assert rows(db, "SELECT * FROM deliveries") == []


def test_chunked_body_is_cut_off_at_the_limit(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """A chunked body (no Content-Length) that grows past the limit gets 413."""
    client = make_client(max_body_bytes=2048)
    body = b'{"event":"progress","jobId":"j","pad":"' + b"x" * 8192 + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    response = client.post(URL, content=chunks(), headers=signed_headers(body))
    assert (response.status_code, response.json()["reason"]) == (413, "body_too_large")
    assert rows(db, "SELECT * FROM deliveries") == []


def test_wrong_method_and_unknown_route_answer_json(client: TestClient) -> None:
    """GET on the webhook route is 405 and an unknown path 404, both as JSON with a reason."""
    assert client.get(URL).json()["reason"] == "method_not_allowed"
    assert client.get("/nope").json()["reason"] == "not_found"


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    """A sane X-Request-Id from a proxy is kept; otherwise one is made."""
    body = sample("progress-midjourney-45")
    kept = client.post(
        URL, content=body, headers={**signed_headers(body), "X-Request-Id": "edge-42"}
    )
    assert kept.headers["x-request-id"] == "edge-42"
    made = client.post(
        URL, content=body, headers={**signed_headers(body), "X-Request-Id": "bad id\n!"}
    )
    assert made.headers["x-request-id"] != "bad id\n!"
    assert len(made.headers["x-request-id"]) == 32


def test_health_and_readiness(client: TestClient) -> None:
    """/healthz and /readyz answer 200 while the database answers."""
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json() == {"ok": True}


_HEADER_VALUES = st.one_of(
    st.none(),
    st.text(max_size=80).filter(lambda s: s.isprintable() and s.isascii()),
    st.from_regex(r"(sha256=)?[0-9a-fA-F]{60,68}", fullmatch=True),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=600),
    signature=_HEADER_VALUES,
    event=_HEADER_VALUES,
    sign_it=st.booleans(),
)
def test_random_requests_never_get_a_500(
    client: TestClient, body: bytes, signature: str | None, event: str | None, sign_it: bool
) -> None:
    """Random bodies and headers, signed or not: always a JSON answer, never a 5xx."""
    headers = {}
    if sign_it:
        headers["X-Webhook-Signature"] = sign(body, API_KEY)
    elif signature is not None:
        headers["X-Webhook-Signature"] = signature
    if event is not None:
        headers["X-Webhook-Event"] = event
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code in (200, 202, 400, 401)
    assert "reason" in response.json() or response.json()["ok"] is True
    if not sign_it:
        assert response.status_code == 401


def test_overlong_event_names_are_stored_cut_not_refused(client: TestClient, db: Engine) -> None:
    """A 300-character X-Webhook-Event or body event name is stored cut to 64, never a 5xx."""
    body = orjson.dumps({"event": "e" * 300, "jobId": "j"})
    status, _ = post(client, body, event="h" * 300)
    assert status == 202
    (delivery,) = rows(db, "SELECT event, header_event, body FROM deliveries")
    assert (delivery.event, delivery.header_event) == ("e" * 64, "h" * 64)
    assert bytes(delivery.body) == body
