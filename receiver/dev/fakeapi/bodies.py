"""Webhook bodies and results shaped exactly like Apiframe's, for every modality.

What a job produces depends on the route that created it, its model and, for actions, the
action: Midjourney gives four images and a grid (one image for an upsample), other image models
and the edit routes images, video models a ``videoUrl`` (``midjourney-video`` four ``videos``),
music ``tracks`` (Suno stems: ``vocals`` and ``instrumental``). File URLs follow the real CDN's
layout under any base URL: ``<base>/images/<job>-1.png``, ``<base>/videos/<job>.mp4``,
``<base>/audio/<job>-0.mp3``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from handlers import TEST_MARKER
from receiver.dev.fakeapi.catalogue import ROUTES, ModelRule

__all__ = [
    "CDN_BASE_URL",
    "MODALITIES",
    "OPERATIONS",
    "Output",
    "completed_body",
    "credit_cost",
    "failed_body",
    "file_paths",
    "iso_time",
    "output_for",
    "progress_body",
    "result_for",
    "sample_webhook",
]

CDN_BASE_URL = "https://cdn2.apiframe.ai"
"""Where Apiframe's result URLs point today."""

OPERATIONS = (
    "images/generate",
    "images/upscale",
    "images/edit",
    "images/background-remove",
    "images/midjourney/action",
    "videos/generate",
    "videos/upscale",
    "videos/edit",
    "music/generate",
    "music/suno/action",
)
"""The job-creating routes, under ``/v2/``."""

MODALITIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "image": ("images/generate", "gpt-image-2", {}),
    "upscale": (
        "images/upscale",
        "topaz-image-upscale",
        {"topazUpscaleParams": {"image": "https://example.com/photo.png"}},
    ),
    "midjourney": ("images/generate", "midjourney", {}),
    "video": ("videos/generate", "kling-2.6", {}),
    "midjourney-video": (
        "videos/generate",
        "midjourney-video",
        {"midjourneyVideoParams": {"start_image": "https://example.com/still.png"}},
    ),
    "music": ("music/generate", "suno", {}),
    "stems": ("music/suno/action", "suno", {"action": "stems"}),
}
"""``send-test`` modalities: the operation, default model and request extras of each."""

_CREDITS = {
    "midjourney": 16,
    "midjourney-video": 40,
    "gpt-image-2": 9,
    "topaz-image-upscale": 8,
    "kling-2.6": 70,
    "suno": 11,
}
_TITLES = ("Neon Skyline", "Paper Moons", "Salt and Static", "Slow Orbit", "Glass Harbour")
_TAGS = ("synthwave, electronic", "lo-fi, chill", "indie folk", "ambient, drone", "city pop")

Shape = Literal["images", "videoUrl", "videos", "tracks"]


@dataclass(frozen=True, slots=True)
class Output:
    """What a job produces: the ``result`` key, how many files, their type, the extras."""

    shape: Shape
    count: int = 1
    extension: str = "png"
    grid: bool = False
    stems: bool = False


def _image_extension(model: str, params: Mapping[str, Any]) -> str:
    wanted = params.get("output_format")
    if isinstance(wanted, str):
        # The CDN names JPEGs .jpeg, whichever spelling the request used.
        return "jpeg" if wanted == "jpg" else wanted
    if model.startswith("gpt-image"):
        return "webp"
    if model.startswith(("flux", "seedream")):
        return "jpeg"
    return "png"


def _params(operation: str, model: str, request: Mapping[str, Any]) -> tuple[ModelRule, Any]:
    rule = ROUTES.get(operation, {}).get(model) or ModelRule("")
    params = request.get(rule.params)
    return rule, params if isinstance(params, dict) else {}


def _count(rule: ModelRule, params: Mapping[str, Any]) -> int:
    wanted = params.get(rule.count) if rule.count else None
    # The request was validated: a count there is in the model's range.
    return wanted if isinstance(wanted, int) and not isinstance(wanted, bool) else rule.default


def output_for(operation: str, model: str, request: Mapping[str, Any]) -> Output:
    """What a job created on ``operation`` (``images/generate``, ...) with ``model`` produces.

    Args:
        operation: one of :data:`OPERATIONS`.
        model: the job's model (an action's: its parent's).
        request: the creating request's body: ``action``, and the model's params object
            (``number_of_images``, ``n``, ``num_images``, ``num_outputs``, ``output_format``).
    """
    action = str(request.get("action", "")).lower()
    rule, params = _params(operation, model, request)
    if operation == "images/midjourney/action":
        if action.startswith(("upsample", "upscale")):
            return Output("images")
        return Output("images", count=4, grid=True)
    if operation == "images/generate" and model == "midjourney":
        return Output("images", count=4, grid=True)
    if operation.startswith("images/"):
        return Output(
            "images", count=_count(rule, params), extension=_image_extension(model, params)
        )
    if operation == "videos/generate" and model == "midjourney-video":
        return Output("videos", count=4, extension="mp4")
    if operation.startswith("videos/"):
        return Output("videoUrl", extension="mp4")
    if operation == "music/suno/action" and action.startswith("stem"):
        return Output("tracks", count=2, extension="mp3", stems=True)
    # No wav builder in the CDN: elevenlabs' wav formats come back as mp3 too.
    return Output("tracks", count=_count(rule, params) if rule.params else 2, extension="mp3")


def _track_names(output: Output) -> list[str]:
    return ["vocals", "instrumental"] if output.stems else [str(i) for i in range(output.count)]


