"""Helpers for the fake Apiframe's tests: the fake inside its lifespan, and a webhook sink.

Tests are async (``@pytest.mark.anyio``); inside one, ``running_fake`` gives a client on the
fake (API key set) and the sink that received its webhooks.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from receiver.apiframe.signatures import SignatureMatch, Verifier
from receiver.dev.fakeapi import Behaviour, FakeApiframe, create_fake_apiframe, fake_of
from tests.support.webhooks import API_KEY, OTHER_KEY, sample

HOOK_URL = "http://receiver.test/webhooks/apiframe"
FAST = Behaviour(step_seconds=0.005, webhook_backoff_seconds=0.001)


@dataclass
class Received:
    """One webhook as the sink got it."""

    event_header: str | None
    body: dict[str, Any]
    raw: bytes
    match: SignatureMatch
    at: float


@dataclass
class Sink:
    """Receives the fake's webhooks, checks each signature against ``API_KEY`` and
    ``OTHER_KEY`` (in that order), and answers ``answer(n)`` for the n-th request (from 0)."""

    answer: Callable[[int], int] = lambda n: 202
    received: list[Received] = field(default_factory=list)
    requests: int = 0
    verifier: Verifier = field(default_factory=lambda: Verifier([API_KEY, OTHER_KEY]))

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        status = self.answer(self.requests)
        self.requests += 1
        match = self.verifier.verify(request.headers.get("x-webhook-signature"), request.content)
        body = json.loads(request.content)
        self.received.append(
            Received(
                request.headers.get("x-webhook-event"),
                body,
                request.content,
                match,
                time.monotonic(),
            )
        )
        return httpx.Response(status, json={"ok": 200 <= status < 300})

    def events(self) -> list[tuple[str, int | None]]:
        """(event, progress) of each webhook, in arrival order."""
        return [(r.body["event"], r.body.get("progress")) for r in self.received]


@asynccontextmanager
async def running_fake(
    behaviour: Behaviour = FAST,
    *,
    sink: Sink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    seed: int = 0,
    base_url: str | None = None,
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeApiframe]]:
    """The fake, started, with a client that sends the API key; webhooks go to ``sink``."""
    webhooks = transport or httpx.MockTransport(sink or Sink())
    app = create_fake_apiframe(
        API_KEY, behaviour=behaviour, seed=seed, base_url=base_url, webhook_transport=webhooks
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://fake.test",
            headers={"X-API-Key": API_KEY},
        ) as client,
    ):
        yield client, fake_of(app)


async def create_job(
    client: httpx.AsyncClient, route: str = "images/generate", **fields: Any
) -> str:
    """Create a job on ``/v2/<route>`` (a Midjourney one, webhooks to the sink); its id."""
    body = {"model": "midjourney", "prompt": "a lighthouse at dusk", "webhookUrl": HOOK_URL}
    body.update(fields)
    response = await client.post(
        f"/v2/{route}", json={k: v for k, v in body.items() if v is not None}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def fixture(name: str) -> dict[str, Any]:
    """A shipped Apiframe sample body (the shared fixtures), decoded."""
    data: dict[str, Any] = json.loads(sample(name))
    return data
