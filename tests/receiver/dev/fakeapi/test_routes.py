"""The fake's HTTP surface: job-creating routes, API key, job resource, the cursored list."""

from __future__ import annotations

import uuid

import pytest

from receiver.dev.fakeapi.bodies import OPERATIONS
from tests.receiver.dev.fakeapi.conftest import create_job, running_fake
from tests.receiver.dev.fakeapi.valid import valid_body

RESOURCE_KEYS = {
    "id",
    "status",
    "model",
    "progress",
    "result",
    "error",
    "creditCost",
    "webhookStatus",
    "createdAt",
    "completedAt",
    "expired",
    "input",
}


@pytest.mark.anyio
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_every_job_route_answers_202_with_a_queued_uuid(operation: str) -> None:
    """Each job-creating route answers 202 {jobId: <uuid>, status: QUEUED} and runs the job."""
    async with running_fake() as (client, fake):
        response = await client.post(f"/v2/{operation}", json=await valid_body(client, operation))
        assert response.status_code == 202
        answer = response.json()
        assert answer["status"] == "QUEUED"
        assert str(uuid.UUID(answer["jobId"])) == answer["jobId"]
        assert response.headers["x-request-id"]
        await fake.settle()
        job = (await client.get(f"/v2/jobs/{answer['jobId']}")).json()
        assert job["status"] == "COMPLETED"


@pytest.mark.anyio
@pytest.mark.parametrize("key", [None, "", "afk_wrong"])
async def test_a_missing_or_wrong_api_key_is_401_with_an_error(key: str | None) -> None:
    """Without the right X-API-Key, job and control routes answer 401 {"error": ...}."""
    async with running_fake() as (client, fake):
        headers = {} if key is None else {"X-API-Key": key}
        client.headers.pop("X-API-Key")
        for method, path in [
            ("POST", "/v2/images/generate"),
            ("GET", "/v2/jobs"),
            ("GET", f"/v2/jobs/{uuid.uuid4()}"),
            ("POST", "/_fake/behaviour"),
        ]:
            response = await client.request(method, path, json={}, headers=headers)
            assert response.status_code == 401, path
            assert set(response.json()) == {"error"}
        assert len(fake.jobs) == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("images/generate", {"prompt": "a cat"}, "model"),
        ("images/generate", {"model": "flux-2-pro"}, "prompt"),
        ("images/midjourney/action", {}, "action"),
        ("images/generate", {"model": "m", "prompt": "p", "webhookUrl": "ftp://x"}, "webhookUrl"),
        (
            "images/generate",
            {"model": "m", "prompt": "p", "webhookEvents": ["done"]},
            "webhookEvents.0",
        ),
        ("images/generate", ["not", "an", "object"], ""),
    ],
)
async def test_an_invalid_job_request_is_400_with_details(
    route: str, body: object, field: str
) -> None:
    """A request missing a required field, or with a bad one, is 400 naming the field."""
    async with running_fake() as (client, fake):
        response = await client.post(f"/v2/{route}", json=body)
        assert response.status_code == 400
        assert field in response.json()["details"]
        assert len(fake.jobs) == 0


@pytest.mark.anyio
async def test_a_body_that_is_not_json_is_400() -> None:
    """A job request whose body is not JSON is 400 {"error"}."""
    async with running_fake() as (client, _):
        response = await client.post("/v2/images/generate", content=b"{nope")
        assert response.status_code == 400
        assert "error" in response.json()


@pytest.mark.anyio
async def test_the_job_resource_moves_from_queued_to_completed() -> None:
    """GET /v2/jobs/:id has every documented key; status QUEUED, then COMPLETED with a result."""
    async with running_fake() as (client, fake):
        params = {"seed": 42}
        job_id = await create_job(client, prompt="a lighthouse", midjourneyParams=params)
        queued = (await client.get(f"/v2/jobs/{job_id}")).json()
        assert set(queued) == RESOURCE_KEYS
        assert (queued["status"], queued["progress"], queued["result"]) == ("QUEUED", 0, None)
        assert queued["input"]["midjourneyParams"]["seed"] == 42
        await fake.settle()
        done = (await client.get(f"/v2/jobs/{job_id}")).json()
        assert done["status"] == "COMPLETED"
        assert done["progress"] == 100
        assert len(done["result"]["images"]) == 4
        assert done["creditCost"] > 0
        assert done["webhookStatus"] == "delivered"
        assert done["completedAt"].endswith("Z")
        assert done["expired"] is False


@pytest.mark.anyio
async def test_a_prompt_with_the_fail_marker_fails_the_job() -> None:
    """A prompt containing "fail" ends FAILED, with an error and no credits charged."""
    async with running_fake() as (client, fake):
        job_id = await create_job(client, prompt="please FAIL this one")
        await fake.settle()
        job = (await client.get(f"/v2/jobs/{job_id}")).json()
        assert job["status"] == "FAILED"
        assert job["error"].startswith("Provider returned an error")
        assert (job["result"], job["creditCost"]) == (None, 0)


@pytest.mark.anyio
async def test_job_ids_are_checked_400_then_404() -> None:
    """An id that is not a UUID is 400; an unknown UUID is 404 {"error"}."""
    async with running_fake() as (client, _):
        bad = await client.get("/v2/jobs/not-a-uuid")
        assert bad.status_code == 400
        assert "error" in bad.json()
        unknown = await client.get(f"/v2/jobs/{uuid.uuid4()}")
        assert unknown.status_code == 404
        assert set(unknown.json()) == {"error"}


@pytest.mark.anyio
async def test_the_job_list_pages_newest_first_with_an_opaque_cursor() -> None:
    """GET /v2/jobs lists newest first, `limit` at a time; following nextCursor visits all once."""
    async with running_fake() as (client, fake):
        created = [await create_job(client, webhookUrl=None) for _ in range(5)]
        first = (await client.get("/v2/jobs", params={"limit": 2})).json()
        assert [j["id"] for j in first["jobs"]] == created[::-1][:2]
        assert first["hasMore"] is True
        assert first["nextCursor"]
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v2/jobs", params=params)).json()
            seen += [j["id"] for j in page["jobs"]]
            cursor = page["nextCursor"]
            if not page["hasMore"]:
                assert cursor is None
                break
        assert seen == created[::-1]
        default = (await client.get("/v2/jobs")).json()
        assert len(default["jobs"]) == 5
        assert default["hasMore"] is False
        await fake.settle()


@pytest.mark.anyio
async def test_the_job_list_filters_by_status_and_model() -> None:
    """`status` and `model` narrow the list; each job appears in the filter it matches."""
    async with running_fake() as (client, fake):
        ok = await create_job(client, model="flux-2-pro", webhookUrl=None)
        failed = await create_job(client, model="flux-2-pro", prompt="fail", webhookUrl=None)
        other = await create_job(client, model="midjourney", webhookUrl=None)
        await fake.settle()

        async def ids(**params: str) -> list[str]:
            page = (await client.get("/v2/jobs", params=params)).json()
            return [j["id"] for j in page["jobs"]]

        assert await ids(model="flux-2-pro") == [failed, ok]
        assert await ids(status="FAILED") == [failed]
        assert await ids(status="COMPLETED", model="midjourney") == [other]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"status": "DONE"}, {"cursor": "!!"}],
)
async def test_bad_list_parameters_are_400(params: dict[str, str]) -> None:
    """A limit outside 1..100, an unknown status or a foreign cursor is 400 with details."""
    async with running_fake() as (client, _):
        response = await client.get("/v2/jobs", params=params)
        assert response.status_code == 400
        assert response.json()["details"]
