"""Rows as the admin API shows them: JSON-ready dicts named like Apiframe's job resource.

Timestamps stay ``datetime`` (orjson writes them as RFC 3339; the CLI computes ages from
them); everything else is plain JSON.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Row

__all__ = ["asset_view", "attempt_view", "delivery_view", "job_view", "task_view"]


def job_view(row: Row[Any]) -> dict[str, Any]:
    """A job summary: ``id``, ``status``, ``progress``, ``model``, ``result``, ``error``,
    ``creditCost``, ``createdAt``, ``completedAt``, ``updatedAt``."""
    return {
        "id": row.id,
        "status": row.status,
        "progress": row.progress,
        "model": row.model,
        "result": row.result,
        "error": row.error,
        "creditCost": row.credit_cost,
        "createdAt": row.created_at,
        "completedAt": row.completed_at,
        "updatedAt": row.updated_at,
    }


def delivery_view(row: Row[Any], with_body: bool = False) -> dict[str, Any]:
    """A delivery; with ``body`` (and ``bodyFormat``) when asked and still kept."""
    view: dict[str, Any] = {
        "id": row.id,
        "jobId": row.job_id,
        "loraId": row.lora_id,
        "event": row.event,
        "headerEvent": row.header_event,
        "eventMismatch": bool(row.event_mismatch),
        "outcome": row.outcome,
        "source": row.source,
        "requestId": row.request_id,
        "keyIndex": row.key_index,
        "derivation": row.key_derivation,
        "receivedAt": row.received_at,
    }
    if with_body:
        view.update(_body(row.body))
    return view


def _body(raw: bytes | None) -> dict[str, Any]:
    # Pruned bodies are gone (NULL); a body that is not JSON (a "malformed" one) is shown as
    # text, undecodable bytes replaced.
    if raw is None:
        return {"body": None, "bodyFormat": None}
    raw = bytes(raw)
    try:
        return {"body": orjson.loads(raw), "bodyFormat": "json"}
    except orjson.JSONDecodeError:
        return {"body": raw.decode("utf-8", "replace"), "bodyFormat": "text"}


def task_view(row: Row[Any]) -> dict[str, Any]:
    """A task: ``id``, ``jobId``, ``deliveryId``, ``handler``, ``event``, ``status``,
    ``attempts`` (how many so far), ``lastError``, ``runAt``, ``finishedAt``..."""
    return {
        "id": row.id,
        "jobId": row.job_id,
        "deliveryId": row.delivery_id,
        "handler": row.handler,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "lastError": row.last_error,
        "runAt": row.run_at,
        "finishedAt": row.finished_at,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }


def attempt_view(row: Row[Any]) -> dict[str, Any]:
    """One run of a task, from ``task_attempts``."""
    return {
        "attempt": row.attempt,
        "worker": row.worker,
        "startedAt": row.started_at,
        "finishedAt": row.finished_at,
        "outcome": row.outcome,
        "error": row.error,
    }


def asset_view(row: Row[Any]) -> dict[str, Any]:
    """A captured file: ``kind``, ``position``, ``sourceUrl``, ``storageUri``, ``size``,
    ``contentType``, ``sha256`` (plus the handler that stored it, its key and when)."""
    return {
        "id": row.id,
        "handler": row.handler,
        "kind": row.kind,
        "position": row.position,
        "sourceUrl": row.source_url,
        "storageUri": row.storage_uri,
        "key": row.key,
        "size": row.size,
        "contentType": row.content_type,
        "sha256": row.sha256,
        "storedAt": row.stored_at,
    }
