"""The fake's authentication (Apiframe's two security schemes) and its answers to routes and
methods it does not have (the spec's ErrorResponse, not plain text)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.receiver.dev.fakeapi.conftest import running_fake
from tests.receiver.dev.fakeapi.openapi import conforms, spec
from tests.support.webhooks import API_KEY

__all__ = ["spec"]


@pytest.mark.anyio
async def test_a_bearer_token_is_accepted_beside_the_api_key_header(
    spec: dict[str, Any],
) -> None:
    """``Authorization: Bearer <key>`` authenticates like ``X-API-Key``; /v2/me then shows no
    API key, as Apiframe does for bearer callers."""
    async with running_fake() as (client, _fake):
        del client.headers["X-API-Key"]
        bearer = {"Authorization": f"Bearer {API_KEY}"}
        me = await client.get("/v2/me", headers=bearer)
        jobs = await client.get("/v2/jobs", headers=bearer)
        by_key = await client.get("/v2/me", headers={"X-API-Key": API_KEY})
    conforms(spec, "/v2/me", "GET", me)
    conforms(spec, "/v2/jobs", "GET", jobs)
    assert (me.status_code, me.json()["apiKey"]) == (200, None)
    assert by_key.json()["apiKey"] is not None


@pytest.mark.anyio
async def test_a_wrong_or_missing_credential_is_401(spec: dict[str, Any]) -> None:
    """A wrong bearer token, another scheme or no credential at all: 401 ErrorResponse."""
    async with running_fake() as (client, _fake):
        del client.headers["X-API-Key"]
        answers = [
            await client.get("/v2/me", headers={"Authorization": "Bearer afk_wrong"}),
            await client.get("/v2/me", headers={"Authorization": f"Basic {API_KEY}"}),
            await client.get("/v2/me"),
        ]
    for answer in answers:
        conforms(spec, "/v2/me", "GET", answer)
    assert [a.status_code for a in answers] == [401, 401, 401]


@pytest.mark.anyio
async def test_unknown_routes_and_methods_answer_json_errors() -> None:
    """An unknown path is 404 and a wrong method 405 (with Allow), both ``{"error": ...}``."""
    async with running_fake() as (client, _fake):
        unknown = await client.get("/v2/nothing-here")
        wrong = await client.put("/v2/jobs")
    assert unknown.status_code == 404
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["allow"]
    for answer in (unknown, wrong):
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) == {"error"}