def file_paths(output: Output, job_id: str) -> list[str]:
    """Every file of the job's result, as CDN paths (``images/<job>-1.png``), in order."""
    ext = output.extension
    if output.shape == "images":
        paths = [f"images/{job_id}-{n}.{ext}" for n in range(1, output.count + 1)]
        return [*paths, f"images/{job_id}-grid.png"] if output.grid else paths
    if output.shape == "videoUrl":
        return [f"videos/{job_id}.{ext}"]
    if output.shape == "videos":
        return [f"videos/{job_id}-{n}.{ext}" for n in range(1, output.count + 1)]
    paths = []
    for index, name in enumerate(_track_names(output)):
        paths.append(f"audio/{job_id}-{name}.{ext}")
        if not output.stems and index == 0:
            paths.append(f"audio/{job_id}-{name}.jpeg")
    return paths


def _number(job_id: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{job_id}:{salt}".encode()).digest()[:4], "big")


def _track(job_id: str, name: str, output: Output, base: str, cover: bool) -> dict[str, Any]:
    url = f"{base}/audio/{job_id}-{name}"
    if output.stems:
        track_id, title, tags = name, name.capitalize(), None
    else:
        track_id = str(uuid.UUID(int=_number(job_id, name) << 64 | 1, version=4))
        title = _TITLES[_number(job_id, f"title{name}") % len(_TITLES)]
        tags = _TAGS[_number(job_id, f"tags{name}") % len(_TAGS)]
    return {
        "id": track_id,
        "audioUrl": f"{url}.{output.extension}",
        "imageUrl": f"{url}.jpeg" if cover else None,
        "title": title,
        "tags": tags,
        "duration": 120 + (_number(job_id, "duration") % 900) / 10,
    }


def result_for(output: Output, job_id: str, asset_base_url: str) -> dict[str, Any]:
    """The ``result`` object of a finished job, its URLs under ``asset_base_url``."""
    base = asset_base_url.rstrip("/")
    urls = [f"{base}/{path}" for path in file_paths(output, job_id)]
    if output.shape == "images":
        if output.grid:
            return {"images": urls[:-1], "gridUrl": urls[-1]}
        return {"images": urls}
    if output.shape == "videoUrl":
        return {"videoUrl": urls[0]}
    if output.shape == "videos":
        return {"videos": urls}
    names = _track_names(output)
    # Like Suno's answers: the first track has cover art, stems have none.
    return {
        "tracks": [
            _track(job_id, name, output, base, cover=not output.stems and index == 0)
            for index, name in enumerate(names)
        ]
    }


def credit_cost(model: str, output: Output) -> int:
    """What a job of ``model`` costs (made-up but plausible numbers; ``flux-lora``: Apiframe's
    2 credits an image)."""
    if model == "flux-lora":
        return 2 * output.count
    return _CREDITS.get(model, 4 + 2 * output.count)


def iso_time(moment: datetime) -> str:
    """A time as Apiframe writes it (JavaScript's ``toISOString``): ``2026-11-20T10:00:32.000Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def progress_body(job_id: str, model: str, progress: int) -> dict[str, Any]:
    """A ``progress`` webhook body."""
    return {
        "event": "progress",
        "jobId": job_id,
        "status": "PROCESSING",
        "progress": progress,
        "model": model,
    }


def completed_body(
    job_id: str, model: str, result: Any, cost: int, completed_at: datetime
) -> dict[str, Any]:
    """A ``completed`` webhook body."""
    return {
        "event": "completed",
        "jobId": job_id,
        "status": "COMPLETED",
        "progress": 100,
        "result": result,
        "model": model,
        "creditCost": cost,
        "completedAt": iso_time(completed_at),
    }


def failed_body(job_id: str, model: str, error: str) -> dict[str, Any]:
    """A ``failed`` webhook body."""
    return {"event": "failed", "jobId": job_id, "status": "FAILED", "error": error, "model": model}


def sample_webhook(
    event: str,
    modality: str = "midjourney",
    *,
    model: str | None = None,
    job_id: str | None = None,
    progress: int | None = None,
    asset_base_url: str = CDN_BASE_URL,
    error: str = "Provider returned an error: content policy violation",
    test: bool = False,
) -> dict[str, Any]:
    """A realistic webhook body for ``event`` of a job of ``modality`` (what ``send-test`` sends).

    Args:
        event: ``progress``, ``completed`` or ``failed``.
        modality: one of :data:`MODALITIES`.
        model: the job's model, instead of the modality's usual one.
        job_id: the job's id; a new UUID when omitted.
        progress: the percentage of a ``progress`` event (45 when omitted).
        asset_base_url: where the result's URLs point.
        error: the message of a ``failed`` event.
        test: mark the body as a framehook test event (``"framehookTest": true``,
            ``handlers.TEST_MARKER``), as ``send-test`` does: the receiver then records a test
            job, charges no credits and captures no files.

    Raises:
        ValueError: an unknown event or modality (the message lists the known ones).
    """
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
    operation, usual_model, request = MODALITIES[modality]
    model = model or usual_model
    job_id = job_id or str(uuid.uuid4())
    output = output_for(operation, model, request)
    if event == "progress":
        body = progress_body(job_id, model, 45 if progress is None else progress)
    elif event == "completed":
        result = result_for(output, job_id, asset_base_url)
        body = completed_body(job_id, model, result, credit_cost(model, output), datetime.now(UTC))
    elif event == "failed":
        body = failed_body(job_id, model, error)
    else:
        raise ValueError(f"unknown event {event!r}; known: progress, completed, failed")
    return {**body, TEST_MARKER: True} if test else body
