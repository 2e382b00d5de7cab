"""What Apiframe sends: tolerant models of the webhook bodies and their dedupe identity.

The models accept what the reference says is out there (a string or an object ``result``,
unknown extra fields at every level) and never reject a body over an optional field of an odd
type: that field reads as ``None`` and the raw body, kept byte for byte, still has it. Only what
framehook cannot act without (a JSON object, a known ``event`` with a ``jobId``) is required.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from receiver.apiframe.loras import LoraNotice, lora_dedupe, recognise_lora
from receiver.errors import InvalidPayload

__all__ = [
    "CompletedEvent",
    "FailedEvent",
    "Kind",
    "ParsedBody",
    "ProgressEvent",
    "WebhookEvent",
    "parse_body",
]

MAX_JOB_ID_LENGTH = 200
MAX_EVENT_NAME_LENGTH = 64
"""Longer event names are stored cut to this (the raw body keeps them whole)."""


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _as_text(value: Any) -> Any:
    # An error given as an object still deserves to be shown; keep it readable as JSON text.
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


Lenient = WrapValidator(_or_none)
JobId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_JOB_ID_LENGTH)
]


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    job_id: JobId = Field(alias="jobId")
    status: Annotated[str | None, Lenient] = None
    model: Annotated[str | None, Lenient] = None
    progress: Annotated[float | None, Lenient] = None

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
    result: Any = None
    credit_cost: Annotated[float | None, Lenient] = Field(default=None, alias="creditCost")
    completed_at: Annotated[datetime | None, Lenient] = Field(default=None, alias="completedAt")


class FailedEvent(_Event):
    """``failed``: the job failed; Apiframe refunds its credits."""

    event: Literal["failed"]
    error: Annotated[str | None, WrapValidator(lambda v, h: h(_as_text(v)))] = None
    credit_cost: Annotated[float | None, Lenient] = Field(default=None, alias="creditCost")


WebhookEvent = Annotated[ProgressEvent | CompletedEvent | FailedEvent, Field(discriminator="event")]
_EVENT_ADAPTER: TypeAdapter[ProgressEvent | CompletedEvent | FailedEvent] = TypeAdapter(
    WebhookEvent
)


class Kind(StrEnum):
    """What a verified body turned out to be."""

    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"
    LORA = "lora"
    """A LoRA training event (``receiver.apiframe.loras``): its LoRA's state moves, not a job's."""
    UNRECOGNIZED = "unrecognized"
    """Valid JSON that is not a known event: stored and acknowledged, dispatched to no one."""
    MALFORMED = "malformed"
    """Not JSON, not an object, or a known event without what it needs: stored, answered 400."""


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """A verified body, classified, with the identity the dedupe ledger keys on.

    Attributes:
        kind: what the body is.
        event: the typed event for the three known kinds, else ``None``.
        event_name: the body's ``event`` as sent (any string), if there was one.
        job_id: the body's ``jobId`` when it is a usable string.
        dedupe_key: one key per meaning (see ``parse_body``); ``None`` when malformed.
        fingerprint: SHA-256 hex of canonical JSON (sorted keys), or of the raw bytes when the
            body is not JSON. For the three job events, of what the event says (its event, job
            and progress, result or error) rather than the whole body: the same event rebuilt
            from the job API by reconciliation, or resent with other incidental fields, is a
            duplicate, not a conflict.
        problem: for ``MALFORMED``, the 400 to answer with.
        lora: for ``LORA``, what the body says about its LoRA.
    """

    kind: Kind
    event: ProgressEvent | CompletedEvent | FailedEvent | None
    event_name: str | None
    job_id: str | None
    dedupe_key: str | None
    fingerprint: str
    problem: InvalidPayload | None = None
    lora: LoraNotice | None = None


def _malformed(raw: bytes, problem: InvalidPayload, name: str | None = None) -> ParsedBody:
    digest = hashlib.sha256(raw).hexdigest()
    return ParsedBody(Kind.MALFORMED, None, name, None, None, digest, problem)


def _dedupe_key(event: ProgressEvent | CompletedEvent | FailedEvent) -> str:
    # Terminal events happen once per job; progress once per job and percentage.
    if isinstance(event, ProgressEvent):
        value = event.progress_value
        return f"job:{event.job_id}:progress:{'none' if value is None else value}"
    return f"job:{event.job_id}:{event.event}"


def parse_body(raw: bytes, lora_id_fields: Sequence[str] = ()) -> ParsedBody:
    """Classify a verified body and compute its dedupe key.

    ``lora_id_fields`` names more keys that hold a LoRA id (``FRAMEHOOK_LORA_ID_FIELDS``).

    Dedupe keys: ``job:<id>:completed`` / ``job:<id>:failed`` for terminal events,
    ``job:<id>:progress:<n>`` for progress, ``lora:<id>:<STATUS>`` for a LoRA event,
    ``body:<fingerprint>`` for anything else.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _malformed(raw, InvalidPayload("not_json", "body is not valid JSON"))
    if not isinstance(data, dict):
        return _malformed(raw, InvalidPayload("not_an_object", "body must be a JSON object"))
    if _NUL_ESCAPE in raw:
        data = _without_nul(data)
    fingerprint = _fingerprint(data)
    name = data.get("event")
    name = name[:MAX_EVENT_NAME_LENGTH] if isinstance(name, str) else None
    raw_job = data.get("jobId")
    job_id = raw_job.strip() or None if isinstance(raw_job, str) else None
    if job_id is not None and len(job_id) > MAX_JOB_ID_LENGTH:
        job_id = None
    if job_id is None and (notice := recognise_lora(data, lora_id_fields)) is not None:
        key, meaning = lora_dedupe(notice, fingerprint)
        return ParsedBody(Kind.LORA, None, name, None, key, meaning, lora=notice)
    if name not in _JOB_EVENTS:
        key = f"body:{fingerprint}"
        return ParsedBody(Kind.UNRECOGNIZED, None, name, job_id, key, fingerprint)
    try:
        event = _EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
        problem = InvalidPayload("invalid_event", f"'{name}' event is missing or has bad: {fields}")
        return ParsedBody(Kind.MALFORMED, None, name, job_id, None, fingerprint, problem)
    kind = Kind(event.event)
    meaning = _fingerprint({key: data.get(key) for key in _MEANING[kind]})
    return ParsedBody(kind, event, name, event.job_id, _dedupe_key(event), meaning)


# JSON can carry NUL only escaped; PostgreSQL's text columns cannot hold it at all, so an
# insert of such a job id, model or error would fail and the delivery be answered 503 for ever.
# The raw body keeps it, byte for byte; the fields framehook reads get U+FFFD in its place.
_NUL_ESCAPE = b"\\u0000"


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\0", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


_JOB_EVENTS = frozenset({Kind.PROGRESS.value, Kind.COMPLETED.value, Kind.FAILED.value})
_MEANING = {
    Kind.PROGRESS: ("event", "jobId", "progress"),
    Kind.COMPLETED: ("event", "jobId", "result"),
    Kind.FAILED: ("event", "jobId", "error"),
}


def _fingerprint(data: Any) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
