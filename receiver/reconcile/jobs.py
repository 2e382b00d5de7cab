"""What a job lookup says, as the webhook it stands for, and how long a job may stay silent.

The pure half of reconciliation (``receiver.reconcile.reconciler``): a job's modality and its
wait, the webhook body a job resource in some state would have produced, and whether a listed job is
news to framehook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from receiver.apiframe.values import dumps

__all__ = ["Waits", "created_at", "event_body", "is_news", "modality_of"]

_VIDEO_PREFIXES = ("kling", "wan-", "veo", "sora", "seedance", "runway", "hailuo", "luma", "pika")
_MUSIC_PREFIXES = ("suno", "udio", "producer", "mureka", "lyria", "elevenlabs-music")


def modality_of(model: str | None) -> str:
    """``image``, ``video`` or ``music`` for a model name (unknown models count as images)."""
    name = (model or "").lower()
    if name == "midjourney-video" or name.startswith(_VIDEO_PREFIXES) or "video" in name:
        return "video"
    if name.startswith(_MUSIC_PREFIXES):
        return "music"
    return "image"


@dataclass(frozen=True, slots=True)
class Waits:
    """How long after its last news an unfinished job is looked up, per modality; ``lora``
    for a LoRA training (Apiframe: typically 15 to 25 minutes)."""

    image: timedelta = timedelta(minutes=3)
    video: timedelta = timedelta(minutes=10)
    music: timedelta = timedelta(minutes=5)
    lora: timedelta = timedelta(minutes=25)

    def of(self, model: str | None) -> timedelta:
        """The wait for a job of ``model``."""
        return getattr(self, modality_of(model))  # type: ignore[no-any-return]


def event_body(job: dict[str, Any]) -> bytes | None:
    """The webhook Apiframe would have sent for a job resource in this state, or ``None``
    when the state has no webhook (``QUEUED``, unknown).

    A ``CANCELLED`` job becomes a ``cancelled`` event (Apiframe documents no webhook for it,
    but the job has ended: without it, it would be looked up again after every wait)."""
    job_id, status = job.get("id"), job.get("status")
    if not isinstance(job_id, str):
        return None
    body: dict[str, Any] = {"jobId": job_id, "status": status, "model": job.get("model")}
    if status == "COMPLETED":
        body |= {
            "event": "completed",
            "progress": 100,
            "result": job.get("result"),
            "creditCost": job.get("creditCost"),
            "completedAt": job.get("completedAt"),
            "expired": bool(job.get("expired")),
        }
    elif status == "FAILED":
        body |= {"event": "failed", "error": job.get("error")}
    elif status == "CANCELLED":
        body |= {"event": "cancelled"}
    elif status == "PROCESSING" and isinstance(job.get("progress"), int | float):
        body |= {"event": "progress", "progress": job["progress"]}
    else:
        return None
    # Whatever the API answered, even a result nested deeper than orjson writes, is written:
    # the intake sets such a value aside, where a failure here would fail every sweep.
    return dumps(body)


def created_at(job: dict[str, Any]) -> datetime | None:
    """A job resource's ``createdAt``, if it is a usable time."""
    value = job.get("createdAt")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


_ENDED = ("COMPLETED", "FAILED", "CANCELLED")


def is_news(job: dict[str, Any], known: tuple[str, int] | None) -> bool:
    """Whether a listed job tells framehook something (``known``: its status and progress)."""
    status = job.get("status")
    if known is None:
        return status in (*_ENDED, "PROCESSING")
    ours, progress = known
    if ours in _ENDED:
        return False
    if status in _ENDED:
        return True
    theirs = job.get("progress")
    return isinstance(theirs, int | float) and theirs > progress
