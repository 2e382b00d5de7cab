"""What Apiframe sends: tolerant models of the webhook bodies and their dedupe identity.

The models accept what the reference says is out there (a string or an object ``result``,
unknown extra fields at every level) and never reject a body over an optional field of an odd
value: that field reads as ``None`` (``receiver.apiframe.fields`` says what is odd), the
delivery is flagged, and the raw body, kept byte for byte, still has it. Only what framehook
cannot act without (a JSON object, a job event with a ``jobId``) is required.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from handlers import is_test_body
from receiver.apiframe.duplicates import duplicate_key
from receiver.apiframe.fields import (
    MAX_EVENT_NAME_LENGTH,
    MAX_JOB_ID_LENGTH,
    CreditCost,
    ErrorText,
    JobId,
    ModelName,
    Moment,
    OptionalText,
    Progress,
    Result,
)
from receiver.apiframe.loras import LoraNotice, lora_dedupe, recognise_lora
from receiver.apiframe.values import fingerprint, without_nul
from receiver.errors import InvalidPayload

__all__ = [
    "MAX_EVENT_NAME_LENGTH",
    "CancelledEvent",
    "CompletedEvent",
    "Event",
    "FailedEvent",
    "Kind",
    "ParsedBody",
    "ProgressEvent",
    "WebhookEvent",
    "parse_body",
]


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    job_id: JobId = Field(alias="jobId")
    status: OptionalText = None
    model: ModelName = None
    progress: Progress = None

    @property
    def progress_value(self) -> int | None:
        """Progress as a whole percentage in 0..100 (rounded down: 99.9 is not done)."""
        if self.progress is None:
            return None
        return int(min(100.0, max(0.0, self.progress)))


class ProgressEvent(_Event):
    """``progress``: the job's percentage changed."""

    event: Literal["progress"]


class CompletedEvent(_Event):
    """``completed``: the job finished; ``result`` is a URL string or a modality object."""

    event: Literal["completed"]
    result: Result = None
    credit_cost: CreditCost = Field(default=None, alias="creditCost")
    completed_at: Moment = Field(default=None, alias="completedAt")


class FailedEvent(_Event):
    """``failed``: the job failed; Apiframe refunds its credits."""

    event: Literal["failed"]
    error: ErrorText = None
    credit_cost: CreditCost = Field(default=None, alias="creditCost")


class CancelledEvent(_Event):
    """``cancelled``: the job was cancelled; it produced nothing and costs nothing.

    Apiframe documents no such webhook, but its job resource has the ``CANCELLED`` status: a
    body that says so (``"status": "CANCELLED"``, no ``event``) or a poll that finds it is this.
    """

    event: Literal["cancelled"]


Event = ProgressEvent | CompletedEvent | FailedEvent | CancelledEvent
"""Any job event."""
WebhookEvent = Annotated[Event, Field(discriminator="event")]
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(WebhookEvent)


class Kind(StrEnum):
    """What a verified body turned out to be."""

    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LORA = "lora"
    """A LoRA training event (``receiver.apiframe.loras``): its LoRA's state moves, not a job's."""
    UNRECOGNIZED = "unrecognized"
    """Valid JSON that is not a known event: stored and acknowledged, dispatched to no one."""
    MALFORMED = "malformed"
    """Not JSON, not an object, an object naming a key twice, or a known event without what it
    needs: stored, answered 400."""


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """A verified body, classified, with the identity the dedupe ledger keys on.

    Attributes:
        kind: what the body is.
        event: the typed event for the four job events, else ``None``.
        event_name: the event: the body's ``event`` as sent (any string), else the job event
            read from its ``type`` or ``status`` (flag ``event_inferred``), else ``None``.
        job_id: the body's ``jobId`` when it is a usable string.
        dedupe_key: one key per meaning (see ``parse_body``); ``None`` when malformed.
        fingerprint: SHA-256 hex of canonical JSON (sorted keys), or of the raw bytes when the
            body is not JSON. For the job events, of what the event says (its event, job and
            progress, result or error) rather than the whole body: the same event rebuilt
            from the job API by reconciliation, or resent with other incidental fields, is a
            duplicate, not a conflict.
        problem: for ``MALFORMED``, the 400 to answer with.
        lora: for ``LORA``, what the body says about its LoRA.
        flags: what was inferred or set aside (``event_inferred``; ``<field>_invalid`` for an
            odd value of a field the event reads, made null), stored on the delivery.
        test: a job event marked as a framehook test (``"framehookTest": true``,
            ``handlers.TEST_MARKER``; ``framehook send-test`` sends them): see
            ``receiver.intake.job_state`` for what it does to the job.
    """

    kind: Kind
    event: Event | None
    event_name: str | None
    job_id: str | None
    dedupe_key: str | None
    fingerprint: str
    problem: InvalidPayload | None = None
    lora: LoraNotice | None = None
    flags: tuple[str, ...] = ()
    test: bool = False


def _malformed(raw: bytes, problem: InvalidPayload, name: str | None = None) -> ParsedBody:
    digest = hashlib.sha256(raw).hexdigest()
    return ParsedBody(Kind.MALFORMED, None, name, None, None, digest, problem)


def _dedupe_key(event: Event, test: bool) -> str:
    # Terminal events happen once per job; progress once per job and percentage. Test events
    # have keys of their own: one sent with a real job's id never makes Apiframe's own event
    # for that job a duplicate or a conflict.
    prefix = "test:" if test else ""
    if isinstance(event, ProgressEvent):
        value = event.progress_value
        return f"{prefix}job:{event.job_id}:progress:{'none' if value is None else value}"
    return f"{prefix}job:{event.job_id}:{event.event}"


