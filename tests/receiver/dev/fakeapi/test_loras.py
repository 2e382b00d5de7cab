"""The fake's LoRA trainings: Apiframe's routes and rules, the lifecycle, and the terminal webhook
in the shape framehook infers."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import httpx
import pytest

from receiver.apiframe.signatures import Derivation
from receiver.dev.fakeapi import FakeApiframe
from tests.receiver.dev.fakeapi.conftest import FAST, HOOK_URL, Sink, running_fake
from tests.receiver.dev.fakeapi.openapi import conforms, spec

__all__ = ["spec"]

QUICK = dataclasses.replace(FAST, lora_step_seconds=0.005)
PERSON = {"name": "Alex - studio", "gender": "male", "ethnicity": "White"}


def photos(count: int = 15) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("images", (f"{n}.jpg", b"\xff\xd8\xff" + bytes([n]), "image/jpeg")) for n in range(count)
    ]


async def train(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    """POST /v2/loras as Apiframe wants it: multipart, photos and form fields."""
    count = fields.pop("count", 15)
    data = {**PERSON, "webhookUrl": HOOK_URL, **fields}
    return await client.post("/v2/loras", files=photos(count), data=data)


async def settled(fake: FakeApiframe) -> None:
    async with asyncio.timeout(10):
        await fake.settle()


@pytest.mark.anyio
async def test_a_training_runs_to_ready_and_sends_one_signed_webhook() -> None:
    """202 with the id and PENDING; the LoRA ends READY with a trigger word; one completed
    webhook in the inferred shape, signed like a job's, with X-Webhook-Event."""
    sink = Sink()
    async with running_fake(QUICK, sink=sink) as (client, fake):
        created = await train(client)
        assert created.status_code == 202, created.text
        answer = created.json()
        await settled(fake)
        looked_up = await client.get(f"/v2/loras/{answer['id']}")
        assert looked_up.status_code == 200
        lora = looked_up.json()
    assert answer["status"] == "PENDING"
    assert answer["imageCount"] == 15
    uuid.UUID(answer["id"])
    assert lora["status"] == "READY"
    assert lora["isReady"] is True
    assert len(lora["triggerWord"]) == 5
    assert lora["completedAt"] is not None
    (webhook,) = sink.received
    assert webhook.event_header == "completed"
    assert webhook.match.derivation is Derivation.DIGEST
    assert webhook.body == {
        "event": "completed",
        "loraId": answer["id"],
        "status": "READY",
        "name": "Alex - studio",
        "triggerWord": lora["triggerWord"],
        "error": None,
        "createdAt": lora["createdAt"],
        "completedAt": lora["completedAt"],
    }


@pytest.mark.anyio
async def test_a_failing_training_sends_failed_and_honours_webhook_events() -> None:
    """A name with the fail marker fails (error set, no trigger word) and sends ``failed``; a
    training subscribed to ``failed`` only sends nothing when it succeeds."""
    sink = Sink()
    async with running_fake(QUICK, sink=sink) as (client, fake):
        failing = (await train(client, name="please fail")).json()["id"]
        await train(client, webhookEvents="failed")
        await settled(fake)
        failed = (await client.get(f"/v2/loras/{failing}")).json()
    assert (failed["status"], failed["triggerWord"]) == ("FAILED", None)
    assert failed["error"]
    (webhook,) = sink.received
    assert (webhook.event_header, webhook.body["status"]) == ("failed", "FAILED")
    assert webhook.body["error"] == failed["error"]


@pytest.mark.anyio
async def test_the_request_is_checked_like_apiframe_does() -> None:
    """Too few photos, a missing name or gender, a bad webhookEvents: 400 with details keyed by
    field, each a list of messages (the spec's ValidationError)."""
    async with running_fake(QUICK) as (client, _fake):
        answers = [
            await train(client, count=14),
            await train(client, count=31),
            await client.post("/v2/loras", files=photos(), data={"gender": "male"}),
            await train(client, gender="robot"),
            await train(client, webhookEvents="completed,progress"),
            await client.post("/v2/loras", content=b"not json"),
        ]
    assert [a.status_code for a in answers] == [400] * 6
    fields = [set(a.json()["details"]) for a in answers[:5]]
    assert all(
        isinstance(m, str) for a in answers[:5] for ms in a.json()["details"].values() for m in ms
    )
    assert fields == [{"images"}, {"images"}, {"name", "ethnicity"}, {"gender"}, {"webhookEvents"}]


