"""The cap on unverified body bytes: large bodies past their share get 503 before they are
read, small ones keep coming in, and every request gives back what it held."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.testclient import TestClient

from tests.support.webhooks import signed_headers, webhook_body

URL = "/webhooks/apiframe"


def _body(job_id: str, size: int) -> bytes:
    """A signed-able progress body of about ``size`` bytes."""
    base = webhook_body("progress", jobId=job_id, progress=5)
    padding = max(0, size - len(orjson.dumps(base)) - 12)
    return orjson.dumps({**base, "note": "p" * padding})


def test_a_large_body_past_its_share_is_503_and_small_ones_still_come_in(
    make_client: Callable[..., TestClient],
) -> None:
    """With a 20,000-byte cap, a 17 KB body (large: its share is three quarters) is refused
    with 503 and Retry-After; a 2 KB body is accepted."""
    client = make_client(max_unverified_bytes=20_000)
    large = _body("large", 17_000)
    refused = client.post(URL, content=large, headers=signed_headers(large))
    assert refused.status_code == 503
    assert refused.json()["reason"] == "overloaded"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["connection"] == "close"  # its body is never read
    small = _body("small", 2_000)
    assert client.post(URL, content=small, headers=signed_headers(small)).status_code == 202


def test_every_request_gives_back_what_it_held(make_client: Callable[..., TestClient]) -> None:
    """Fifty 2 KB bodies accepted, fifty refused for their signature and one too large, each
    after the other, never pass a 10,000-byte cap: each gave back its bytes."""
    client = make_client(max_unverified_bytes=10_000, max_body_bytes=4096)
    for n in range(50):
        body = _body(f"held-{n}", 2_000)
        assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 202
        wrong = {"Content-Type": "application/json", "X-Webhook-Signature": "sha256=" + "0" * 64}
        assert client.post(URL, content=body, headers=wrong).status_code == 401
    too_large = _body("too-large", 5_000)
    answer = client.post(URL, content=too_large, headers=signed_headers(too_large))
    assert answer.status_code == 413
    assert answer.headers["connection"] == "close"
    last = _body("last", 2_000)
    assert client.post(URL, content=last, headers=signed_headers(last)).status_code == 202


def test_a_body_hashed_off_the_event_loop_is_verified_the_same(
    make_client: Callable[..., TestClient],
) -> None:
    """A 300 KB signed body (the limit raised), whose HMACs run on a thread, is accepted; the
    same body with a wrong signature is 401."""
    client = make_client(max_body_bytes=1_048_576)
    body = _body("big", 300_000)
    assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 202
    other = _body("big-2", 300_000)
    assert client.post(URL, content=other, headers=signed_headers(body)).status_code == 401
