"""The task queue's operations on the ``tasks`` table: claim, renew, finish, release.

A claim is ONE statement: ``UPDATE tasks ... WHERE id = ANY(ARRAY(SELECT ... FOR UPDATE SKIP
LOCKED LIMIT n)) RETURNING ...`` on PostgreSQL, so any number of workers share the table without
coordinating (SQLite has one writer at a time; the same statement is atomic there). A claim
takes a lease; a running task's worker renews it, and a task whose lease expired (its worker
died or froze) is claimed again.

Fencing: the attempt number is the lease's token. Every write a worker makes about its task
says which attempt it is, and matches nothing once the task was claimed again: a worker that
was frozen past its lease cannot overwrite the newer attempt's outcome.

Two styles, on purpose. Claims and finishes happen for every task, thousands a second, so they
are plain SQL on the DBAPI cursor (``receiver.db.sql.tasks``; ``receiver.db.sql.dialect`` says
why). ``renew``, ``reclaim_expired`` and ``bury_exhausted`` run on the lease timer, ``next_due``
before the worker sleeps and ``release_many`` at shutdown: they stay in SQLAlchemy Core, which reads
better and whose overhead does not matter there.

The SQL returns rows; the events handlers receive are made here, a LoRA's by
``LoraEvent.from_lora`` as ``handlers.testing`` makes it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, or_, select, update

from handlers import JobEvent, JobSnapshot, LoraEvent, LoraSnapshot
from receiver.apiframe.loras import LoraStatus, lora_event_name, recognise_lora
from receiver.db.engine import IMMEDIATE, write_transaction, writing
from receiver.db.models import AttemptOutcome, Task, TaskStatus, metadata
from receiver.db.sql.tasks import AttemptResult, EventRow, LoraEventRow, TaskSql

__all__ = ["AttemptResult", "ClaimedTask", "TaskQueue", "attempt_result"]

_tasks = metadata.tables[Task.__tablename__]

LEASE_EXPIRED = "lease expired: the worker running it stopped renewing (killed or frozen)"


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task this worker now holds, with what its handler needs.

    ``event`` is ``None`` when the delivery's raw body is gone (pruned): nothing to run.
    """

    id: int
    handler: str
    attempt: int
    started_at: datetime
    event: JobEvent | None
    budget_attempt: int = 0
    """The attempt number within the retry budget (since the last replay)."""


def attempt_result(
    task: ClaimedTask,
    outcome: AttemptOutcome,
    error: str | None = None,
    run_at: datetime | None = None,
) -> AttemptResult:
    """The record of ``task``'s attempt ending in ``outcome`` (``succeeded``, ``dead``, or
    ``retry`` at ``run_at``)."""
    # A retry queues the task again; the other outcomes leave it in the status of that name.
    status = TaskStatus.QUEUED if outcome == AttemptOutcome.RETRY else TaskStatus(outcome)
    return AttemptResult(
        task_id=task.id,
        attempt=task.attempt,
        status=status,
        outcome=outcome,
        started_at=task.started_at,
        error=error,
        run_at=run_at,
    )


def _event(row: EventRow, name: str) -> JobEvent:
    """The event a handler is given for a claimed delivery; ``name``, its task's event name,
    names a LoRA event (a job's event name is in its delivery)."""
    if row.lora is not None:
        return _lora_event(row, row.lora, name)
    job = row.job
    assert job is not None  # a delivery without a LoRA is a job's
    snapshot = JobSnapshot(
        id=job.id,
        status=job.status,
        progress=job.progress,
        model=job.model,
        result=job.result,
        error=job.error,
        credit_cost=job.credit_cost,
        completed_at=job.completed_at,
    )
    return JobEvent(
        event=row.event,
        job_id=job.id,
        payload=row.payload,
        delivery_id=row.delivery_id,
        received_at=row.received_at,
        source=row.source,
        job=snapshot,
    )


def _lora_event(row: EventRow, lora: LoraEventRow, name: str) -> LoraEvent:
    """A LoRA delivery's event, named as its task was queued (else after the status its body
    reported, else the LoRA's own: a LoRA event's name, ``lora.ready``, is not in its body),
    with the LoRA as it stands."""
    if not name:
        notice = recognise_lora(row.payload) if isinstance(row.payload, dict) else None
        reported = notice.status if notice is not None else str(lora.status)
        name = lora_event_name(reported) or "lora.unknown"
    snapshot = LoraSnapshot(
        id=lora.id,
        status=lora.status or LoraStatus.UNKNOWN.value,
        name=lora.name,
        trigger_word=lora.trigger_word,
        error=lora.error,
        created_at=lora.created_at,
        completed_at=lora.completed_at,
    )
    return LoraEvent.from_lora(
        snapshot,
        event=name,
        payload=row.payload,
        delivery_id=row.delivery_id,
        received_at=row.received_at,
        source=row.source,
    )


