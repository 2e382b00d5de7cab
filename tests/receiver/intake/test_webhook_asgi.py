"""The webhook route as a raw ASGI callable: other methods, a client that leaves mid-body, and
a commit that outlasts the intake timeout answer as the Starlette route did."""

from __future__ import annotations

import threading
from collections.abc import Callable

import orjson
import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient
from starlette.types import Message
from structlog.testing import capture_logs

from receiver.apiframe.signatures import Verifier
from receiver.app import create_app
from receiver.db.engine import create_db_engine, write_lock
from receiver.intake.group_commit import Committer
from receiver.intake.recorder import Arrival, Receipt
from receiver.intake.webhook import WebhookEndpoint
from receiver.settings import Settings
from tests.support.webhooks import API_KEY, signed_headers, webhook_body

URL = "/webhooks/apiframe"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_allow_post_as_json(client: TestClient, method: str) -> None:
    """Every method but POST is 405 with ``Allow: POST`` and the JSON problem body."""
    answer = client.request(method, URL)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "ok": False,
        "reason": "method_not_allowed",
        "detail": "Method Not Allowed",
    }


def test_head_is_405_with_allow_post_and_no_body(client: TestClient) -> None:
    """HEAD is 405 with ``Allow: POST`` too (the route is POST only, not GET)."""
    answer = client.head(URL)
    assert (answer.status_code, answer.headers["allow"], answer.content) == (405, "POST", b"")


def test_answers_carry_the_request_id_length_and_json_type(client: TestClient) -> None:
    """A 202 and a 401 both carry ``X-Request-Id``, an exact ``Content-Length`` and
    ``application/json``; the 401 for a missing signature (body unread) closes the
    connection."""
    body = orjson.dumps(webhook_body("progress", jobId="asgi-1", progress=3))
    accepted = client.post(URL, content=body, headers=signed_headers(body))
    refused = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    for answer, status in ((accepted, 202), (refused, 401)):
        assert answer.status_code == status
        assert answer.headers["content-type"] == "application/json"
        assert int(answer.headers["content-length"]) == len(answer.content)
        assert answer.json()["requestId"] == answer.headers["x-request-id"]
    assert "connection" not in accepted.headers
    assert refused.headers["connection"] == "close"


@pytest.mark.anyio
async def test_a_client_leaving_mid_body_is_answered_499_and_holds_nothing() -> None:
    """A body cut off by a disconnect is ``client_gone`` (499), is never handed to the
    committer, and gives its unverified bytes back."""
    submitted: list[Arrival] = []

    class Recording(Committer[Arrival, Receipt]):
        async def submit(self, item: Arrival) -> Receipt:
            submitted.append(item)
            raise AssertionError("a body that never arrived was submitted")

    endpoint = WebhookEndpoint(Verifier([API_KEY]), Recording(lambda c, i: []), 4096)
    body = orjson.dumps(webhook_body("progress", jobId="gone", progress=1))
    messages: list[Message] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [
        (name.lower().encode(), value.encode()) for name, value in signed_headers(body).items()
    ] + [(b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "method": "POST", "headers": headers, "client": ("10.0.0.9", 1)}
    await endpoint(scope, receive, send)
    assert sent[0]["status"] == 499
    assert orjson.loads(sent[1]["body"])["reason"] == "client_gone"
    assert submitted == []
    assert endpoint.unverified_bytes == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # holds SQLite's lock
def test_a_commit_past_the_intake_timeout_is_503_and_still_stored(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """With the SQLite write lock held past ``intake_timeout_seconds``, the delivery is
    answered 503 ``commit_timeout`` with ``Retry-After``; once the lock is free it commits, so
    Apiframe's retry is a 200 duplicate."""
    client = make_client(intake_timeout_seconds=0.3)
    engine: Engine = create_db_engine(database_url)
    lock = write_lock(engine)
    assert lock is not None
    body = orjson.dumps(webhook_body("progress", jobId="late", progress=7))
    with lock:
        answer = client.post(URL, content=body, headers=signed_headers(body))
    assert answer.status_code == 503
    assert answer.json()["reason"] == "commit_timeout"
    assert answer.headers["retry-after"] == "1"
    stored = threading.Event()
    for _ in range(100):
        with engine.connect() as connection:
            if connection.execute(text("SELECT count(*) FROM deliveries")).scalar() == 1:
                stored.set()
                break
        stored.wait(0.02)
    assert stored.is_set()
    retried = client.post(URL, content=body, headers=signed_headers(body))
    assert (retried.status_code, retried.json()["outcome"]) == (200, "duplicate")
    engine.dispose()


def test_a_bug_in_the_webhook_route_is_a_json_500_logged_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route is answered ahead of Starlette's middleware: an exception it does not expect
    still gets the app's JSON 500 (no traceback on the wire) and one ``unhandled error`` line,
    and the receiver keeps answering."""

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("receiver.intake.webhook.parse_body", broken)
    body = orjson.dumps(webhook_body("progress", jobId="asgi-bug", progress=3))
    with capture_logs() as logs:
        answer = client.post(URL, content=body, headers=signed_headers(body))
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"ok": False, "reason": "internal_error", "detail": "internal error"}
    errors = [line for line in logs if line["log_level"] == "error"]
    assert [(e["event"], e["path"]) for e in errors] == [("unhandled error", URL)]
    monkeypatch.undo()
    again = client.post(URL, content=body, headers=signed_headers(body))
    assert again.status_code == 202


def test_the_webhook_route_answers_under_a_root_path(
    make_settings: Callable[..., Settings],
) -> None:
    """Behind a proxy that mounts framehook under a prefix (uvicorn ``--root-path``), the
    webhook goes through Starlette's router and is stored as at the root."""
    with TestClient(create_app(make_settings()), root_path="/framehook") as prefixed:
        body = orjson.dumps(webhook_body("progress", jobId="asgi-root", progress=4))
        answer = prefixed.post(f"/framehook{URL}", content=body, headers=signed_headers(body))
        assert answer.status_code == 202, answer.text
        assert answer.json()["jobId"] == "asgi-root"
        assert prefixed.get(f"/framehook{URL}").status_code == 405
