"""Idempotency-Key: a replay gets the original job; a reused key with another body is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from receiver.dev.fakeapi.idempotency import IdempotencyStore
from tests.receiver.dev.fakeapi.conftest import running_fake

BODY = {"model": "midjourney", "prompt": "a cat"}


@pytest.mark.anyio
async def test_the_same_key_and_body_answer_the_original_job() -> None:
    """A replay with the same key and body is 202 with the first jobId, and no new job."""
    async with running_fake() as (client, fake):
        headers = {"Idempotency-Key": "order-1"}
        first = await client.post("/v2/images/generate", json=BODY, headers=headers)
        again = await client.post("/v2/images/generate", json=BODY, headers=headers)
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json()["jobId"] == first.json()["jobId"]
        assert len(fake.jobs) == 1


@pytest.mark.anyio
async def test_the_same_key_with_another_body_is_400() -> None:
    """Reusing a key for a different request is 400 ValidationError naming the header (the
    spec documents no 409/422), and creates nothing."""
    async with running_fake() as (client, fake):
        headers = {"Idempotency-Key": "order-2"}
        await client.post("/v2/images/generate", json=BODY, headers=headers)
        other = {**BODY, "prompt": "a dog"}
        response = await client.post("/v2/images/generate", json=other, headers=headers)
        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()["details"]
        assert len(fake.jobs) == 1


@pytest.mark.anyio
async def test_without_a_key_or_with_another_key_each_request_is_a_job() -> None:
    """Only the same key dedupes: no key, or different keys, make new jobs."""
    async with running_fake() as (client, fake):
        for headers in ({}, {}, {"Idempotency-Key": "a"}, {"Idempotency-Key": "b"}):
            assert (await client.post("/v2/images/generate", json=BODY, headers=headers)).is_success
        assert len(fake.jobs) == 4


@pytest.mark.anyio
async def test_a_key_longer_than_255_characters_is_400() -> None:
    """The spec caps the key at 255 characters: 256 is 400 naming the header; 255 is fine."""
    async with running_fake() as (client, fake):
        long = await client.post(
            "/v2/images/generate", json=BODY, headers={"Idempotency-Key": "k" * 256}
        )
        assert long.status_code == 400
        assert "Idempotency-Key" in long.json()["details"]
        ok = await client.post(
            "/v2/images/generate", json=BODY, headers={"Idempotency-Key": "k" * 255}
        )
        assert ok.status_code == 202
        assert len(fake.jobs) == 1


def test_a_key_is_forgotten_after_24_hours() -> None:
    """The store recalls a key for 24 hours, not after."""
    store, start = IdempotencyStore(), datetime(2026, 1, 1, tzinfo=UTC)
    store.remember("k", "print", "job", now=start)
    assert store.recall("k", now=start + timedelta(hours=23)) == ("print", "job")
    assert store.recall("k", now=start + timedelta(hours=24)) is None
