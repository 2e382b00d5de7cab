"""Webhook bodies of every modality have the shapes of Apiframe's (the shared fixtures)."""

from __future__ import annotations

from typing import Any

import puremagic
import pytest

from receiver.dev.fakeapi import MODALITIES, sample_webhook
from tests.receiver.dev.fakeapi.conftest import Sink, create_job, fixture, running_fake

# (route, request fields, the fixture whose shape the completed body must have)
PARENT = "<a parent job>"
IMAGE = "https://example.com/a.png"
VIDEO = "https://example.com/a.mp4"
CASES = [
    ("images/generate", {"model": "midjourney"}, "completed-midjourney"),
    ("images/generate", {"model": "gpt-image-2"}, "completed-gpt-image-2"),
    (
        "images/upscale",
        {"model": "topaz-image-upscale", "prompt": None, "topazUpscaleParams": {"image": IMAGE}},
        "completed-topaz-upscale",
    ),
    (
        "images/edit",
        {
            "model": "flux-fill-pro",
            "prompt": None,
            "fluxFillParams": {"image": IMAGE, "prompt": "a hat", "mode": "inpaint"},
        },
        "completed-topaz-upscale",
    ),
    (
        "images/background-remove",
        {"model": "bria-bg-remove", "prompt": None, "briaBgRemoveParams": {"image": IMAGE}},
        "completed-topaz-upscale",
    ),
    (
        "images/midjourney/action",
        {"model": None, "prompt": None, "action": "upsample", "index": 1, "parentJobId": PARENT},
        "completed-topaz-upscale",
    ),
    (
        "images/midjourney/action",
        {"model": None, "prompt": None, "action": "variation", "index": 2, "parentJobId": PARENT},
        "completed-midjourney",
    ),
    ("videos/generate", {"model": "kling-2.6"}, "completed-kling-video"),
    (
        "videos/generate",
        {"model": "midjourney-video", "midjourneyVideoParams": {"start_image": IMAGE}},
        "completed-midjourney-video",
    ),
    (
        "videos/upscale",
        {
            "model": "topaz-video-upscale",
            "prompt": None,
            "topazVideoParams": {"video": VIDEO, "target_resolution": "4k", "target_fps": 30},
        },
        "completed-kling-video",
    ),
    (
        "videos/edit",
        {"model": "wan-2.7-videoedit", "wan27VideoeditParams": {"video": VIDEO}},
        "completed-kling-video",
    ),
    ("music/generate", {"model": "suno"}, "completed-suno"),
    (
        "music/suno/action",
        {"model": None, "prompt": None, "action": "stems", "parentJobId": PARENT},
        "completed-suno-stems",
    ),
    (
        "music/suno/action",
        {"model": None, "prompt": None, "action": "extend", "parentJobId": PARENT},
        "completed-suno",
    ),
]
MIME_OF_KEY = {"images": "image", "gridUrl": "image", "videoUrl": "video", "videos": "video"}


def assert_shaped_like(body: dict[str, Any], reference: dict[str, Any]) -> None:
    """``body`` has the reference's keys at every level and as many files."""
    assert set(body) == set(reference)
    if not isinstance(reference.get("result"), dict):
        return
    result, expected = body["result"], reference["result"]
    assert set(result) == set(expected)
    for key, value in expected.items():
        if isinstance(value, list):
            assert len(result[key]) == len(value), key
    for track, expected_track in zip(
        result.get("tracks", []), expected.get("tracks", []), strict=True
    ):
        assert set(track) == set(expected_track)


