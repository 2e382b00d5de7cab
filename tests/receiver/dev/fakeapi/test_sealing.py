"""Sealing: a fake sending over the network refuses public webhook hosts, when the job is
created and again when each webhook would leave."""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

import httpx
import pytest

from receiver.dev.fakeapi import create_fake_apiframe, fake_of
from receiver.dev.fakeapi.sealing import webhook_url_problem
from receiver.dev.fakeapi.webhooks import Outgoing, SealedTransport, deliver
from tests.receiver.dev.fakeapi.conftest import FAST, Sink
from tests.support.webhooks import API_KEY

JOB = {"model": "midjourney", "prompt": "a lighthouse at dusk"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    ["http://8.8.8.8/h", "https://[2001:4860:4860::8888]:8443/h", "http://[::ffff:8.8.8.8]/h"],
)
async def test_a_public_ip_literal_is_refused(url: str) -> None:
    """A URL whose host is a public IP (v4, v6, v4-mapped) has a problem naming it."""
    problem = await webhook_url_problem(url)
    assert problem is not None
    assert "public address" in problem


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/h",
        "http://[::1]/h",
        "http://10.1.2.3/h",
        "http://192.168.0.9/h",
        "http://100.100.1.1/h",
        "http://localhost:9/h",
        "http://receiver.invalid/h",
    ],
)
async def test_loopback_private_and_unresolvable_hosts_pass(url: str) -> None:
    """Loopback, private, CGNAT, ``localhost`` and a name that does not resolve (its delivery
    is checked again when sent) are no problem."""
    assert await webhook_url_problem(url) is None


@pytest.mark.anyio
async def test_a_name_with_any_public_address_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolving to a private and a public address is refused: the sender may use
    either. (DNS is the one thing faked here: no test may depend on the network's.)"""

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        stream = socket.SOCK_STREAM
        return [
            (socket.AF_INET, stream, 6, "", ("10.0.0.5", port)),
            (socket.AF_INET, stream, 6, "", ("93.184.215.14", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    problem = await webhook_url_problem("http://mixed.example/h")
    assert problem is not None
    assert "93.184.215.14" in problem


@pytest.mark.anyio
async def test_a_sealed_fake_answers_400_keyed_by_the_field() -> None:
    """Without a transport of its own, the fake refuses a public webhookUrl with the spec's
    ValidationError shape and creates no job; loopback is accepted."""
    app = create_fake_apiframe(API_KEY, behaviour=FAST)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://fake.test",
            headers={"X-API-Key": API_KEY},
        ) as client,
    ):
        refused = await client.post(
            "/v2/images/generate", json={**JOB, "webhookUrl": "http://1.1.1.1/h"}
        )
        assert refused.status_code == 400
        assert refused.json()["error"]
        assert list(refused.json()["details"]) == ["webhookUrl"]
        assert len(fake_of(app).jobs) == 0
        accepted = await client.post("/v2/images/generate", json={**JOB, "webhookUrl": None})
        assert accepted.status_code == 202


@pytest.mark.anyio
async def test_allow_public_webhooks_and_a_given_transport_lift_the_seal() -> None:
    """``allow_public_webhooks=True`` lifts the seal; so does a transport of the caller's own
    (it keeps webhooks in the process), which then receives the public URL's webhook."""
    assert not fake_of(create_fake_apiframe(API_KEY, allow_public_webhooks=True)).sealed
    sink = Sink()
    app = create_fake_apiframe(API_KEY, behaviour=FAST, webhook_transport=httpx.MockTransport(sink))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://fake.test",
            headers={"X-API-Key": API_KEY},
        ) as client,
    ):
        body = {**JOB, "webhookUrl": "https://hooks.example.com/h"}
        assert (await client.post("/v2/images/generate", json=body)).status_code == 202
        await fake_of(app).settle()
    assert [r.body["event"] for r in sink.received] == ["completed"]


@pytest.mark.anyio
async def test_the_sealed_transport_refuses_a_public_address_at_send_time() -> None:
    """A webhook bound for a public address is not sent, not retried, and recorded with the
    reason; a loopback one goes through to the inner transport."""
    sink = Sink()
    outgoing = Outgoing("job-1", 0, "completed", 100, "http://8.8.8.8/h", b"{}")
    async with httpx.AsyncClient(transport=SealedTransport(httpx.MockTransport(sink))) as client:
        refused = await deliver(client, outgoing, API_KEY, retries=3, backoff_seconds=0)
        local = dataclasses.replace(outgoing, url="http://127.0.0.1:9/h")
        sent = await deliver(client, local, API_KEY, retries=3, backoff_seconds=0)
    assert (refused.attempts, refused.status_code) == (1, None)
    assert refused.error is not None
    assert "PublicAddressRefused" in refused.error
    assert sent.status_code == 202
    assert sink.requests == 1
