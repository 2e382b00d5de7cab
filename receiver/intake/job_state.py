"""The job state machine: pure, so any order of events can be checked against it.

Status only moves forward (``QUEUED → PROCESSING → COMPLETED | FAILED | CANCELLED``) and
progress never decreases; a ``cancelled`` event (or a poll that finds the job ``CANCELLED``)
ends a job as ``completed`` and ``failed`` do. The first terminal event wins: a later,
different terminal event is a ``conflict`` and a progress after a terminal one is ``stale``;
neither changes anything.
A finished job reports progress 100 whatever ended it, so its state does not depend on which
progress events happened to arrive before the terminal one.

Test jobs. A body marked ``"framehookTest": true`` (``framehook send-test``) is a test event,
and a job is a test job while only test events have moved it:

- the event that creates a job's row decides: a test event creates a test job;
- a test event never touches a real job: for a job created by an unmarked event it is
  ``stale`` and changes nothing (so ``send-test --job-id`` with a real job's id cannot
  complete, fail or mark that job);
- a real event takes a test job over: the test's made-up state is dropped and the event
  applies as the job's first, so the job is real from then on (and Apiframe's own events for
  an id a test happened to use are never lost). Test events have their own dedupe keys
  (``receiver.apiframe.events``), so a test event never makes a real one a duplicate.

Test jobs charge no credits and name no files to capture (``receiver.intake.files``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from receiver.apiframe.events import (
    CancelledEvent,
    CompletedEvent,
    Event,
    FailedEvent,
    ProgressEvent,
)

__all__ = ["TERMINAL", "JobState", "JobStatus", "Transition", "Verdict", "apply"]


class JobStatus(StrEnum):
    """Apiframe's job statuses."""

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
_OPEN_STATUSES = {JobStatus.QUEUED.value: JobStatus.QUEUED, "PROCESSING": JobStatus.PROCESSING}


class Verdict(StrEnum):
    """What an event did to its job."""

    ACCEPTED = "accepted"
    """It moved the job forward (or created it); handlers run."""
    STALE = "stale"
    """It arrived after something newer and changed nothing."""
    CONFLICT = "conflict"
    """It contradicts a terminal state already recorded; the first one stands."""


@dataclass(frozen=True, slots=True)
class JobState:
    """A job as framehook knows it (the mutable parts of the ``jobs`` row)."""

    status: JobStatus = JobStatus.QUEUED
    progress: int = 0
    model: str | None = None
    result: Any = None
    error: str | None = None
    credit_cost: float | None = None
    completed_at: datetime | None = None
    test: bool = False
    """Only framehook test events (``"framehookTest": true``) have moved it."""

    @property
    def is_terminal(self) -> bool:
        """Whether the job has finished, one way or another."""
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class Transition:
    """The state after an event, and the event's verdict."""

    state: JobState
    verdict: Verdict


def _progress(state: JobState, event: ProgressEvent) -> Transition:
    if state.is_terminal:
        return Transition(state, Verdict.STALE)
    # A progress event says the job is at least queued or processing, never finished.
    claimed = _OPEN_STATUSES.get((event.status or "").upper(), JobStatus.PROCESSING)
    status = JobStatus.PROCESSING if JobStatus.PROCESSING in (state.status, claimed) else claimed
    value = event.progress_value
    progress = state.progress if value is None else max(state.progress, value)
    new = replace(state, status=status, progress=progress, model=state.model or event.model)
    return Transition(new, Verdict.ACCEPTED if new != state else Verdict.STALE)


_ENDS = {
    CompletedEvent: JobStatus.COMPLETED,
    FailedEvent: JobStatus.FAILED,
    CancelledEvent: JobStatus.CANCELLED,
}


def _terminal(state: JobState, event: CompletedEvent | FailedEvent | CancelledEvent) -> Transition:
    status = _ENDS[type(event)]
    if state.is_terminal:
        return Transition(state, Verdict.STALE if state.status is status else Verdict.CONFLICT)
    new = replace(state, status=status, progress=100, model=state.model or event.model)
    if isinstance(event, CompletedEvent):
        new = replace(
            new,
            result=event.result,
            credit_cost=event.credit_cost,
            completed_at=event.completed_at,
        )
    elif isinstance(event, FailedEvent):
        # Refunded, but the cost is kept as Apiframe reported it (the ledger counts it 0).
        new = replace(new, error=event.error, credit_cost=event.credit_cost)
    # A cancelled job produced nothing and is charged nothing: no result, error or cost.
    return Transition(new, Verdict.ACCEPTED)


def apply(state: JobState | None, event: Event, *, test: bool = False) -> Transition:
    """Apply one event to a job.

    Args:
        state: the job as stored, or ``None`` when this is the first event seen for it.
        event: a verified, parsed event for that job.
        test: the event is a framehook test event (the module docstring says the rule).

    Returns:
        The new state (equal to the old one unless the verdict is ``ACCEPTED``) and the verdict.
    """
    if state is not None and test and not state.test:
        return Transition(state, Verdict.STALE)
    if state is None or (state.test and not test):
        state = JobState(test=test)
        fresh = True
    else:
        fresh = False
    if isinstance(event, ProgressEvent):
        transition = _progress(state, event)
    else:
        transition = _terminal(state, event)
    if fresh:
        # The first event seen for a job always creates its row, even if it adds nothing.
        return Transition(transition.state, Verdict.ACCEPTED)
    return transition