class TaskQueue:
    """Task operations for one worker.

    Args:
        engine: the database.
        worker: this worker's name (stored on claims and attempts).
        lease_seconds: how long a claim holds without renewal.
        max_attempts: a task whose lease expired this many times is dead, not claimed again.
    """

    def __init__(
        self, engine: Engine, worker: str, lease_seconds: float = 30.0, max_attempts: int = 8
    ) -> None:
        self.engine = engine
        self.worker = worker
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self._sql = TaskSql(engine.dialect.name)

    def claim(self, handlers: Collection[str], limit: int, now: datetime) -> list[ClaimedTask]:
        """Claim up to ``limit`` due tasks for ``handlers``: terminal events first, then oldest.

        The claim walks the partial index ``ix_tasks_claim`` (queued tasks in claim order) and
        stops at LIMIT. Tasks whose lease expired come back through ``reclaim_expired``.
        """
        # On PostgreSQL the claim is one statement, so its own transaction: autocommit spares
        # a BEGIN and a COMMIT round trip. SQLite's two statements share a write transaction.
        options = IMMEDIATE if self._sql.sqlite else {"isolation_level": "AUTOCOMMIT"}
        with (
            self.engine.connect().execution_options(**options) as connection,
            write_transaction(connection) if self._sql.sqlite else nullcontext(),
        ):
            cursor = connection.connection.cursor()
            try:
                rows, found = self._sql.claim(
                    cursor, handlers, limit, now, now + self.lease, self.worker
                )
            finally:
                cursor.close()
        # After the commit: making events (LoRA recognition included) holds no locks.
        names = {r.delivery_id: r.event for r in rows}
        events = {d: _event(row, names[d]) for d, row in found.items()}
        return [
            ClaimedTask(
                r.id,
                r.handler,
                r.attempts,
                now,
                events.get(r.delivery_id),
                r.attempts - r.attempt_offset,
            )
            for r in rows
        ]

    def reclaim_expired(self, handlers: Collection[str], now: datetime) -> int:
        """Queue again the tasks whose lease expired (their worker died or froze).

        The attempt is not given back: the next claim counts up, which fences the lost worker.
        A partial index over running tasks keeps this cheap; workers run it periodically.
        """
        t = _tasks
        expired = (
            select(t.c.id)
            .where(
                t.c.status == TaskStatus.RUNNING,
                t.c.lease_expires_at < now,
                t.c.attempts - t.c.attempt_offset < self.max_attempts,
                t.c.handler.in_(list(handlers)),
            )
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        reclaim = (
            update(t)
            .where(t.c.id.in_(expired))
            .values(
                status=TaskStatus.QUEUED,
                run_at=now,
                lease_expires_at=None,
                last_error=LEASE_EXPIRED,
            )
        )
        with writing(self.engine) as connection:
            return connection.execute(reclaim).rowcount

    def renew(self, held: Sequence[tuple[int, int]], now: datetime) -> int:
        """Extend the leases of ``(task id, attempt)`` pairs still ours; return how many."""
        if not held:
            return 0
        t = _tasks
        statement = (
            update(t)
            .where(
                t.c.status == TaskStatus.RUNNING,
                or_(*(and_(t.c.id == i, t.c.attempts == a) for i, a in held)),
            )
            .values(lease_expires_at=now + self.lease)
        )
        with writing(self.engine) as connection:
            return connection.execute(statement).rowcount

    def finish(
        self,
        task: ClaimedTask,
        outcome: AttemptOutcome,
        now: datetime,
        error: str | None = None,
        run_at: datetime | None = None,
    ) -> bool:
        """Record how an attempt ended: ``succeeded``, ``retry`` (again at ``run_at``) or
        ``dead``. Returns False, writing nothing, if the task is no longer this attempt's."""
        return task.id in self.finish_many([attempt_result(task, outcome, error, run_at)], now)

    def finish_many(self, outcomes: Sequence[AttemptResult], now: datetime) -> set[int]:
        """Record many outcomes in one transaction; return the ids of the tasks whose outcome
        was kept (the others were claimed again meanwhile: fenced, nothing written)."""
        if not outcomes:
            return set()
        with writing(self.engine) as connection:
            cursor = connection.connection.cursor()
            try:
                return self._sql.finish(cursor, outcomes, self.worker, now)
            finally:
                cursor.close()

    def release_many(self, tasks: Sequence[ClaimedTask], now: datetime) -> int:
        """Give tasks back unrun (shutdown), in one statement: queued again at once, the
        attempt not counted; return how many were still this worker's."""
        if not tasks:
            return 0
        t = _tasks
        statement = (
            update(t)
            .where(
                t.c.status == TaskStatus.RUNNING,
                or_(*(and_(t.c.id == k.id, t.c.attempts == k.attempt) for k in tasks)),
            )
            .values(
                status=TaskStatus.QUEUED,
                attempts=t.c.attempts - 1,
                run_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        with writing(self.engine) as connection:
            return connection.execute(statement).rowcount

    def bury_exhausted(self, now: datetime) -> int:
        """Park tasks whose lease expired on their last allowed attempt as dead, releasing
        the tasks of their deliveries that waited for them, in the same transaction."""
        t = _tasks
        statement = (
            update(t)
            .where(
                t.c.status == TaskStatus.RUNNING,
                t.c.lease_expires_at < now,
                t.c.attempts - t.c.attempt_offset >= self.max_attempts,
            )
            .values(
                status=TaskStatus.DEAD,
                finished_at=now,
                updated_at=now,
                lease_expires_at=None,
                last_error=LEASE_EXPIRED,
            )
            .returning(t.c.delivery_id)
        )
        with writing(self.engine) as connection:
            buried = connection.execute(statement).scalars().all()
            if buried:
                cursor = connection.connection.cursor()
                try:
                    self._sql.waiting.release(cursor, buried, now)
                finally:
                    cursor.close()
            return len(buried)

    def next_due(self, handlers: Collection[str]) -> datetime | None:
        """When the earliest queued task for ``handlers`` becomes due (to sleep until then)."""
        t = _tasks
        query = select(t.c.run_at).where(
            t.c.status == TaskStatus.QUEUED, t.c.handler.in_(list(handlers))
        )
        with self.engine.connect() as connection:
            return connection.execute(query.order_by(t.c.run_at).limit(1)).scalar()