def parse_body(raw: bytes, lora_id_fields: Sequence[str] = ()) -> ParsedBody:
    """Classify a verified body and compute its dedupe key.

    ``lora_id_fields`` names more keys that hold a LoRA id (``FRAMEHOOK_LORA_ID_FIELDS``).

    The event is the body's ``event``; a body with a ``jobId`` and no ``event`` (the official
    SDK's docs show ``{jobId, type, ...}``, its tests ``{jobId, status}``) has it read from its
    ``type``, else from its ``status``, and is flagged ``event_inferred``.

    A body that names a key twice in one object, at any depth (two ``status``), is malformed
    (``duplicate_key``): its meaning depends on which reader looks.

    Dedupe keys: ``job:<id>:<event>`` for terminal events (completed, failed, cancelled),
    ``job:<id>:progress:<n>`` for progress, ``lora:<id>:<STATUS>`` for a LoRA event,
    ``body:<fingerprint>`` for anything else. A job event marked as a framehook test
    (``"framehookTest": true``) has its key prefixed ``test:``.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # Numbers past a double's range and lone surrogates too: they could not be handed to a
        # handler (the worker decodes bodies as this does), so they are not taken for events.
        return _malformed(raw, InvalidPayload("not_json", f"body is not valid JSON: {exc}"))
    if not isinstance(data, dict):
        return _malformed(raw, InvalidPayload("not_an_object", "body must be a JSON object"))
    if (duplicate := duplicate_key(raw, data)) is not None:
        # orjson kept the last value; the stored body keeps both, and another reader the first.
        detail = f"body names the key {duplicate}: JSON readers disagree on which value counts"
        return _malformed(raw, InvalidPayload("duplicate_key", detail))
    if _NUL_ESCAPE in raw:
        data = without_nul(data)
    raw_job = data.get("jobId")
    job_id = raw_job.strip() or None if isinstance(raw_job, str) else None
    if job_id is not None and len(job_id) > MAX_JOB_ID_LENGTH:
        job_id = None
    if job_id is None and (notice := recognise_lora(data, lora_id_fields)) is not None:
        key, meaning = lora_dedupe(notice, fingerprint(data))
        return ParsedBody(Kind.LORA, None, _sent_event(data), None, key, meaning, lora=notice)
    name = _sent_event(data)
    inferred = name is None and job_id is not None and (name := _inferred_event(data)) is not None
    if name not in _JOB_EVENTS:
        whole = fingerprint(data)
        return ParsedBody(Kind.UNRECOGNIZED, None, name, job_id, f"body:{whole}", whole)
    if inferred:
        data = {**data, "event": name}
    try:
        event = _EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
        problem = InvalidPayload("invalid_event", f"'{name}' event is missing or has bad: {fields}")
        return ParsedBody(Kind.MALFORMED, None, name, job_id, None, fingerprint(data), problem)
    # A job event is known by what it says, not by its whole body: no fingerprint of the whole
    # on this path, which is every webhook Apiframe sends.
    kind = Kind(event.event)
    meaning = fingerprint({key: data.get(key) for key in _MEANING[kind]})
    flags = (*(("event_inferred",) if inferred else ()), *_set_aside(data, event))
    test = is_test_body(data)
    key = _dedupe_key(event, test)
    return ParsedBody(kind, event, name, event.job_id, key, meaning, flags=flags, test=test)


def _sent_event(data: dict[str, Any]) -> str | None:
    name = data.get("event")
    return name[:MAX_EVENT_NAME_LENGTH] if isinstance(name, str) else None


def _inferred_event(data: dict[str, Any]) -> str | None:
    """The job event a body without ``event`` stands for: its ``type``, else its ``status``."""
    kind = data.get("type")
    if isinstance(kind, str):
        # A ``type`` that names no job event may be a future event: not read from the status.
        return _TYPES.get(kind.strip().lower())
    status = data.get("status")
    return _STATUS_EVENTS.get(status.strip().upper()) if isinstance(status, str) else None


def _set_aside(data: dict[str, Any], event: Event) -> list[str]:
    """``<field>_invalid`` for each field the event reads that the body gave a value the event
    could not use (so it reads as null)."""
    read = type(event).model_fields
    return [
        f"{name}_invalid"
        for alias, name in _CHECKED
        if name in read and data.get(alias) is not None and getattr(event, name) is None
    ]


# JSON can carry NUL only escaped; the raw body keeps it, byte for byte, and the fields
# framehook reads get U+FFFD in its place (``receiver.apiframe.values.without_nul``).
_NUL_ESCAPE = b"\\u0000"

_JOB_EVENTS = frozenset(
    {Kind.PROGRESS.value, Kind.COMPLETED.value, Kind.FAILED.value, Kind.CANCELLED.value}
)
_TYPES = {**{name: name for name in _JOB_EVENTS}, **{f"job.{name}": name for name in _JOB_EVENTS}}
_STATUS_EVENTS = {
    "QUEUED": Kind.PROGRESS.value,
    "PROCESSING": Kind.PROGRESS.value,
    "COMPLETED": Kind.COMPLETED.value,
    "FAILED": Kind.FAILED.value,
    "CANCELLED": Kind.CANCELLED.value,
}
_MEANING = {
    Kind.PROGRESS: ("event", "jobId", "progress"),
    Kind.COMPLETED: ("event", "jobId", "result"),
    Kind.FAILED: ("event", "jobId", "error"),
    Kind.CANCELLED: ("event", "jobId"),
}
# The fields an event reads, by wire name and attribute: one made null is flagged.
_CHECKED = (
    ("status", "status"),
    ("model", "model"),
    ("progress", "progress"),
    ("result", "result"),
    ("error", "error"),
    ("creditCost", "credit_cost"),
    ("completedAt", "completed_at"),
)
