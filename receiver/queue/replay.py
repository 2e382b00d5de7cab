"""Re-queueing work: one task, a job's tasks, or every dead task.

Behind ``framehook replay`` and the admin API's retry/replay routes. A replayed task is queued
at once with a fresh retry budget; its attempt count keeps growing (it fences stale workers)
and its history stays in ``task_attempts``. Running tasks are never touched.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text, update
from sqlalchemy.sql.elements import ColumnElement

from receiver.db.engine import writing
from receiver.db.models import Task, TaskStatus, metadata
from receiver.queue.notify import CHANNEL

__all__ = ["replay_dead", "replay_job", "requeue_task", "retry_task"]

_tasks = metadata.tables[Task.__tablename__]
# A job's tasks that ran to an end; superseded ones never ran, and replaying a job leaves them.
_RAN = (TaskStatus.SUCCEEDED, TaskStatus.DEAD)


def _requeue(engine: Engine, *conditions: ColumnElement[bool]) -> int:
    with writing(engine) as connection:
        return _requeue_on(connection, *conditions)


def _requeue_on(connection: Connection, *conditions: ColumnElement[bool]) -> int:
    now = datetime.now(UTC)
    t = _tasks
    statement = (
        update(t)
        .where(t.c.status != TaskStatus.RUNNING, *conditions)
        .values(
            status=TaskStatus.QUEUED,
            run_at=now,
            updated_at=now,
            finished_at=None,
            lease_expires_at=None,
            attempt_offset=t.c.attempts,
        )
    )
    count = connection.execute(statement).rowcount
    if count and connection.dialect.name == "postgresql":
        # Delivered at commit: workers elsewhere wake for it then.
        connection.execute(text(f"NOTIFY {CHANNEL}"))
    return count


def retry_task(engine: Engine, task_id: int) -> bool:
    """Queue one task again (unless it is running). Returns whether it was re-queued."""
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
