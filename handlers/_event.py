"""The immutable values a handler receives: the event and the job (or LoRA) as it stands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

__all__ = [
    "LORA_ENDED",
    "LORA_EVENTS",
    "TEST_MARKER",
    "JobEvent",
    "JobSnapshot",
    "LoraEvent",
    "LoraSnapshot",
    "is_test_body",
]

LORA_EVENTS = frozenset(
    {
        "lora.pending",
        "lora.uploading",
        "lora.training",
        "lora.ready",
        "lora.failed",
        "lora.archived",
    }
)
"""The LoRA training events a handler may subscribe to: ``lora.<status>``, one per status a
LoRA reaches (``lora.ready`` and ``lora.failed`` are the ones Apiframe's webhook announces)."""

LORA_ENDED = frozenset({"READY", "FAILED", "ARCHIVED"})
"""The LoRA statuses after which its training runs no more: it succeeded, failed, or the LoRA
was archived. The receiver's ``LORA_ENDED`` (``receiver.apiframe.loras``) is the same set as
``LoraStatus`` members; this package cannot import it, and a test keeps the two equal."""

TEST_MARKER = "framehookTest"
"""The top-level member that marks a webhook body as a framehook test event
(``"framehookTest": true``), put there by ``framehook send-test`` inside the signed body.

Apiframe has no notion of a test event; this is framehook's own convention. Only the JSON value
``true`` marks a body: ``"true"``, ``1`` or the member nested deeper do not, so a real body is
never taken for a test by accident."""


def is_test_body(payload: object) -> bool:
    """Whether a decoded webhook body is marked as a framehook test event (:data:`TEST_MARKER`).

    The receiver's intake and :attr:`JobEvent.test` both answer by this one rule.
    """
    return isinstance(payload, Mapping) and payload.get(TEST_MARKER) is True


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSnapshot:
    """The job as framehook recorded it when the task was created or last ran.

    ``result`` is Apiframe's result as received (a URL string, or an object whose keys depend
    on the modality); treat it as read-only.
    """

    id: str
    status: str
    progress: int
    model: str | None = None
    result: Any = None
    error: str | None = None
    credit_cost: float | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent:
    """One accepted Apiframe event, as a handler sees it.

    Attributes:
        event: ``progress``, ``completed`` or ``failed`` (``lora.*`` for a ``LoraEvent``).
        job_id: Apiframe's job id.
        payload: the webhook body as received (unknown fields included); read-only.
        delivery_id: framehook's id of the delivery that carried it.
        received_at: when framehook received it.
        source: ``webhook`` or ``poll`` (found by reconciliation).
        job: the job as it stands.

    ``test`` says whether the body was a framehook test event (``framehook send-test``): its
    files are made-up URLs and its credits are not real, so skip whatever should only happen
    for real jobs.
    """

    event: str
    job_id: str
    payload: Mapping[str, Any]
    delivery_id: int
    received_at: datetime
    source: str = "webhook"
    job: JobSnapshot

    @property
    def model(self) -> str | None:
        """The job's model (``midjourney``, ``kling-2.6``, ...), if known."""
        return self.job.model

    @property
    def test(self) -> bool:
        """Whether this is a framehook test event (``framehook send-test``), not Apiframe's:
        its body carries ``"framehookTest": true`` (:data:`TEST_MARKER`)."""
        return is_test_body(self.payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoraSnapshot:
    """A LoRA training as framehook recorded it (from its webhooks and ``GET /v2/loras/:id``).

    Attributes:
        id: Apiframe's LoRA id (``lora_…`` or a UUID): pass it as ``fluxLoraParams.loraId``.
        status: ``PENDING``, ``UPLOADING``, ``TRAINING``, ``READY``, ``FAILED``, ``ARCHIVED``,
            or ``UNKNOWN`` while a webhook said something happened but not what.
        name: the LoRA's display name, once known.
        trigger_word: the word that summons the subject in prompts (``READY`` LoRAs); it may
            still be ``None`` when the webhook lacked it and the lookup has not happened yet.
        error: why training failed (``FAILED``).
        created_at: when framehook first heard of the LoRA.
        completed_at: when training ended, as Apiframe says.
    """

    id: str
    status: str
    name: str | None = None
    trigger_word: str | None = None
    error: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def is_ready(self) -> bool:
        """Whether the LoRA can be used with ``flux-lora`` generations."""
        return self.status == "READY"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoraEvent(JobEvent):
    """A LoRA training event (``lora.ready``, ``lora.failed``, ...), as a handler sees it.

    A ``JobEvent`` so that one handler signature serves both: ``job_id`` is the LoRA's id,
    ``job`` describes the training as a job (its status, ``error``, ``completed_at``; no
    model), and ``lora`` is the LoRA as it stands when the task runs. Tell them apart with
    ``isinstance(event, LoraEvent)``.
    """

    lora: LoraSnapshot

    @classmethod
    def from_lora(
        cls,
        lora: LoraSnapshot,
        *,
        event: str,
        payload: Mapping[str, Any],
        delivery_id: int,
        received_at: datetime,
        source: str = "webhook",
    ) -> Self:
        """The event ``event`` (``lora.ready``, ...) about ``lora`` as it stands, its training
        described as a job: the LoRA's status, error and end, and progress 100 once it ended.

        framehook's workers and ``handlers.testing`` both build LoRA events here, so a test's
        event has the shape a worker's has.
        """
        job = JobSnapshot(
            id=lora.id,
            status=lora.status,
            progress=100 if lora.status in LORA_ENDED else 0,
            error=lora.error,
            completed_at=lora.completed_at,
        )
        return cls(
            event=event,
            job_id=lora.id,
            payload=payload,
            delivery_id=delivery_id,
            received_at=received_at,
            source=source,
            job=job,
            lora=lora,
        )
