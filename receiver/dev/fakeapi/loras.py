"""The fake's LoRA trainings: ``POST /v2/loras``, the LoRA resource, its life and its webhook.

Like Apiframe's docs: a training is created from 15 to 30 photos (multipart) and a name, goes
``PENDING → UPLOADING → TRAINING → READY`` (or ``FAILED``; ``ARCHIVED`` once deleted), and
``GET /v2/loras/:id`` shows it. The fake takes ``lora_step_seconds`` per status instead of 15 to
25 minutes, and also accepts a JSON body (``images`` as a list of anything) so tests need not
build multipart requests.

The terminal webhook's payload is **not documented** by Apiframe. The fake sends the shape
framehook infers, the job webhook's convention applied to the LoRA resource (see the README,
"LoRA training")::

    {"event": "completed", "loraId": "lora_…", "status": "READY", "name": "…",
     "triggerWord": "TOKPN", "error": null, "createdAt": "…", "completedAt": "…"}

with ``X-Webhook-Event: completed`` (``failed`` and ``"status": "FAILED"`` with an ``error``).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from receiver.apiframe.loras import LORA_ENDED
from receiver.dev.fakeapi.bodies import iso_time
from receiver.dev.fakeapi.chaos import Behaviour, Dice

__all__ = [
    "FakeLora",
    "LoraStore",
    "json_images",
    "lora_request",
    "lora_webhook_body",
    "parse_multipart",
    "train",
    "valid_lora_id",
]

MIN_IMAGES, MAX_IMAGES = 15, 30
LORA_EVENTS = ("completed", "failed")
FAILURE = "Training failed: not enough usable face images"
_SUBJECTS = ("person", "style", "object")
_GENDERS = ("female", "male", "non-binary")


@dataclass(eq=False)
class FakeLora:
    """One LoRA training, as the fake keeps it; ``resource()`` is what the API shows."""

    id: str
    number: int
    name: str
    subject_kind: str
    image_count: int
    steps: int
    lora_rank: int
    webhook_url: str | None
    webhook_events: frozenset[str]
    user_id: str = ""
    team_id: str = ""
    gender: str | None = None
    ethnicity: str | None = None
    age: str | None = None
    status: str = "PENDING"
    trigger_word: str | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def finished(self) -> bool:
        """Training ended (``READY`` or ``FAILED``), or the LoRA was archived."""
        return self.status in LORA_ENDED

    def resource(self) -> dict[str, Any]:
        """The LoRA as ``GET /v2/loras/:id`` (and the list) answer it."""
        return {
            "id": self.id,
            "userId": self.user_id,
            "teamId": self.team_id,
            "name": self.name,
            "subjectKind": self.subject_kind,
            "gender": self.gender,
            "ethnicity": self.ethnicity,
            "age": self.age,
            "status": self.status,
            "imageCount": self.image_count,
            "steps": self.steps,
            "loraRank": self.lora_rank,
            "isReady": self.status == "READY",
            "hasWeights": self.trigger_word is not None,
            "triggerWord": self.trigger_word if self.status == "READY" else None,
            "error": self.error,
            "createdAt": iso_time(self.created_at),
            "startedAt": None if self.started_at is None else iso_time(self.started_at),
            "completedAt": None if self.completed_at is None else iso_time(self.completed_at),
        }


def lora_webhook_body(lora: FakeLora) -> dict[str, Any]:
    """The terminal webhook the fake sends (the inferred shape: see the module docstring)."""
    return {
        "event": "failed" if lora.status == "FAILED" else "completed",
        "loraId": lora.id,
        "status": lora.status,
        "name": lora.name,
        "triggerWord": lora.trigger_word,
        "error": lora.error,
        "createdAt": iso_time(lora.created_at),
        "completedAt": None if lora.completed_at is None else iso_time(lora.completed_at),
    }


def valid_lora_id(lora_id: str) -> bool:
    """Whether ``lora_id`` has a LoRA id's format (``lora_`` + hex, or a UUID)."""
    if lora_id.startswith("lora_"):
        rest = lora_id.removeprefix("lora_")
        return 0 < len(rest) <= 64 and all(c in "0123456789abcdef" for c in rest)
    try:
        uuid.UUID(lora_id)
    except ValueError:
        return False
    return True


class LoraStore:
    """Every LoRA the fake has accepted, by id and newest first."""

    __slots__ = ("_by_id", "_ordered")

    def __init__(self) -> None:
        self._by_id: dict[str, FakeLora] = {}
        self._ordered: list[FakeLora] = []

    def __len__(self) -> int:
        return len(self._ordered)

    def __iter__(self) -> Iterator[FakeLora]:
        return iter(list(self._ordered))

    def new_id(self, style: str) -> str:
        """A fresh id: a UUID (the spec's format) or, with ``style="prefixed"``, ``lora_<hex>``."""
        return str(uuid.uuid4()) if style == "uuid" else f"lora_{uuid.uuid4().hex}"

    def add(self, lora: FakeLora) -> None:
        """Keep ``lora`` (numbered from 1 by the caller)."""
        self._by_id[lora.id] = lora
        self._ordered.append(lora)

    def get(self, lora_id: str) -> FakeLora | None:
        """The LoRA with ``lora_id``, if any."""
        return self._by_id.get(lora_id)

    def page(
        self, *, limit: int = 24, cursor: str | None = None, archived: bool = False
    ) -> tuple[list[FakeLora], str | None]:
        """LoRAs newest first after ``cursor`` (the last id of the previous page).

        Raises:
            ValueError: the cursor names no LoRA of this store.
        """
        newest = [lo for lo in reversed(self._ordered) if archived or lo.status != "ARCHIVED"]
        start = 0
        if cursor:
            ids = [lo.id for lo in newest]
            if cursor not in ids:
                raise ValueError(cursor)
            start = ids.index(cursor) + 1
        items = newest[start : start + limit]
        more = start + limit < len(newest)
        return items, items[-1].id if more and items else None


