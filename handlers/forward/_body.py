"""The forwarded event: ``{"type", "timestamp", "data"}``, as Standard Webhooks lays it out.

``data`` is the job as framehook's admin API shows it (Apiframe's field names: ``id``,
``status``, ``model``, ``progress``, ``creditCost``, ``result`` as Apiframe sent it, ``error``,
...), its files as stored, each with a link the app can download it from, and the files the
result names that are not stored (``missing``), so an app never waits for a file that will not
come. A LoRA event's ``data`` is the LoRA (``id``, ``status``, ``name``, ``triggerWord``, ...).

The body is the same on every attempt but for what changes by itself: the links (a fresh
expiry each time) and the job, if a later event moved it meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from handlers._assets import Asset
from handlers._event import JobEvent, LoraEvent
from handlers._links import AssetLink
from handlers.download._result import find_assets, public_url

__all__ = ["JOB_TYPES", "LinkedAsset", "encode", "event_type", "job_data", "lora_data"]

JOB_TYPES = {"progress": "job.progress", "completed": "job.completed", "failed": "job.failed"}
"""A job event's ``type``; a LoRA event's is its name (``lora.ready``)."""

NOT_STORED = "not stored: framehook has no copy of it (the job's download task says why)"


@dataclass(frozen=True, slots=True)
class LinkedAsset:
    """A stored file and its download link (``None``: this framehook cannot make one)."""

    asset: Asset
    link: AssetLink | None


def event_type(event: str) -> str:
    """The ``type`` of the forwarded event for framehook's event name ``event``."""
    return JOB_TYPES.get(event, event)


def encode(type_: str, timestamp: datetime, data: Mapping[str, Any]) -> bytes:
    """The body's bytes: compact JSON, times in UTC with ``Z`` (a naive one is UTC)."""
    envelope = {"type": type_, "timestamp": timestamp, "data": data}
    return orjson.dumps(envelope, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def job_data(event: JobEvent, stored: Sequence[LinkedAsset]) -> dict[str, Any]:
    """The job of ``event`` as the admin API shows it, with its stored files and, for a
    completed job, the ones it names that are not stored."""
    job = event.job
    result = event.payload.get("result")
    if result is None:  # a body without one: the job's, as a poll or an earlier event left it
        result = job.result
    positions = {linked.asset.position for linked in stored}
    missing = _missing(event, result, positions)
    return {
        "id": job.id,
        "status": job.status,
        "model": job.model,
        "progress": job.progress,
        "creditCost": job.credit_cost,
        "result": result,
        "error": job.error,
        "completedAt": job.completed_at,
        "test": event.test,
        "files": {"expected": _expected(event, result), "stored": len(stored)},
        "assets": [_asset(linked) for linked in stored],
        "missing": missing,
    }


def lora_data(event: LoraEvent) -> dict[str, Any]:
    """The LoRA of ``event`` as Apiframe's LoRA resource names its fields."""
    lora = event.lora
    return {
        "id": lora.id,
        "status": lora.status,
        "name": lora.name,
        "triggerWord": lora.trigger_word,
        "error": lora.error,
        "createdAt": lora.created_at,
        "completedAt": lora.completed_at,
        "test": event.test,
    }


def _expected(event: JobEvent, result: Any) -> int | None:
    """Files the result names, as the admin API counts them: ``None`` while the job runs, 0
    for a job that failed and for a test event (its made-up files are never captured)."""
    if event.event == "progress":
        return None
    if event.event != "completed" or event.test:
        return 0
    return len(find_assets(result)[0])


def _missing(event: JobEvent, result: Any, positions: set[int]) -> list[dict[str, Any]]:
    if event.event != "completed" or event.test:
        return []
    refs, _ = find_assets(result)
    return [
        {
            "position": ref.position,
            "kind": ref.kind,
            # Without its query string: a signed CDN URL carries credentials there (the full
            # URL is in ``result``).
            "sourceUrl": public_url(ref.url),
            "reason": NOT_STORED,
        }
        for ref in refs
        if ref.position not in positions
    ]


def _asset(linked: LinkedAsset) -> dict[str, Any]:
    asset, link = linked.asset, linked.link
    return {
        "position": asset.position,
        "kind": asset.kind,
        "contentType": asset.content_type,
        "size": asset.size,
        "sha256": asset.sha256,
        "storageUri": asset.storage_uri,
        "sourceUrl": asset.source_url,
        "url": None if link is None else link.url,
        "urlExpiresAt": None if link is None else link.expires_at,
    }
