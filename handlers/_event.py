"""The immutable values a handler receives: the event and the job as it stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["JobEvent", "JobSnapshot"]


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
        event: ``progress``, ``completed`` or ``failed``.
        job_id: Apiframe's job id.
        payload: the webhook body as received (unknown fields included); read-only.
        delivery_id: framehook's id of the delivery that carried it.
        received_at: when framehook received it.
        source: ``webhook`` or ``poll`` (found by reconciliation).
        job: the job as it stands.
    """

    event: str
    job_id: str
    payload: dict[str, Any]
    delivery_id: int
    received_at: datetime
    source: str = "webhook"
    job: JobSnapshot

    @property
    def model(self) -> str | None:
        """The job's model (``midjourney``, ``kling-2.6``, ...), if known."""
        return self.job.model
