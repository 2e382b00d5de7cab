"""Retention: raw bodies and finished tasks pruned after an age; what dedupe needs is kept.

The dedupe ledger and the job rows are never pruned, so a delivery Apiframe retries days
later is still recognised as a duplicate and a job's state never goes back. Deliveries stay
as rows (their outcome and timestamps make the timeline); only their raw bodies go. Dead tasks
stay until someone replays them; succeeded and superseded ones go with their attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from receiver.db.engine import writing
from receiver.db.models import Delivery, Task, TaskAttempt, TaskStatus, metadata

__all__ = ["Pruned", "prune"]

_deliveries = metadata.tables[Delivery.__tablename__]
_tasks = metadata.tables[Task.__tablename__]
_attempts = metadata.tables[TaskAttempt.__tablename__]
PRUNABLE_TASKS = (TaskStatus.SUCCEEDED, TaskStatus.SUPERSEDED)
_KEEPS_BODY = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.DEAD)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one prune removed."""

    bodies: int
    tasks: int
    attempts: int


def prune(engine: Engine, older_than: timedelta, now: datetime | None = None) -> Pruned:
    """Drop raw bodies of deliveries received, and finished tasks finished, before
    ``now - older_than``. A body whose task has not finished yet is kept (its handler needs it).
    """
    cutoff = (now or datetime.now(UTC)) - older_than
    d, t, a = _deliveries, _tasks, _attempts
    # Tasks that may still run (a dead one, once replayed), so their bodies stay.
    unfinished = select(t.c.delivery_id).where(t.c.status.in_(_KEEPS_BODY))
    old_tasks = select(t.c.id).where(t.c.status.in_(PRUNABLE_TASKS), t.c.finished_at < cutoff)
    with writing(engine) as connection:
        bodies = connection.execute(
            update(d)
            .where(d.c.received_at < cutoff, d.c.body.is_not(None), d.c.id.not_in(unfinished))
            .values(body=None)
        ).rowcount
        attempts = connection.execute(delete(a).where(a.c.task_id.in_(old_tasks))).rowcount
        tasks = connection.execute(
            delete(t).where(t.c.status.in_(PRUNABLE_TASKS), t.c.finished_at < cutoff)
        ).rowcount
    return Pruned(bodies=bodies, tasks=tasks, attempts=attempts)
