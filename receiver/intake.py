"""Recording an arrival: dedupe, state machine and task fan-out, inside the caller's transaction.

The order is the receiver vocabulary: the ledger decides *new or seen* (a unique key, inserted
on conflict do nothing, so two racing receivers cannot both win), the job row is locked and
moved by ``receiver.jobstate``, the delivery is stored with its outcome, and one task per
subscribed handler is queued. All of it commits together, or none of it does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from receiver.events import CompletedEvent, FailedEvent, Kind, ParsedBody, ProgressEvent
from receiver.jobstate import JobState, JobStatus, Verdict, apply
from receiver.models import Delivery, Job, LedgerEntry, Task, metadata
from receiver.signatures import SignatureMatch

__all__ = ["Arrival", "Outcome", "Receipt", "Recorder", "Subscription"]

_jobs = metadata.tables[Job.__tablename__]
_deliveries = metadata.tables[Delivery.__tablename__]
_ledger = metadata.tables[LedgerEntry.__tablename__]
_tasks = metadata.tables[Task.__tablename__]


class Outcome(StrEnum):
    """What became of a delivery; stored on it and answered to the sender."""

    ACCEPTED = "accepted"
    STALE = "stale"
    CONFLICT = "conflict"
    DUPLICATE = "duplicate"
    UNRECOGNIZED = "unrecognized"
    MALFORMED = "malformed"

    @property
    def is_new(self) -> bool:
        """Whether the sender is told it was new (202) rather than already had (200)."""
        return self not in (Outcome.DUPLICATE, Outcome.CONFLICT)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A handler's interest: the events it wants and, optionally, only some models."""

    name: str
    events: frozenset[str]
    models: frozenset[str] | None = None

    def wants(self, event: str, model: str | None) -> bool:
        """Whether a task for this handler is created for ``event`` on a job of ``model``."""
        if event not in self.events:
            return False
        return self.models is None or (model is not None and model in self.models)


@dataclass(frozen=True, slots=True)
class Arrival:
    """Everything known about one verified request, ready to be recorded."""

    parsed: ParsedBody
    body: bytes
    received_at: datetime
    request_id: str
    header_event: str | None = None
    match: SignatureMatch | None = None
    remote_addr: str | None = None
    source: str = "webhook"

    @property
    def event_mismatch(self) -> bool:
        """``X-Webhook-Event`` names another event than the body (the body, signed, wins)."""
        return self.header_event is not None and self.header_event != self.parsed.event_name


@dataclass(frozen=True, slots=True)
class Receipt:
    """What recording an arrival did."""

    outcome: Outcome
    delivery_id: int
    job_id: str | None
    tasks: int = 0


def _dialect_insert(dialect: str) -> Callable[[Table], Any]:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _row_to_state(row: Any) -> JobState:
    return JobState(
        status=JobStatus(row.status),
        progress=row.progress,
        model=row.model,
        result=row.result,
        error=row.error,
        credit_cost=row.credit_cost,
        completed_at=row.completed_at,
    )


def _state_values(state: JobState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "progress": state.progress,
        "model": state.model,
        "result": state.result,
        "error": state.error,
        "credit_cost": state.credit_cost,
        "completed_at": state.completed_at,
    }


