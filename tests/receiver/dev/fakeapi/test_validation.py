"""Job-creating requests are validated as Apiframe's spec says: 400 ValidationError, never 500."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.apiframe.models import MODELS
from receiver.dev.fakeapi.bodies import OPERATIONS
from receiver.dev.fakeapi.catalogue import ROUTES
from tests.receiver.dev.fakeapi.conftest import running_fake
from tests.receiver.dev.fakeapi.valid import IMAGE, MINIMAL, valid_body


def test_the_routes_take_exactly_the_documented_models() -> None:
    """The per-route tables name the 106 model ids receiver.apiframe.models documents."""
    assert {model for models in ROUTES.values() for model in models} == MODELS


@pytest.mark.anyio
@pytest.mark.parametrize(
    "route", ["images/upscale", "images/edit", "images/background-remove", "videos/upscale"]
)
async def test_a_missing_model_is_400_not_a_made_up_default(route: str) -> None:
    """A route whose model is required refuses a body without one, naming `model`."""
    async with running_fake() as (client, fake):
        body = {k: v for k, v in MINIMAL[route].items() if k != "model"}
        response = await client.post(f"/v2/{route}", json=body)
        assert response.status_code == 400
        assert response.json()["details"]["model"] == ["Required"]
        assert len(fake.jobs) == 0


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("images/generate", {"model": "midjourney", "prompt": "p", "extra": 1}, "extra"),
    ("images/generate", {"model": "kling-2.6", "prompt": "p"}, "model"),
    ("images/generate", {"model": "midjourney", "prompt": ""}, "prompt"),
    (
        "images/generate",
        {"model": "midjourney", "prompt": "p", "webhookEvents": []},
        "webhookEvents",
    ),
    (
        "images/generate",
        {"model": "midjourney", "prompt": "p", "webhookEvents": "completed"},
        "webhookEvents",
    ),
    (
        "images/generate",
        {"model": "midjourney", "prompt": "p", "webhookEvents": [["x"]]},
        "webhookEvents.0",
    ),
    ("images/generate", {"model": "midjourney", "prompt": "p", "webhookUrl": 7}, "webhookUrl"),
    (
        "images/generate",
        {"model": "gpt-image-2", "prompt": "p", "gptImage2Params": {"number_of_images": 11}},
        "gptImage2Params.number_of_images",
    ),
    (
        "images/generate",
        {"model": "gpt-image-2", "prompt": "p", "gptImage2Params": {"number_of_images": 10**400}},
        "gptImage2Params.number_of_images",
    ),
    (
        "images/generate",
        {"model": "gpt-image-2", "prompt": "p", "gptImage2Params": {"number_of_images": True}},
        "gptImage2Params.number_of_images",
    ),
    (
        "images/generate",
        {"model": "gpt-image-2", "prompt": "p", "gptImage2Params": {"output_format": "gif"}},
        "gptImage2Params.output_format",
    ),
    (
        "images/generate",
        {"model": "gpt-image-2", "prompt": "p", "gptImage2Params": [1]},
        "gptImage2Params",
    ),
    ("videos/generate", {"model": "midjourney-video", "prompt": "p"}, "midjourneyVideoParams"),
    (
        "videos/upscale",
        {
            "model": "topaz-video-upscale",
            "topazVideoParams": {"video": IMAGE, "target_resolution": "8k", "target_fps": 30},
        },
        "topazVideoParams.target_resolution",
    ),
    (
        "music/generate",
        {"model": "mureka", "prompt": "p", "murekaParams": {"n": 4}},
        "murekaParams.n",
    ),
    ("images/midjourney/action", {"action": "variation", "index": 5, "parentJobId": "x"}, "index"),
    ("music/suno/action", {"action": "dance", "parentJobId": "x"}, "action"),
    ("images/generate", {"model": {}, "prompt": "p"}, "model"),
    ("images/upscale", {"model": ["x"]}, "model"),
    ("music/suno/action", {"action": {}, "parentJobId": "x"}, "action"),
    (
        "images/generate",
        {"model": "midjourney", "prompt": "p", "webhookEvents": [{}]},
        "webhookEvents.0",
    ),
    ("images/generate", [1, 2], ""),
    ("images/generate", None, ""),
    ("images/generate", 1e308, ""),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("route", "body", "path"), BAD_BODIES)
async def test_an_invalid_body_is_400_keyed_by_json_path(route: str, body: Any, path: str) -> None:
    """A body the spec refuses is 400 {error, details: {path: [messages]}}, and no job."""
    async with running_fake() as (client, fake):
        response = await client.post(f"/v2/{route}", json=body)
        assert response.status_code == 400, response.text
        answer = response.json()
        assert isinstance(answer["error"], str)
        assert path in answer["details"]
        assert all(isinstance(m, list) and m for m in answer["details"].values())
        assert len(fake.jobs) == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    "raw", [b"{nope", b"\xff\xfe", b"[" * 100_000, b"1" * 5000, b'{"model": 1e999}', b""]
)
async def test_a_body_that_is_not_usable_json_is_400_never_500(raw: bytes) -> None:
    """Garbage, deep nesting, huge numbers and an empty body are 400 ValidationError."""
    async with running_fake() as (client, _):
        response = await client.post("/v2/images/generate", content=raw)
        assert response.status_code == 400
        assert "details" in response.json()


@pytest.mark.anyio
@pytest.mark.parametrize("route", ["images/midjourney/action", "music/suno/action"])
async def test_an_action_on_an_unknown_parent_is_refused(route: str) -> None:
    """An action whose parentJobId is no job of the right model is 400 naming parentJobId."""
    async with running_fake() as (client, fake):
        body = await valid_body(client, route)
        unknown = {**body, "parentJobId": "9b2f7a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"}
        response = await client.post(f"/v2/{route}", json=unknown)
        assert response.status_code == 400
        assert "parentJobId" in response.json()["details"]
        assert len(fake.jobs) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("route", "body", "key", "count", "extension"),
    [
        (
            "images/generate",
            {
                "model": "gpt-image-2",
                "gptImage2Params": {"number_of_images": 3, "output_format": "png"},
            },
            "images",
            3,
            "png",
        ),
        (
            "images/generate",
            {"model": "kling-image", "klingImageParams": {"n": 2}},
            "images",
            2,
            "png",
        ),
        (
            "images/generate",
            {"model": "qwen-image", "qwenImageParams": {"num_images": 4, "output_format": "jpeg"}},
            "images",
            4,
            "jpeg",
        ),
        (
            "images/generate",
            {"model": "flux-2-pro", "fluxParams": {"output_format": "jpg"}},
            "images",
            1,
            "jpeg",
        ),
        ("music/generate", {"model": "mureka", "murekaParams": {"n": 3}}, "tracks", 3, "mp3"),
    ],
)
async def test_counts_and_formats_shape_the_result(
    route: str, body: dict[str, Any], key: str, count: int, extension: str
) -> None:
    """The params' count field sets how many files come back, output_format their extension."""
    async with running_fake() as (client, fake):
        response = await client.post(f"/v2/{route}", json={"prompt": "p", **body})
        assert response.status_code == 202, response.text
        await fake.settle()
        result = (await client.get(f"/v2/jobs/{response.json()['jobId']}")).json()["result"]
        files = result[key]
        assert len(files) == count
        url = files[0]["audioUrl"] if key == "tracks" else files[0]
        assert url.endswith("." + extension)
        assert (await client.get(url)).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_minimal_valid_body_is_accepted_on_every_route(operation: str) -> None:
    """The smallest body the spec allows on each route is 202."""
    async with running_fake() as (client, _):
        response = await client.post(f"/v2/{operation}", json=await valid_body(client, operation))
        assert response.status_code == 202, response.text
