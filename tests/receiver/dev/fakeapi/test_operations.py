"""The fake's account, catalogue, upload and asset operations, each answered in the schema
Apiframe's OpenAPI spec gives it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from receiver.apiframe.models import MODELS
from tests.receiver.dev.fakeapi.conftest import create_job, running_fake
from tests.receiver.dev.fakeapi.openapi import conforms, spec
from tests.support.webhooks import API_KEY

__all__ = ["spec"]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64


@pytest.mark.anyio
async def test_me_names_the_user_team_and_key(spec: dict[str, Any]) -> None:
    """GET /v2/me answers Me: a stable user and team, the key's prefix, and credits that
    drop by what the jobs cost."""
    async with running_fake() as (client, fake):
        before = await client.get("/v2/me")
        await create_job(client)
        await fake.settle()
        after = await client.get("/v2/me")
    conforms(spec, "/v2/me", "GET", before)
    conforms(spec, "/v2/me", "GET", after)
    me = after.json()
    assert me["apiKey"]["prefix"] == API_KEY[:8]
    assert me["user"]["id"] == before.json()["user"]["id"]
    spent = before.json()["team"]["credits"] - me["team"]["credits"]
    assert spent > 0


@pytest.mark.anyio
async def test_the_model_catalogue_is_public_and_filters_by_modality(
    spec: dict[str, Any],
) -> None:
    """GET /v2/models needs no key, lists every documented model once, filters by modality and
    refuses an unknown or empty one with a ValidationError."""
    async with running_fake() as (client, _fake):
        del client.headers["X-API-Key"]
        every = await client.get("/v2/models")
        videos = await client.get("/v2/models", params={"modality": "video"})
        images = await client.get("/v2/models", params={"modality": "image"})
        music = await client.get("/v2/models", params={"modality": "music"})
        wrong = await client.get("/v2/models", params={"modality": "3d"})
        empty = await client.get("/v2/models", params={"modality": ""})
    for response in (every, videos, wrong, empty):
        conforms(spec, "/v2/models", "GET", response)
    ids = [entry["id"] for entry in every.json()["models"]]
    assert sorted(ids) == sorted(MODELS)
    assert {e["modality"] for e in videos.json()["models"]} == {"video"}
    counts = [len(r.json()["models"]) for r in (images, videos, music)]
    assert all(counts)
    assert sum(counts) == len(ids)
    for refused in (wrong, empty):
        assert refused.status_code == 400
        assert list(refused.json()["details"]) == ["modality"]


@pytest.mark.anyio
async def test_an_upload_is_sniffed_and_served_from_the_cdn(spec: dict[str, Any]) -> None:
    """POST /v2/uploads answers 201 Upload with the sniffed type (the declared one ignored)
    and a URL the fake's CDN serves byte for byte."""
    async with running_fake() as (client, _fake):
        image = await client.post("/v2/uploads", files={"file": ("a.bin", PNG, "text/plain")})
        video = await client.post("/v2/uploads", files={"file": ("v.mp4", MP4, "video/mp4")})
        served = await client.get(image.json()["url"])
    conforms(spec, "/v2/uploads", "POST", image)
    conforms(spec, "/v2/uploads", "POST", video)
    upload = image.json()
    assert (image.status_code, upload["kind"], upload["contentType"]) == (201, "image", "image/png")
    assert upload["byteSize"] == len(PNG)
    assert (video.json()["kind"], video.json()["contentType"]) == ("video", "video/mp4")
    assert (served.status_code, served.content) == (200, PNG)
    assert served.headers["content-type"] == "image/png"


@pytest.mark.anyio
async def test_a_bad_upload_is_a_validation_error(spec: dict[str, Any]) -> None:
    """No file, an unknown file type or an unknown CDN name: 400 ValidationError on
    ``file``, 404 on the CDN."""
    async with running_fake() as (client, _fake):
        none = await client.post("/v2/uploads", data={"other": "x"}, files={"x": ("x", b"1")})
        text = await client.post("/v2/uploads", files={"file": ("a.txt", b"hello", "image/png")})
        missing = await client.get(f"/cdn/uploads/{uuid.uuid4()}.png")
    for response in (none, text):
        conforms(spec, "/v2/uploads", "POST", response)
        assert response.status_code == 400
        assert list(response.json()["details"]) == ["file"]
    assert missing.status_code == 404


@pytest.mark.anyio
async def test_an_asset_is_registered_then_read_back(spec: dict[str, Any]) -> None:
    """POST /v2/assets/create answers 201 AssetCreated; GET /v2/assets/{id} gives the object;
    an unknown id is 404 and a bad body a ValidationError keyed by field."""
    url = "https://cdn.example/clip.mp4"
    async with running_fake() as (client, _fake):
        created = await client.post("/v2/assets/create", json={"url": url, "type": "video"})
        found = await client.get(f"/v2/assets/{created.json()['assetId']}")
        unknown = await client.get("/v2/assets/asset-nothing")
        bad = await client.post("/v2/assets/create", json={"url": "ftp:x", "type": "3d"})
    conforms(spec, "/v2/assets/create", "POST", created)
    conforms(spec, "/v2/assets/{assetId}", "GET", found)
    conforms(spec, "/v2/assets/{assetId}", "GET", unknown)
    conforms(spec, "/v2/assets/create", "POST", bad)
    assert created.status_code == 201
    assert (found.json()["url"], found.json()["type"]) == (url, "video")
    assert unknown.status_code == 404
    assert (bad.status_code, set(bad.json()["details"])) == (400, {"url", "type"})
