"""Re-queueing work: one task, a job's tasks, or every dead task.

Behind ``framehook replay`` and the admin API's retry/replay routes. A replayed task is queued
at once with a fresh retry budget; its attempt count keeps growing (it fences stale workers)
and its history stays in ``task_attempts``. Running tasks are never touched, nor waiting ones
(they run when the tasks they wait for have ended).

Order (``receiver.queue.order``): a re-queued task that runs after other handlers waits again
when one of their tasks for its delivery is unfinished afterwards: replaying a job re-queues
``download`` and ``forward`` together, and ``forward`` waits for the new download. Re-queued
alone, after its download has ended, it is queued at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.sql.elements import ColumnElement

from receiver.db.engine import writing
from receiver.db.models import Task, TaskStatus, metadata
from receiver.db.sql.waiting import chunks, waits_for
from receiver.queue.notify import CHANNEL

__all__ = ["replay_dead", "replay_job", "requeue_task", "retry_task"]

_tasks = metadata.tables[Task.__tablename__]
# A job's tasks that ran to an end; superseded ones never ran, and replaying a job leaves them.
_RAN = (TaskStatus.SUCCEEDED, TaskStatus.DEAD)
# Never re-queued: a running task is a worker's; a waiting one runs when its turn comes.
_LEFT = (TaskStatus.RUNNING, TaskStatus.WAITING)


def _requeue(engine: Engine, *conditions: ColumnElement[bool]) -> int:
    with writing(engine) as connection:
        return _requeue_on(connection, *conditions)


def _requeue_on(connection: Connection, *conditions: ColumnElement[bool]) -> int:
    now = datetime.now(UTC)
    t = _tasks
    statement = (
        update(t)
        .where(t.c.status.not_in(_LEFT), *conditions)
        .values(
            status=TaskStatus.QUEUED,
            run_at=now,
            updated_at=now,
            finished_at=None,
            lease_expires_at=None,
            attempt_offset=t.c.attempts,
        )
        .returning(t.c.id, t.c.delivery_id, t.c.waits_for)
    )
    requeued = connection.execute(statement).all()
    ordered = [(i, d, waits_for(w)) for i, d, w in requeued if w]
    queued = len(requeued) - (_wait_again(connection, ordered) if ordered else 0)
    if queued and connection.dialect.name == "postgresql":
        # Delivered at commit: workers elsewhere wake for it then.
        connection.execute(text(f"NOTIFY {CHANNEL}"))
    return len(requeued)


def _wait_again(connection: Connection, ordered: Sequence[tuple[int, int, frozenset[str]]]) -> int:
    """Put back to ``waiting`` the re-queued tasks of which a named task of their delivery is
    unfinished now; return how many.

    On PostgreSQL the delivery's queued and running tasks are locked first: a worker ending
    one of them right now commits before we read it (its release, which did not see our
    uncommitted re-queue, would not queue the task we put back to waiting). Waiting tasks
    are read, not locked: releasers lock those, and they lock them after their own rows.
    """
    t = _tasks
    busy: dict[int, set[str]] = {}
    deliveries = sorted({d for _, d, _ in ordered})
    for part in chunks(deliveries):
        locked = (
            select(t.c.delivery_id, t.c.handler)
            .where(
                t.c.delivery_id.in_(part),
                t.c.status.in_((TaskStatus.QUEUED, TaskStatus.RUNNING)),
            )
            .order_by(t.c.id)
            .with_for_update()
        )
        waiting = select(t.c.delivery_id, t.c.handler).where(
            t.c.delivery_id.in_(part), t.c.status == TaskStatus.WAITING
        )
        for query in (locked, waiting):
            for delivery_id, handler in connection.execute(query):
                busy.setdefault(delivery_id, set()).add(handler)
    wait = [i for i, d, names in ordered if names & busy.get(d, set())]
    for part in chunks(wait):
        connection.execute(update(t).where(t.c.id.in_(part)).values(status=TaskStatus.WAITING))
    return len(wait)


def retry_task(engine: Engine, task_id: int) -> bool:
    """Queue one task again (unless it is running or waiting). Returns whether it was
    re-queued (it may wait again, for a task of its delivery that it runs after)."""
    return _requeue(engine, _tasks.c.id == task_id) == 1


def requeue_task(connection: Connection, task_id: int) -> bool:
    """:func:`retry_task` in the caller's write transaction, so the caller can read the task
    back before any worker can claim it (workers hear of it only at commit)."""
    return _requeue_on(connection, _tasks.c.id == task_id) == 1


def replay_job(engine: Engine, job_id: str, handler: str | None = None) -> int:
    """Run a job's finished tasks again (optionally one handler's). Returns how many."""
    conditions = [_tasks.c.job_id == job_id, _tasks.c.status.in_(_RAN)]
    if handler is not None:
        conditions.append(_tasks.c.handler == handler)
    return _requeue(engine, *conditions)


def replay_dead(engine: Engine, handler: str | None = None) -> int:
    """Queue every dead task again (optionally one handler's). Returns how many."""
    conditions = [_tasks.c.status == TaskStatus.DEAD]
    if handler is not None:
        conditions.append(_tasks.c.handler == handler)
    return _requeue(engine, *conditions)
