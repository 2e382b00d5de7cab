"""A minimal valid body for every job-creating route of the fake (actions get a parent)."""

from __future__ import annotations

from typing import Any

import httpx

IMAGE = "https://example.com/a.png"
VIDEO = "https://example.com/a.mp4"

MINIMAL: dict[str, dict[str, Any]] = {
    "images/generate": {"model": "midjourney", "prompt": "a cat"},
    "images/upscale": {"model": "topaz-image-upscale", "topazUpscaleParams": {"image": IMAGE}},
    "images/edit": {
        "model": "flux-fill-pro",
        "fluxFillParams": {"image": IMAGE, "prompt": "a hat", "mode": "inpaint"},
    },
    "images/background-remove": {"model": "bria-bg-remove", "briaBgRemoveParams": {"image": IMAGE}},
    "images/midjourney/action": {"action": "variation", "index": 1},
    "videos/generate": {"model": "kling-2.6", "prompt": "a boat"},
    "videos/upscale": {
        "model": "topaz-video-upscale",
        "topazVideoParams": {"video": VIDEO, "target_resolution": "4k", "target_fps": 30},
    },
    "videos/edit": {
        "model": "wan-2.7-videoedit",
        "prompt": "make it rain",
        "wan27VideoeditParams": {"video": VIDEO},
    },
    "music/generate": {"model": "suno", "prompt": "lo-fi"},
    "music/suno/action": {"action": "stems"},
}
PARENTS = {
    "images/midjourney/action": ("images/generate", {"model": "midjourney", "prompt": "a cat"}),
    "music/suno/action": ("music/generate", {"model": "suno", "prompt": "lo-fi"}),
}


async def valid_body(client: httpx.AsyncClient, operation: str) -> dict[str, Any]:
    """A valid body for ``POST /v2/<operation>``; for an action, its parent job is created."""
    body = dict(MINIMAL[operation])
    if operation in PARENTS:
        route, parent = PARENTS[operation]
        response = await client.post(f"/v2/{route}", json=parent)
        assert response.status_code == 202, response.text
        body["parentJobId"] = response.json()["jobId"]
    return body
