"""Recognising LoRA training webhooks, whose payload Apiframe does not document.

``POST /v2/loras`` takes a ``webhookUrl`` that "receives a JSON POST when training reaches a
terminal state", and that is all the docs say. So framehook is liberal in what it calls a LoRA
event, and relies on the lookup (``GET /v2/loras/:id``, done by reconciliation after the
webhook is committed) for the authoritative state. A body with a usable ``jobId`` is always a
job event (a ``flux-lora`` generation's webhook may well name its LoRA: it is still a job).
Without one, a body is a LoRA event when it has:

1. a LoRA id field, ``loraId`` or ``lora_id``, at the top level or in a ``data`` object, or a
   ``lora`` object with an ``id`` (``{"event": "completed", "lora": {"id": ..., ...}}``);
2. or an ``id`` starting with ``lora_``;
3. or an ``id`` (at the top level or in a ``data`` object) and a LoRA marker: an ``event`` or
   a ``type``/``object``/``resource``/``kind`` that is ``lora`` or ``lora.*`` (``lora.completed``,
   ``lora_failed``), a LoRA-only status (``PENDING``, ``UPLOADING``, ``TRAINING``, ``READY``,
   ``ARCHIVED``), or a ``triggerWord``;
4. or an ``id`` and the ``event`` ``completed`` or ``failed``, with nothing only jobs carry
   (``result``, ``progress``, ``model``, ``creditCost``): a job's webhook names its job
   ``jobId``, so such a terminal event is most likely the LoRA webhook, while a job's body that
   named its id ``id`` stays malformed (400), visible, rather than passing for a LoRA;
5. or a LoRA id under one of ``extra_id_keys`` (``FRAMEHOOK_LORA_ID_FIELDS``), for a real
   payload none of the above foresaw.

Its status is the body's ``status`` (any case; ``COMPLETED``/``SUCCEEDED`` read as ``READY``,
``ERROR`` as ``FAILED``), else what its ``event`` says (``completed`` → ``READY``, ``failed`` →
``FAILED``), else ``isReady: true``, else unknown (the lookup will tell).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

__all__ = [
    "LORA_ENDED",
    "MAX_LORA_ID_LENGTH",
    "LoraNotice",
    "LoraStatus",
    "lora_dedupe",
    "lora_event_name",
    "recognise_lora",
]

MAX_LORA_ID_LENGTH = 200
_MAX_NAME = 200
_MAX_TRIGGER = 64


class LoraStatus(StrEnum):
    """Apiframe's LoRA statuses, plus ``UNKNOWN``: a webhook said something, not what."""

    UNKNOWN = "UNKNOWN"
    PENDING = "PENDING"
    UPLOADING = "UPLOADING"
    TRAINING = "TRAINING"
    READY = "READY"
    FAILED = "FAILED"
    ARCHIVED = "ARCHIVED"


LORA_ENDED = frozenset({LoraStatus.READY, LoraStatus.FAILED, LoraStatus.ARCHIVED})
"""Statuses after which a LoRA's training runs no more: it succeeded, failed, or the LoRA was
archived. ``handlers`` holds the same set as strings (it cannot import this module); a test
keeps the two equal."""


# What other spellings of a status (or an event name, upper-cased) most plausibly mean.
_ALIASES = {
    **{s.value: s for s in LoraStatus if s is not LoraStatus.UNKNOWN},
    "QUEUED": LoraStatus.PENDING,
    "CREATED": LoraStatus.PENDING,
    "PROCESSING": LoraStatus.TRAINING,
    "RUNNING": LoraStatus.TRAINING,
    "IN_PROGRESS": LoraStatus.TRAINING,
    "COMPLETED": LoraStatus.READY,
    "COMPLETE": LoraStatus.READY,
    "SUCCEEDED": LoraStatus.READY,
    "SUCCESS": LoraStatus.READY,
    "DONE": LoraStatus.READY,
    "FINISHED": LoraStatus.READY,
    "TRAINED": LoraStatus.READY,
    "ERROR": LoraStatus.FAILED,
    "ERRORED": LoraStatus.FAILED,
    "FAILURE": LoraStatus.FAILED,
    "DELETED": LoraStatus.ARCHIVED,
}
# Statuses no job has: with an ``id``, they mark a LoRA (``FAILED`` is shared, so it does not).
_LORA_ONLY = frozenset({"PENDING", "UPLOADING", "TRAINING", "READY", "ARCHIVED"})
_ID_KEYS = ("loraId", "lora_id")
# Fields of a job's webhook that a LoRA's has no reason to carry.
_JOB_ONLY = ("result", "progress", "model", "creditCost")
_TYPE_KEYS = ("type", "object", "resource", "kind")
_EVENT_PREFIXES = ("lora.", "lora_", "lora:", "lora-")


@dataclass(frozen=True, slots=True)
class LoraNotice:
    """What a LoRA webhook (or a lookup turned into one) says about a LoRA."""

    id: str
    status: LoraStatus
    name: str | None = None
    trigger_word: str | None = None
    error: str | None = None
    completed_at: datetime | None = None