def result_urls(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(expected MIME family, URL) of every file in a result."""
    urls = []
    for key, value in result.items():
        if key == "tracks":
            for track in value:
                urls.append(("audio", track["audioUrl"]))
                if track["imageUrl"]:
                    urls.append(("image", track["imageUrl"]))
        else:
            for url in value if isinstance(value, list) else [value]:
                urls.append((MIME_OF_KEY[key], url))
    return urls


@pytest.mark.anyio
@pytest.mark.parametrize(("route", "fields", "reference"), CASES)
async def test_completed_bodies_have_the_fixtures_shape_and_their_files_download(
    route: str, fields: dict[str, Any], reference: str
) -> None:
    """A job on each route sends a `completed` body keyed like the fixture, and every URL in it
    downloads from the fake's CDN as a file of the promised kind."""
    sink = Sink()
    async with running_fake(sink=sink) as (client, fake):
        if fields.get("parentJobId") == PARENT:
            # An action needs a parent of its model (its webhooks go nowhere).
            model = "suno" if route.startswith("music") else "midjourney"
            parent = {"model": model, "prompt": "a parent", "webhookUrl": None}
            parent_route = "music/generate" if model == "suno" else "images/generate"
            fields = {**fields, "parentJobId": await create_job(client, parent_route, **parent)}
        job_id = await create_job(client, route, **fields)
        await fake.settle()
        [received] = sink.received
        body = received.body
        assert_shaped_like(body, fixture(reference))
        assert (body["jobId"], body["status"], body["progress"]) == (job_id, "COMPLETED", 100)
        for family, url in result_urls(body["result"]):
            assert url.startswith("http://fake.test/cdn/")
            response = await client.get(url)
            assert response.status_code == 200, url
            detected = puremagic.from_string(response.content, mime=True)
            assert detected == response.headers["content-type"]
            assert detected.startswith(family + "/"), url


def test_stems_are_named_vocals_and_instrumental() -> None:
    """Suno's stems action gives the fixture's two tracks, `vocals` and `instrumental`."""
    expected = fixture("completed-suno-stems")
    body = sample_webhook("completed", "stems", job_id=expected["jobId"])
    tracks, wanted = body["result"]["tracks"], expected["result"]["tracks"]
    assert [t["id"] for t in tracks] == ["vocals", "instrumental"]
    for track, want in zip(tracks, wanted, strict=True):
        assert {**track, "duration": 0} == {**want, "duration": 0}
        assert isinstance(track["duration"], float)


@pytest.mark.anyio
async def test_progress_and_failed_bodies_have_the_fixtures_keys() -> None:
    """The fake's progress and failed webhooks carry exactly the fixtures' keys."""
    sink = Sink()
    async with running_fake(sink=sink) as (client, fake):
        await create_job(client, webhookEvents=["progress", "failed"], prompt="fail me")
        await fake.settle()
    *progress, failed = [r.body for r in sink.received]
    for body in progress:
        assert set(body) == set(fixture("progress-midjourney-45"))
        assert body["status"] == "PROCESSING"
    assert set(failed) == set(fixture("failed-content-policy"))
    assert failed["status"] == "FAILED"


@pytest.mark.parametrize(
    ("modality", "reference"),
    [
        ("image", "completed-gpt-image-2"),
        ("upscale", "completed-topaz-upscale"),
        ("midjourney", "completed-midjourney"),
        ("video", "completed-kling-video"),
        ("midjourney-video", "completed-midjourney-video"),
        ("music", "completed-suno"),
        ("stems", "completed-suno-stems"),
    ],
)
def test_sample_webhooks_match_the_fixtures_including_urls(modality: str, reference: str) -> None:
    """send-test's bodies: the fixture's keys, model and, for the same job id, the same URLs."""
    expected = fixture(reference)
    body = sample_webhook("completed", modality, job_id=expected["jobId"])
    assert_shaped_like(body, expected)
    assert body["model"] == expected["model"]
    assert [u for _, u in result_urls(body["result"])] == [
        u for _, u in result_urls(expected["result"])
    ]


def test_sample_webhooks_cover_every_modality_and_event() -> None:
    """Every modality gives a progress, completed and failed body; the asset base is honoured."""
    for modality in MODALITIES:
        for event in ("progress", "completed", "failed"):
            body = sample_webhook(event, modality, asset_base_url="http://127.0.0.1:9/cdn")
            assert body["event"] == event
            if event == "completed":
                for _, url in result_urls(body["result"]):
                    assert url.startswith("http://127.0.0.1:9/cdn/")
    assert sample_webhook("progress", progress=7)["progress"] == 7
    with pytest.raises(ValueError, match="unknown modality"):
        sample_webhook("completed", "hologram")
    with pytest.raises(ValueError, match="unknown event"):
        sample_webhook("cancelled")