def _text(fields: Mapping[str, Any], key: str) -> str | None:
    value = fields.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _int(fields: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int | None:
    value = fields.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and low <= value <= high else None


def lora_request(
    fields: Mapping[str, Any], image_count: int
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The training request's values, or what is wrong with them (Apiframe's rules), as
    ``ValidationError.details``: messages by field."""
    problems: dict[str, list[str]] = {}

    def problem(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if not MIN_IMAGES <= image_count <= MAX_IMAGES:
        problem("images", f"between {MIN_IMAGES} and {MAX_IMAGES} images (got {image_count})")
    name = _text(fields, "name")
    if name is None or len(name) > 60:
        problem("name", "required (1-60 characters)")
    subject = _text(fields, "subjectKind") or "person"
    if subject not in _SUBJECTS:
        problem("subjectKind", f"one of {', '.join(_SUBJECTS)}")
    gender, ethnicity = _text(fields, "gender"), _text(fields, "ethnicity")
    if subject == "person" and gender not in _GENDERS:
        problem("gender", f"required for a person: one of {', '.join(_GENDERS)}")
    if subject == "person" and (ethnicity is None or len(ethnicity) > 40):
        problem("ethnicity", "required for a person (1-40 characters)")
    steps = _int(fields, "steps", 1000, 500, 3000)
    if steps is None:
        problem("steps", "an integer from 500 to 3000")
    rank = _int(fields, "loraRank", 32, 8, 64)
    if rank is None:
        problem("loraRank", "an integer from 8 to 64")
    url = _text(fields, "webhookUrl")
    if url is not None and not url.startswith(("http://", "https://")):
        problem("webhookUrl", "must be an http(s) URL")
    events_text = fields.get("webhookEvents", ",".join(LORA_EVENTS))
    events = [e.strip() for e in str(events_text).split(",") if e.strip()]
    if not isinstance(events_text, str) or not set(events) <= set(LORA_EVENTS):
        problem("webhookEvents", "a comma-separated subset of completed,failed")
    values = {
        "name": name or "",
        "subject_kind": subject,
        "gender": gender,
        "ethnicity": ethnicity,
        "age": _text(fields, "age"),
        "image_count": image_count,
        "steps": steps or 1000,
        "lora_rank": rank or 32,
        "webhook_url": url,
        "webhook_events": frozenset(events),
    }
    return values, problems


def multipart_parts(body: bytes, content_type: str) -> list[EmailMessage] | None:
    """The parts of a multipart/form-data body, or ``None`` if it is not one (read with the
    standard library's MIME parser; the uploads route reads its ``file`` part through it too)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    try:
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    except (ValueError, TypeError):
        return None
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return None
    return [part for part in message.iter_parts() if isinstance(part, EmailMessage)]


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], int] | None:
    """A multipart/form-data body's text fields and its number of ``images`` files, or
    ``None`` if it is not one."""
    parts = multipart_parts(body, content_type)
    if parts is None:
        return None
    fields: dict[str, str] = {}
    images = 0
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        if name == "images" and part.get_filename() is not None:
            images += 1
        elif name != "images":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                fields[name] = payload.decode("utf-8", "replace")
    return fields, images


def json_images(value: Any) -> int:
    """How many images a JSON request's ``images`` carries (any items, e.g. base64 or URLs)."""
    if isinstance(value, list):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 0


def _trigger_word(lora: FakeLora) -> str:
    letters = base64.b32encode(uuid.UUID(int=lora.number * 7919 + 12345).bytes).decode()
    return "TOK" + letters[:2]


async def train(lora: FakeLora, behaviour: Callable[[], Behaviour], dice: Dice) -> bool:
    """Run a training to its end; return whether it ended in a state its webhook announces.

    A name containing the behaviour's ``fail_marker`` (or a ``fail_probability`` roll) fails.
    An archived LoRA stops where it is.
    """
    for status in ("UPLOADING", "TRAINING"):
        await asyncio.sleep(behaviour().lora_step_seconds)
        if lora.status == "ARCHIVED":
            return False
        lora.status = status
        lora.started_at = lora.started_at or datetime.now(UTC)
    await asyncio.sleep(behaviour().lora_step_seconds)
    if lora.status == "ARCHIVED":
        return False
    marker = behaviour().fail_marker.lower()
    fails = dice.roll(behaviour().fail_probability) or bool(marker and marker in lora.name.lower())
    lora.completed_at = datetime.now(UTC)
    if fails:
        lora.status, lora.error = "FAILED", FAILURE
    else:
        lora.status, lora.trigger_word = "READY", _trigger_word(lora)
    return True
