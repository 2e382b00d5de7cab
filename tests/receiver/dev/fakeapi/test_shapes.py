"""On request, the fake sends music results as an array, results in shapes no Apiframe
document shows, and webhook bodies that name their event by ``type`` or not at all; the files
behind the URLs are the same."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from receiver.dev.fakeapi import Behaviour
from receiver.dev.fakeapi.bodies import result_for
from receiver.dev.fakeapi.chaos import updated_behaviour
from receiver.dev.fakeapi.shapes import UNSEEN_SHAPES, named_by, unseen_result
from tests.receiver.dev.fakeapi.conftest import FAST, Sink, create_job, running_fake

ALL_EVENTS = ["progress", "completed", "failed"]
TRACK = "https://cdn.test/a-0.mp3"
COVER = "https://cdn.test/a-0.jpeg"
SECOND = "https://cdn.test/a-1.mp3"


def with_(**changes: Any) -> Behaviour:
    """The fast behaviour with ``changes``."""
    return dataclasses.replace(FAST, **changes)


def urls_in(value: Any) -> Iterator[str]:
    """Every http(s) URL in ``value``, at any depth, in document order."""
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from urls_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from urls_in(item)


def shape_of(result: Any) -> tuple[str, ...]:
    """A result's outline: ``("list",)``, or an object's keys."""
    return ("list",) if isinstance(result, list) else tuple(sorted(result))


@pytest.mark.anyio
async def test_music_results_can_be_the_array_of_tracks_the_spec_describes() -> None:
    """music_results="array": the webhook's and the job API's result is the list of tracks
    itself, and every file in it downloads; image jobs keep their object."""
    sink = Sink()
    async with running_fake(with_(music_results="array"), sink=sink) as (client, fake):
        song = await create_job(client, "music/generate", model="suno")
        await create_job(client)
        await fake.settle()
        results = {r.body["jobId"]: r.body["result"] for r in sink.received}
        tracks = results.pop(song)
        assert isinstance(tracks, list)
        assert len(tracks) == 2
        assert all(set(track) == set(tracks[0]) and "audioUrl" in track for track in tracks)
        assert (await client.get(f"/v2/jobs/{song}")).json()["result"] == tracks
        assert [isinstance(r, dict) for r in results.values()] == [True]
        (job,) = [j for j in fake.jobs if j.id == song]
        urls = list(urls_in(tracks))
        assert [u.split("/cdn/", 1)[1] for u in urls] == list(job.files)
        for url in urls:
            assert (await client.get(url)).status_code == 200, url


def test_each_unseen_shape_names_the_same_files_in_the_same_order() -> None:
    """A bare array, {images: [{url}]}, {audioUrl, imageUrl}, nested unknown keys: each holds
    exactly the result's URLs, in order."""
    music = [TRACK, COVER, SECOND]
    image = ["https://cdn.test/i-1.png"]
    assert unseen_result("urls", music) == music
    assert unseen_result("url-objects", image) == {"images": [{"url": image[0]}]}
    assert unseen_result("url-objects", music) == {"media": [{"url": u} for u in music]}
    assert unseen_result("flat", image) == {"imageUrl": image[0]}
    assert unseen_result("flat", music) == {
        "audioUrl": TRACK,
        "imageUrl": COVER,
        "more": [{"audioUrl": SECOND}],
    }
    assert unseen_result("nested", image) == {"output": {"data": [{"file": {"href": image[0]}}]}}
    for shape in UNSEEN_SHAPES:
        assert list(urls_in(unseen_result(shape, music))) == music, shape


@pytest.mark.anyio
async def test_unseen_result_shapes_carry_every_file_the_fake_serves() -> None:
    """unseen_result_probability=1: no job's result has a documented shape, the dice use more
    than one shape, and every file of each job is named and downloads."""
    sink = Sink()
    async with running_fake(with_(unseen_result_probability=1.0), sink=sink, seed=3) as (
        client,
        fake,
    ):
        for route, model in (("images/generate", "midjourney"), ("music/generate", "suno")) * 3:
            await create_job(client, route, model=model)
        await fake.settle()
        results = {r.body["jobId"]: r.body["result"] for r in sink.received}
        for job in fake.jobs:
            assert results[job.id] != result_for(job.output, job.id, job.asset_base_url)
        assert len({shape_of(r) for r in results.values()}) > 1
        for job in fake.jobs:
            urls = list(urls_in(results[job.id]))
            assert [u.split("/cdn/", 1)[1] for u in urls] == list(job.files)
            for url in urls:
                assert (await client.get(url)).status_code == 200, url


@pytest.mark.anyio
@pytest.mark.parametrize("field", ["type", "status"])
async def test_webhook_bodies_can_name_their_event_by_type_or_only_by_status(field: str) -> None:
    """event_field="type": `type` stands where `event` was; "status": no event at all, only
    the job's status. The X-Webhook-Event header still names the event."""
    sink = Sink()
    async with running_fake(with_(event_field=field), sink=sink) as (client, fake):
        await create_job(client, webhookEvents=ALL_EVENTS)
        await create_job(client, prompt="please fail", webhookEvents=["failed"])
        await fake.settle()
    assert {r.event_header for r in sink.received} == {"completed", "failed", "progress"}
    for received in sink.received:
        body = received.body
        assert "event" not in body
        if field == "type":
            assert body["type"] == received.event_header
        else:
            assert "type" not in body
            status = {"progress": "PROCESSING", "completed": "COMPLETED", "failed": "FAILED"}
            assert body["status"] == status[str(received.event_header)]


@pytest.mark.anyio
async def test_mixed_event_fields_vary_by_webhook_and_repeat_with_the_seed() -> None:
    """event_field="mixed": a run's bodies use event, type and status-only; the same seed
    names each webhook the same way again."""

    async def names(seed: int) -> list[str]:
        sink = Sink()
        async with running_fake(with_(event_field="mixed"), sink=sink, seed=seed) as (c, fake):
            for _ in range(4):
                await create_job(c, webhookEvents=ALL_EVENTS)
            await fake.settle()
        return sorted(
            next((key for key in ("event", "type") if key in r.body), "status")
            for r in sink.received
        )

    first = await names(7)
    assert set(first) == {"event", "type", "status"}
    assert await names(7) == first


def test_a_body_renamed_keeps_every_other_field_in_place() -> None:
    """Renaming `event` to `type` keeps the key order; dropping it keeps the rest."""
    body = {"event": "completed", "jobId": "j", "status": "COMPLETED", "progress": 100}
    assert list(named_by(body, "type")) == ["type", "jobId", "status", "progress"]
    assert named_by(body, "status") == {"jobId": "j", "status": "COMPLETED", "progress": 100}
    assert named_by(body, "event") == body


def test_unknown_shape_knob_values_are_refused() -> None:
    """The control route's values are checked: an unknown music shape or event field is a
    ValueError, a known one is taken."""
    with pytest.raises(ValueError, match="music_results"):
        updated_behaviour(FAST, {"music_results": "list"})
    with pytest.raises(ValueError, match="event_field"):
        updated_behaviour(FAST, {"event_field": "kind"})
    with pytest.raises(ValueError, match="unseen_result_probability"):
        Behaviour(unseen_result_probability=2.0)
    changed = updated_behaviour(FAST, {"music_results": "array", "event_field": "mixed"})
    assert (changed.music_results, changed.event_field) == ("array", "mixed")
