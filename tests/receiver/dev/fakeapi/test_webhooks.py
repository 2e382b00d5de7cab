"""The fake's webhooks: signed like Apiframe's, the subscribed events only, retried on 5xx."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

from receiver.apiframe.signatures import Derivation, SignatureMatch, sign
from receiver.dev.fakeapi.webhooks import signature
from tests.receiver.dev.fakeapi.conftest import FAST, Sink, create_job, running_fake
from tests.support.webhooks import API_KEY


def test_the_signature_follows_the_reference_test_vector() -> None:
    """The fake's signer gives the test vector of apiframe-v2.md §2 (SDK digest key)."""
    body = b'{"jobId":"abc","status":"COMPLETED"}'
    expected = "sha256=58e6d7af820911d918b1b43ade255ec260002ca8b24ba46dd057a99d192c89f4"
    assert signature(body, "afk_0000000000000000000000000000000000000000") == expected
    assert signature(body, API_KEY) == sign(body, API_KEY, Derivation.DIGEST)


@pytest.mark.anyio
async def test_webhooks_verify_with_framehooks_verifier() -> None:
    """Every webhook verifies with receiver.apiframe.signatures.Verifier (first key, digest
    derivation), and X-Webhook-Event matches the body's event."""
    sink = Sink()
    async with running_fake(sink=sink) as (client, fake):
        await create_job(client, webhookEvents=["progress", "completed", "failed"])
        await fake.settle()
    assert len(sink.received) == 4
    for received in sink.received:
        assert received.match == SignatureMatch(0, Derivation.DIGEST)
        assert received.event_header == received.body["event"]


@pytest.mark.anyio
async def test_progress_events_increase_then_the_job_completes() -> None:
    """With progress subscribed: progress_steps increasing percentages, then `completed`."""
    sink = Sink()
    behaviour = dataclasses.replace(FAST, progress_steps=5)
    async with running_fake(behaviour, sink=sink) as (client, fake):
        await create_job(client, webhookEvents=["progress", "completed"])
        await fake.settle()
    events = sink.events()
    assert [e for e, _ in events] == ["progress"] * 5 + ["completed"]
    percentages = [p for _, p in events[:-1] if p is not None]
    assert len(percentages) == 5  # each progress webhook says its percentage
    assert percentages == sorted(set(percentages))
    assert percentages[0] > 0
    assert percentages[-1] < 100
    assert events[-1] == ("completed", 100)


@pytest.mark.anyio
async def test_only_subscribed_events_are_sent_and_the_default_is_completed_and_failed() -> None:
    """No webhookEvents: completed/failed only; ["progress"]: progress only; no URL: nothing."""
    sink = Sink()
    async with running_fake(sink=sink) as (client, fake):
        default = await create_job(client)
        failing = await create_job(client, prompt="fail")
        progress_only = await create_job(client, webhookEvents=["progress"])
        silent = await create_job(client, webhookUrl=None)
        await fake.settle()
        by_job: dict[str, list[str]] = {}
        for received in sink.received:
            by_job.setdefault(received.body["jobId"], []).append(received.body["event"])
        assert by_job[default] == ["completed"]
        assert by_job[failing] == ["failed"]
        assert set(by_job[progress_only]) == {"progress"}
        assert silent not in by_job
        resource = (await client.get(f"/v2/jobs/{silent}")).json()
        assert resource["webhookStatus"] is None


@pytest.mark.anyio
async def test_a_5xx_answer_is_retried_until_accepted() -> None:
    """A webhook answered 503 twice is sent again and recorded once, with 3 attempts."""
    sink = Sink(answer=lambda n: 503 if n < 2 else 202)
    async with running_fake(sink=sink) as (client, fake):
        job_id = await create_job(client)
        await fake.settle()
        [delivery] = fake.deliveries
        assert (delivery.status_code, delivery.attempts) == (202, 3)
        resource = (await client.get(f"/v2/jobs/{job_id}")).json()
        assert resource["webhookStatus"] == "delivered"
    assert len(sink.received) == 3
    assert len({r.raw for r in sink.received}) == 1


@pytest.mark.anyio
async def test_a_4xx_answer_is_not_retried() -> None:
    """A webhook answered 401 is given up at once (only 5xx and network errors are retried)."""
    sink = Sink(answer=lambda n: 401)
    async with running_fake(sink=sink) as (client, fake):
        job_id = await create_job(client)
        await fake.settle()
        [delivery] = fake.deliveries
        assert (delivery.status_code, delivery.attempts) == (401, 1)
        resource = (await client.get(f"/v2/jobs/{job_id}")).json()
        assert resource["webhookStatus"] == "failed"


@pytest.mark.anyio
async def test_a_receiver_that_never_answers_gets_retries_then_is_given_up() -> None:
    """Connection errors are retried `webhook_retries` times; the record keeps the error."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    behaviour = dataclasses.replace(FAST, webhook_retries=2)
    async with running_fake(behaviour, transport=httpx.MockTransport(refuse)) as (c, fake):
        await create_job(c)
        await fake.settle()
        [delivery] = fake.deliveries
        assert delivery.status_code is None
        assert delivery.attempts == 3
        assert delivery.error is not None
        assert "ConnectError" in delivery.error
        assert not delivery.delivered


@pytest.mark.anyio
async def test_the_webhook_body_is_compact_json_as_signed() -> None:
    """The signed bytes are the bytes sent: compact JSON, as Apiframe's Node service writes."""
    sink = Sink()
    async with running_fake(sink=sink) as (client, fake):
        await create_job(client)
        await fake.settle()
    raw = sink.received[0].raw
    assert raw == json.dumps(json.loads(raw), separators=(",", ":")).encode()