def _usable_id(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if 0 < len(value) <= MAX_LORA_ID_LENGTH else None


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    try:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
    except TypeError:  # nested deeper than orjson writes: nothing readable to keep
        return None
    text = text.strip()
    if not text:
        return None
    return text[:limit] if limit is not None else text


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _locate(
    data: dict[str, Any], extra_id_keys: Sequence[str]
) -> tuple[str, dict[str, Any]] | None:
    """The LoRA id and the object holding the LoRA's fields, if the body is a LoRA event."""
    for key in (*_ID_KEYS, *extra_id_keys):
        if (found := _usable_id(data.get(key))) is not None:
            return found, data
    lora = data.get("lora")
    if isinstance(lora, dict):
        for key in ("id", *_ID_KEYS):
            if (found := _usable_id(lora.get(key))) is not None:
                return found, lora
    envelope = data.get("data")
    if isinstance(envelope, dict):
        for key in _ID_KEYS:
            if (found := _usable_id(envelope.get(key))) is not None:
                return found, envelope
        found = _usable_id(envelope.get("id"))
        if found is not None and _marked(envelope, found, data):
            return found, envelope
    found = _usable_id(data.get("id"))
    if found is None:
        return None
    # Not ``str()`` of any value: that recurses through a deeply nested one.
    event = data.get("event")
    terminal = isinstance(event, str) and event.strip().lower() in ("completed", "failed")
    if terminal and not any(key in data for key in _JOB_ONLY):
        return found, data
    return (found, data) if _marked(data, found, data) else None


def _is_lora_name(value: Any) -> bool:
    name = value.strip().lower() if isinstance(value, str) else ""
    return name == "lora" or name.startswith(_EVENT_PREFIXES)


def _marked(fields: dict[str, Any], lora_id: str, top: dict[str, Any]) -> bool:
    """Whether a body whose LoRA id is a plain ``id`` says it is about a LoRA."""
    if lora_id.lower().startswith("lora_"):
        return True
    for source in (fields, top):
        if any(_is_lora_name(source.get(k)) for k in ("event", *_TYPE_KEYS)):
            return True
    status = fields.get("status")
    if isinstance(status, str) and status.strip().upper() in _LORA_ONLY:
        return True
    return "triggerWord" in fields or "trigger_word" in fields


def _status(fields: dict[str, Any], top: dict[str, Any]) -> LoraStatus:
    for source in (fields, top):
        status = source.get("status")
        if isinstance(status, str) and (known := _ALIASES.get(status.strip().upper())):
            return known
    # Else what the event (or a ``type`` such as ``lora.completed``) says happened.
    for source in (top, fields):
        for key in ("event", "type"):
            name = source.get(key)
            name = name.strip().lower() if isinstance(name, str) else ""
            for prefix in _EVENT_PREFIXES:
                name = name.removeprefix(prefix)
            if name and (known := _ALIASES.get(name.upper())):
                return known
    if fields.get("isReady") is True:
        return LoraStatus.READY
    return LoraStatus.UNKNOWN


def recognise_lora(data: dict[str, Any], extra_id_keys: Sequence[str] = ()) -> LoraNotice | None:
    """The LoRA notice in a verified JSON body without a ``jobId``, or ``None`` if the body
    does not look like a LoRA event (see the module's docstring for the shapes).

    Args:
        data: the decoded body.
        extra_id_keys: more top-level keys that hold a LoRA id (``FRAMEHOOK_LORA_ID_FIELDS``).
    """
    located = _locate(data, extra_id_keys)
    if located is None:
        return None
    lora_id, fields = located

    def pick(*keys: str) -> Any:
        for source in (fields, data):
            for key in keys:
                if source.get(key) is not None:
                    return source[key]
        return None

    status = _status(fields, data)
    return LoraNotice(
        id=lora_id,
        status=status,
        name=_text(pick("name"), _MAX_NAME),
        trigger_word=_text(pick("triggerWord", "trigger_word"), _MAX_TRIGGER),
        error=_text(pick("error", "errorMessage")) if status is LoraStatus.FAILED else None,
        completed_at=_time(pick("completedAt", "completed_at")),
    )


def lora_dedupe(notice: LoraNotice, body_fingerprint: str) -> tuple[str, str]:
    """The ledger key and fingerprint of a LoRA notice.

    One key per (LoRA, status): a webhook and the lookup that confirms it, or a retried
    webhook, are duplicates whatever else they carry. A notice of unknown status keys on its
    body's content, as an unrecognised body would.
    """
    if notice.status is LoraStatus.UNKNOWN:
        return f"lora:{notice.id}:body:{body_fingerprint}", body_fingerprint
    meaning = orjson.dumps({"lora": notice.id, "status": notice.status.value})
    return f"lora:{notice.id}:{notice.status.value}", hashlib.sha256(meaning).hexdigest()


def lora_event_name(status: str) -> str | None:
    """The handler event for a LoRA reaching ``status`` (``lora.ready``), ``None`` if unknown."""
    if status == LoraStatus.UNKNOWN or status not in LoraStatus.__members__.values():
        return None
    return f"lora.{status.lower()}"
