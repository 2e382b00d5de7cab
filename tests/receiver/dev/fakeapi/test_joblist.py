"""``GET /v2/jobs``'s ``scope``, ``search`` and ``include_models``, as Apiframe's spec
describes them, and its answers in the spec's JobList and ValidationError schemas."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.receiver.dev.fakeapi.conftest import create_job, running_fake
from tests.receiver.dev.fakeapi.openapi import conforms, spec

__all__ = ["spec"]


@pytest.mark.anyio
async def test_search_finds_one_job_by_its_id(spec: dict[str, Any]) -> None:
    """``search=<job id>`` lists that job alone; an unknown id lists none."""
    async with running_fake() as (client, _fake):
        first = await create_job(client)
        await create_job(client)
        found = await client.get("/v2/jobs", params={"search": first})
        none = await client.get("/v2/jobs", params={"search": str(uuid.uuid4())})
    conforms(spec, "/v2/jobs", "GET", found)
    assert [job["id"] for job in found.json()["jobs"]] == [first]
    assert none.json()["jobs"] == []


@pytest.mark.anyio
async def test_include_models_lists_the_models_used(spec: dict[str, Any]) -> None:
    """``include_models=true`` adds ``models``, each model of the caller's jobs once; without
    it the key is absent."""
    async with running_fake() as (client, _fake):
        await create_job(client)
        await create_job(client, model="flux-2-pro")
        await create_job(client)
        with_models = await client.get("/v2/jobs", params={"include_models": "true", "limit": 1})
        without = await client.get("/v2/jobs")
    conforms(spec, "/v2/jobs", "GET", with_models)
    assert with_models.json()["models"] == ["flux-2-pro", "midjourney"]
    assert "models" not in without.json()


@pytest.mark.anyio
async def test_scope_team_lists_the_teams_jobs(spec: dict[str, Any]) -> None:
    """The fake's caller owns its team: ``scope=team`` lists the same jobs as ``scope=user``."""
    async with running_fake() as (client, _fake):
        await create_job(client)
        team = await client.get("/v2/jobs", params={"scope": "team"})
        user = await client.get("/v2/jobs", params={"scope": "user"})
    conforms(spec, "/v2/jobs", "GET", team)
    assert team.json()["jobs"] == user.json()["jobs"]
    assert len(team.json()["jobs"]) == 1


@pytest.mark.anyio
async def test_bad_query_values_are_validation_errors(spec: dict[str, Any]) -> None:
    """A bad scope, search, include_models, status or limit is 400 with details keyed by
    the parameter."""
    query = {
        "scope": "everyone",
        "search": "not-a-uuid",
        "include_models": "yes",
        "status": "DONE",
        "limit": "0",
    }
    async with running_fake() as (client, _fake):
        answer = await client.get("/v2/jobs", params=query)
    conforms(spec, "/v2/jobs", "GET", answer)
    assert answer.status_code == 400
    assert set(answer.json()["details"]) == set(query)
