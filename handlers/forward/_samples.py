"""Sample events, for trying an app before real jobs reach it: ``framehook send-test
--forward`` sends one, ``framehook doctor`` pings with :func:`ping`.

A sample has the shape of the real thing, from framehook's realistic Apiframe bodies, and says
``"test": true`` in its ``data``: its job is made up, and so are its files' links
(``assets.framehook.invalid`` answers nothing), so an app should act on none of it.
"""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers._assets import Asset
from handlers._event import LoraEvent
from handlers._links import AssetLink
from handlers.download._result import find_assets, public_url
from handlers.forward._body import LinkedAsset, encode, event_type, job_data, lora_data

__all__ = ["PING_TYPE", "SAMPLES", "ping", "sample"]

SAMPLES = {
    "progress": "progress-midjourney-45",
    "completed": "completed-midjourney",
    "failed": "failed-content-policy",
    "lora.ready": "lora-ready",
    "lora.failed": "lora-failed",
}
"""The shipped Apiframe body each sample event is made from."""

PING_TYPE = "webhook.test"
"""The ``type`` of ``framehook doctor``'s ping: an app should answer 2xx to a type it does not
know (Standard Webhooks' advice), once the signature verifies."""

_LINKS = "https://assets.framehook.invalid"
_LINK_DAYS = 7


def sample(event: str, *, now: datetime | None = None) -> tuple[str, bytes]:
    """The ``type`` and body of a sample forwarded event (``completed``, ``lora.ready``, ...).

    Raises:
        ValueError: no sample for ``event`` (the message lists them).
    """
    from handlers.testing import event_from_payload, sample_payload

    name = SAMPLES.get(event.removeprefix("job."))
    if name is None:
        raise ValueError(f"no sample event {event!r}: say {', '.join(SAMPLES)}")
    moment = now or datetime.now(UTC)
    # Built as a real event (not a test one) so its files count as stored; ``test`` comes after.
    job_event = event_from_payload(sample_payload(name), received_at=moment)
    data: dict[str, Any]
    if isinstance(job_event, LoraEvent):
        data = lora_data(job_event)
    else:
        data = job_data(job_event, _made_up_files(job_event.job_id, job_event.job.result, moment))
    data["test"] = True
    return event_type(job_event.event), encode(event_type(job_event.event), moment, data)


def ping(*, now: datetime | None = None) -> bytes:
    """The body of ``framehook doctor``'s signed ping (``type`` :data:`PING_TYPE`)."""
    data = {"test": True, "message": "framehook doctor: checking that this app verifies events"}
    return encode(PING_TYPE, now or datetime.now(UTC), data)


def _made_up_files(job_id: str, result: Any, moment: datetime) -> list[LinkedAsset]:
    """The result's files as if they were stored, with links that lead nowhere."""
    files = []
    for ref in find_assets(result)[0]:
        extension = ref.url_extension or "png"
        kind = ref.kind if ref.kind != "file" else "image"
        key = f"{job_id}/{kind}-{ref.n}.{extension}"
        asset = Asset(
            job_id=job_id,
            position=ref.position,
            kind=kind,
            source_url=public_url(ref.url),
            key=key,
            storage_uri=f"file:///srv/framehook/assets/{key}",
            size=1_048_576,
            content_type=mimetypes.types_map.get(f".{extension}", "application/octet-stream"),
            sha256=hashlib.sha256(key.encode()).hexdigest(),
            stored_at=moment,
        )
        link = AssetLink(url=f"{_LINKS}/{key}", expires_at=moment + timedelta(days=_LINK_DAYS))
        files.append(LinkedAsset(asset, link))
    return files