@pytest.mark.anyio
async def test_json_requests_listing_and_archiving() -> None:
    """A JSON body works for tests; ids are UUIDs; the list is newest first and hides archived
    LoRAs unless asked; DELETE archives with 204, twice; bad ids are 400, unknown 404."""
    async with running_fake(QUICK) as (client, fake):
        body = {"name": "Style", "subjectKind": "style", "images": ["x"] * 20}
        first = (await client.post("/v2/loras", json=body)).json()["id"]
        second = (await client.post("/v2/loras", json=body)).json()["id"]
        await settled(fake)
        deleted = await client.delete(f"/v2/loras/{first}")
        again = await client.delete(f"/v2/loras/{first}")
        archived = (await client.get(f"/v2/loras/{first}")).json()["status"]
        listed = (await client.get("/v2/loras")).json()
        every = (await client.get("/v2/loras?includeArchived=true&limit=1")).json()
        bad = (await client.get("/v2/loras/not-an-id")).status_code
        unknown = (await client.get(f"/v2/loras/{uuid.uuid4()}")).status_code
    uuid.UUID(first)
    assert (deleted.status_code, deleted.content, again.status_code) == (204, b"", 204)
    assert archived == "ARCHIVED"
    assert [lo["id"] for lo in listed["items"]] == [second]
    assert listed["nextCursor"] is None
    assert [lo["id"] for lo in every["items"]] == [second]
    assert every["nextCursor"] == second
    assert (bad, unknown) == (400, 404)


@pytest.mark.anyio
async def test_prefixed_ids_remain_available() -> None:
    """``lora_ids='prefixed'`` hands out ``lora_<hex>`` ids, which the routes accept."""
    behaviour = dataclasses.replace(QUICK, lora_ids="prefixed")
    async with running_fake(behaviour) as (client, _fake):
        lora_id = (await train(client)).json()["id"]
        found = await client.get(f"/v2/loras/{lora_id}")
    assert lora_id.startswith("lora_")
    assert found.status_code == 200


@pytest.mark.anyio
async def test_flux_lora_generations_need_a_ready_lora_and_are_ordinary_image_jobs() -> None:
    """flux-lora with an unknown LoRA is refused; with a READY one it is a job whose result
    has num_outputs images, costing 2 credits each."""
    sink = Sink()
    async with running_fake(QUICK, sink=sink) as (client, fake):
        refused = await client.post(
            "/v2/images/generate",
            json={"model": "flux-lora", "prompt": "p", "fluxLoraParams": {"loraId": "x"}},
        )
        lora_id = (await train(client)).json()["id"]
        await settled(fake)
        created = await client.post(
            "/v2/images/generate",
            json={
                "model": "flux-lora",
                "prompt": "a portrait",
                "fluxLoraParams": {"loraId": lora_id, "num_outputs": 2},
                "webhookUrl": HOOK_URL,
            },
        )
        assert created.status_code == 202, created.text
        await settled(fake)
        job = (await client.get(f"/v2/jobs/{created.json()['jobId']}")).json()
    assert refused.status_code == 400
    assert (job["status"], job["model"], job["creditCost"]) == ("COMPLETED", "flux-lora", 4)
    assert len(job["result"]["images"]) == 2
    completed = [r.body for r in sink.received if r.body.get("jobId") == job["id"]]
    assert completed[0]["event"] == "completed"


@pytest.mark.anyio
async def test_the_lora_routes_answer_in_the_specs_schemas(spec: dict[str, Any]) -> None:
    """Creation, the resource (with the caller's userId and teamId), the list, a bad id and
    a delete each answer what Apiframe's spec says."""
    async with running_fake(QUICK) as (client, fake):
        created = await train(client)
        lora_id = created.json()["id"]
        await settled(fake)
        one = await client.get(f"/v2/loras/{lora_id}")
        listed = await client.get("/v2/loras")
        bad = await client.get("/v2/loras/not-an-id")
        me = (await client.get("/v2/me")).json()
        deleted = await client.delete(f"/v2/loras/{lora_id}")
    conforms(spec, "/v2/loras", "POST", created)
    conforms(spec, "/v2/loras/{id}", "GET", one)
    conforms(spec, "/v2/loras", "GET", listed)
    conforms(spec, "/v2/loras/{id}", "GET", bad)
    conforms(spec, "/v2/loras/{id}", "DELETE", deleted)
    assert (one.json()["userId"], one.json()["teamId"]) == (me["user"]["id"], me["team"]["id"])