class Recorder:
    """Records arrivals on a connection whose transaction the caller owns.

    Args:
        dialect: ``sqlite`` or ``postgresql`` (for insert-on-conflict and row locks).
        subscriptions: the handlers that get a task for each accepted event.
    """

    def __init__(self, dialect: str, subscriptions: Sequence[Subscription]) -> None:
        self.subscriptions = tuple(subscriptions)
        dialect_insert = _dialect_insert(dialect)
        # RETURNING says whether this insert won; drivers disagree on rowcount for DO NOTHING.
        self._claim_key = (
            dialect_insert(_ledger)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(_ledger.c.key)
        )
        self._seen = select(_ledger.c.fingerprint).where(_ledger.c.key == bindparam("k"))
        self._lock_job = select(_jobs).where(_jobs.c.id == bindparam("k")).with_for_update()
        self._new_job = (
            dialect_insert(_jobs)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(_jobs.c.id)
        )
        self._move_job = update(_jobs).where(_jobs.c.id == bindparam("k"))
        self._add_delivery = insert(_deliveries).returning(_deliveries.c.id)
        self._add_tasks = insert(_tasks)

    def record_many(self, connection: Connection, arrivals: Sequence[Arrival]) -> list[Receipt]:
        """Record a batch in one transaction, in a deadlock-free order.

        Rows are locked in job-id order (stable, so one job's events keep their arrival order):
        two writers that batch overlapping jobs then wait for each other, never deadlock.
        """
        order = sorted(range(len(arrivals)), key=lambda i: arrivals[i].parsed.job_id or "")
        receipts: list[Receipt | None] = [None] * len(arrivals)
        for i in order:
            receipts[i] = self.record(connection, arrivals[i])
        return [r for r in receipts if r is not None]

    def record(self, connection: Connection, arrival: Arrival) -> Receipt:
        """Record one arrival; see the module docstring for the steps."""
        parsed = arrival.parsed
        if parsed.kind is Kind.MALFORMED or parsed.dedupe_key is None:
            return self._deliver(connection, arrival, Outcome.MALFORMED)
        claimed = connection.execute(
            self._claim_key,
            {
                "key": parsed.dedupe_key,
                "fingerprint": parsed.fingerprint,
                "first_seen_at": arrival.received_at,
            },
        ).first()
        if claimed is None:
            first = connection.execute(self._seen, {"k": parsed.dedupe_key}).scalar_one()
            same = first == parsed.fingerprint
            return self._deliver(
                connection, arrival, Outcome.DUPLICATE if same else Outcome.CONFLICT
            )
        if parsed.event is None:
            return self._deliver(connection, arrival, Outcome.UNRECOGNIZED)
        verdict = self._move(connection, parsed.event, arrival.received_at)
        outcome = Outcome(verdict.value)
        receipt = self._deliver(connection, arrival, outcome)
        if outcome is Outcome.ACCEPTED:
            return self._fan_out(connection, receipt, parsed.event, arrival.received_at)
        return receipt

    def _move(
        self,
        connection: Connection,
        event: ProgressEvent | CompletedEvent | FailedEvent,
        now: datetime,
    ) -> Verdict:
        row = connection.execute(self._lock_job, {"k": event.job_id}).first()
        if row is None:
            transition = apply(None, event)
            values = _state_values(transition.state)
            created = connection.execute(
                self._new_job, {"id": event.job_id, "created_at": now, "updated_at": now, **values}
            ).first()
            if created is not None:
                return transition.verdict
            # Another receiver created the row since our read: lock theirs and apply on top.
            row = connection.execute(self._lock_job, {"k": event.job_id}).one()
        before = _row_to_state(row)
        transition = apply(before, event)
        if transition.state != before:
            connection.execute(
                self._move_job,
                {"k": event.job_id, "updated_at": now, **_state_values(transition.state)},
            )
        return transition.verdict

    def _deliver(self, connection: Connection, arrival: Arrival, outcome: Outcome) -> Receipt:
        parsed = arrival.parsed
        match = arrival.match
        delivery_id = connection.execute(
            self._add_delivery,
            {
                "received_at": arrival.received_at,
                "source": arrival.source,
                "request_id": arrival.request_id,
                "job_id": parsed.job_id,
                "event": parsed.event_name,
                "header_event": arrival.header_event,
                "event_mismatch": arrival.event_mismatch,
                "outcome": outcome.value,
                "dedupe_key": parsed.dedupe_key,
                "fingerprint": parsed.fingerprint,
                "key_index": None if match is None else match.key_index,
                "key_derivation": None if match is None else match.derivation.value,
                "remote_addr": arrival.remote_addr,
                "body": arrival.body,
            },
        ).scalar_one()
        return Receipt(outcome, delivery_id, parsed.job_id)

    def _fan_out(
        self,
        connection: Connection,
        receipt: Receipt,
        event: ProgressEvent | CompletedEvent | FailedEvent,
        now: datetime,
    ) -> Receipt:
        # Terminal events run before progress ones when the queue is deep.
        priority = 10 if isinstance(event, ProgressEvent) else 0
        rows = [
            {
                "delivery_id": receipt.delivery_id,
                "job_id": event.job_id,
                "handler": sub.name,
                "event": event.event,
                "status": "queued",
                "priority": priority,
                "attempts": 0,
                "run_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for sub in self._subscribers(event)
        ]
        if rows:
            connection.execute(self._add_tasks, rows)
        return Receipt(receipt.outcome, receipt.delivery_id, receipt.job_id, len(rows))

    def _subscribers(
        self, event: ProgressEvent | CompletedEvent | FailedEvent
    ) -> Iterable[Subscription]:
        return (s for s in self.subscriptions if s.wants(event.event, event.model))
