"""The fake's jobs: what the job API shows of each, and the newest-first, cursored list."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from receiver.dev.fakeapi.bodies import Output, iso_time
from receiver.intake.job_state import TERMINAL, JobStatus

__all__ = ["STATUSES", "Job", "JobStore", "Page"]

STATUSES = tuple(s.value for s in JobStatus)


@dataclass(eq=False)
class Job:
    """One job, as the fake keeps it; ``resource()`` is what ``GET /v2/jobs/:id`` shows.

    Attributes:
        number: the job's position in the fake's life (1 for the first), seeds its dice.
        asset_base_url: where its result's URLs will point (the fake's CDN route).
        files: the CDN paths of its result (``images/<id>-1.png``), served once it completes.
        expired_by_hand: expired through the control route, whatever the behaviour says.
    """

    id: str
    number: int
    operation: str
    model: str
    output: Output
    input: dict[str, Any]
    webhook_url: str | None
    webhook_events: frozenset[str]
    asset_base_url: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "QUEUED"
    progress: int = 0
    result: Any = None
    error: str | None = None
    credit_cost: int | None = None
    completed_at: datetime | None = None
    webhook_status: str | None = None
    files: tuple[str, ...] = ()
    expired_by_hand: bool = False

    @property
    def prompt(self) -> str:
        """The request's prompt ('' when it had none)."""
        prompt = self.input.get("prompt")
        return prompt if isinstance(prompt, str) else ""

    @property
    def finished(self) -> bool:
        """The job reached a terminal status."""
        return self.status in TERMINAL

    def expired(self, expire_after_seconds: float | None, now: datetime) -> bool:
        """Whether the job's assets are gone from the CDN."""
        if self.expired_by_hand:
            return True
        if expire_after_seconds is None or self.completed_at is None:
            return False
        return now >= self.completed_at + timedelta(seconds=expire_after_seconds)

    def resource(self, expired: bool) -> dict[str, Any]:
        """The job as ``GET /v2/jobs/:id`` answers it."""
        return {
            "id": self.id,
            "status": self.status,
            "model": self.model,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
            "creditCost": self.credit_cost,
            "webhookStatus": self.webhook_status,
            "createdAt": iso_time(self.created_at),
            "completedAt": None if self.completed_at is None else iso_time(self.completed_at),
            "expired": expired,
            "input": self.input,
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the job list."""

    jobs: list[Job]
    next_cursor: str | None
    has_more: bool


def _cursor(number: int) -> str:
    return base64.urlsafe_b64encode(f"job:{number}".encode()).decode().rstrip("=")


def _cursor_number(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind != "job" or not number.isdigit():
            raise ValueError(cursor)
        return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(f"invalid cursor {cursor!r}") from None


class JobStore:
    """Every job the fake has accepted, by id and in order of creation."""

    __slots__ = ("_by_id", "_ordered")

    def __init__(self) -> None:
        self._by_id: dict[str, Job] = {}
        self._ordered: list[Job] = []

    def __len__(self) -> int:
        return len(self._ordered)

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._ordered))

    def next_number(self) -> int:
        """The number the next job gets."""
        return len(self._ordered) + 1

    def add(self, job: Job) -> None:
        """Keep ``job`` (numbered by :meth:`next_number`)."""
        self._by_id[job.id] = job
        self._ordered.append(job)

    def get(self, job_id: str) -> Job | None:
        """The job with ``job_id``, if any."""
        return self._by_id.get(job_id)

    def models(self) -> list[str]:
        """Every model the jobs used, sorted (``include_models=true``)."""
        return sorted({job.model for job in self._ordered})

    def page(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        search: str | None = None,
    ) -> Page:
        """Jobs newest first, filtered (``search`` is a job id), after ``cursor``.

        Raises:
            ValueError: the cursor is not one this store handed out.
        """
        before = _cursor_number(cursor) if cursor else None
        matching = [
            job
            for job in reversed(self._ordered)
            if (before is None or job.number < before)
            and (status is None or job.status == status)
            and (model is None or job.model == model)
            and (search is None or job.id == search)
        ]
        jobs = matching[:limit]
        has_more = len(matching) > limit
        return Page(jobs, _cursor(jobs[-1].number) if has_more else None, has_more)
