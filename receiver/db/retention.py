"""Retention: raw bodies and finished tasks pruned after an age; what dedupe needs is kept.

The dedupe ledger and the job rows are never pruned, so a delivery Apiframe retries days
later is still recognised as a duplicate and a job's state never goes back. Deliveries stay
as rows (their outcome and timestamps make the timeline); only their raw bodies go. Dead tasks
stay until someone replays them; succeeded and superseded ones go with their attempts.

A prune works in bounded batches, each its own short write transaction: on SQLite there is one
writer, and a prune of millions of rows in one transaction (144 s for 5M deliveries) kept the
intake from committing for its whole length, so webhooks got 503s. Each batch reads the next
``batch_rows`` candidates in id order, outside any write lock, and writes only when the window
holds something to prune; between writes it pauses about as long as the write took, so the
prune has about half of the writer's time at most. A prune stopped between batches keeps what
it did.

A periodic prune costs what it prunes, not what it pruned before: deliveries stay as rows, so
their windows come from ``ix_deliveries_unpruned`` (the rows that still hold a body), and
pruned tasks are gone from ``tasks``. Walking the primary key instead, every prune reread all
of history (at 5M deliveries, 5,000 reads before it reached a body to drop).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, case, delete, exists, func, select, update

from receiver.db.engine import writing
from receiver.db.models import Delivery, Task, TaskAttempt, TaskStatus, metadata

__all__ = ["BATCH_ROWS", "Pruned", "prune"]

BATCH_ROWS = 1_000
"""Rows a batch looks at (and writes at most). Measured on SQLite with 1 KB bodies and a task
each, on a 2-core machine: a batch's write takes about 4-5 ms (median; p99 6-13 ms, the slowest
~50 ms), so the intake's commits wait about that long behind it (2,000 rows: 8 ms, p99 28 ms,
for 15 % less total time). 5M old deliveries took 143 s to prune this way, against 53 s in one
transaction, during which the intake could not commit at all."""
_MIN_PAUSE = 0.005
"""The least pause after a write, so a writer waiting for the lock always gets it."""

_deliveries = metadata.tables[Delivery.__tablename__]
_tasks = metadata.tables[Task.__tablename__]
_attempts = metadata.tables[TaskAttempt.__tablename__]
PRUNABLE_TASKS = (TaskStatus.SUCCEEDED, TaskStatus.SUPERSEDED)
_KEEPS_BODY = (TaskStatus.WAITING, TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.DEAD)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one prune removed (so far, while it runs)."""

    bodies: int
    tasks: int
    attempts: int

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(
            self.bodies + other.bodies, self.tasks + other.tasks, self.attempts + other.attempts
        )


_NOTHING = Pruned(0, 0, 0)


def prune(
    engine: Engine,
    older_than: timedelta,
    now: datetime | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[Pruned], None] | None = None,
    stop: threading.Event | None = None,
) -> Pruned:
    """Drop raw bodies of deliveries received, and finished tasks finished, before
    ``now - older_than``. A body whose task has not finished yet is kept (its handler needs it).

    Args:
        engine: the receiver's database.
        older_than: the age past which bodies and finished tasks go.
        now: the clock (tests); the current time by default.
        batch_rows: rows each batch looks at; each batch is one short transaction.
        progress: called after each batch with the totals so far (on the calling thread).
        stop: when set, the prune ends after the batch it is in, keeping what it did.

    Returns:
        What was removed, by this call (a stopped prune: up to where it stopped).
    """
    cutoff = (now or datetime.now(UTC)) - older_than
    stop = stop or threading.Event()
    done = _NOTHING
    for batch, wrote_seconds in _batches(engine, cutoff, batch_rows):
        done = done + batch
        if progress is not None:
            progress(done)
        # After a write, the pause that lets other writers in (after a read, none): as long
        # as the write, give or take half, so that a writer in another process, retrying on
        # SQLite's back-off schedule, cannot fall in step with the batches and miss every gap.
        jitter = random.uniform(0.5, 1.5)  # noqa: S311 (timing, not secrets)
        pause = max(wrote_seconds * jitter, _MIN_PAUSE) if wrote_seconds else 0
        if stop.wait(pause):
            break
    return done


def _batches(engine: Engine, cutoff: datetime, rows: int) -> Iterator[tuple[Pruned, float]]:
    """Each batch's removals and how long its write transaction took (0: nothing written)."""
    yield from _body_batches(engine, cutoff, rows)
    yield from _task_batches(engine, cutoff, rows)


def _body_batches(engine: Engine, cutoff: datetime, rows: int) -> Iterator[tuple[Pruned, float]]:
    d, t = _deliveries, _tasks
    last = 0
    while True:
        # The next rows that still hold a body, from ix_deliveries_unpruned: pruned rows have
        # left it, so a prune reads only what it may prune (and the few kept bodies).
        ids = (
            select(d.c.id)
            .where(d.c.body.is_not(None), d.c.id > last)
            .order_by(d.c.id)
            .limit(rows)
            .correlate(None)  # a list of ids of its own, also inside the UPDATE of deliveries
        )
        window = select(d.c.id, d.c.received_at).where(d.c.id.in_(ids)).subquery()
        with engine.connect() as connection:
            end, earliest = connection.execute(
                select(func.max(window.c.id), func.min(window.c.received_at))
            ).one()
        if end is None or earliest >= cutoff:
            # No body left, or a window received entirely after the cutoff: ids grow with
            # time, so no later window holds anything old.
            return
        # Tasks that may still run (a dead one, once replayed), so their bodies stay.
        running = exists().where(t.c.delivery_id == d.c.id, t.c.status.in_(_KEEPS_BODY))
        started = time.monotonic()
        with writing(engine) as connection:
            count = connection.execute(
                update(d)
                .where(
                    d.c.id.in_(ids.where(d.c.id <= end)),
                    d.c.received_at < cutoff,
                    ~running,
                )
                .values(body=None)
            ).rowcount
        yield Pruned(count, 0, 0), time.monotonic() - started
        last = end


def _task_batches(engine: Engine, cutoff: datetime, rows: int) -> Iterator[tuple[Pruned, float]]:
    t, a = _tasks, _attempts
    last = 0
    while True:
        window = (
            select(t.c.id, t.c.created_at, t.c.status, t.c.finished_at)
            .where(t.c.id > last)
            .order_by(t.c.id)
            .limit(rows)
            .subquery()
        )
        old_task = case(
            (window.c.status.in_(PRUNABLE_TASKS) & (window.c.finished_at < cutoff), 1), else_=0
        )
        with engine.connect() as connection:
            end, earliest, candidates = connection.execute(
                select(func.max(window.c.id), func.min(window.c.created_at), func.sum(old_task))
            ).one()
        if end is None or earliest >= cutoff:
            return  # a task created after the cutoff cannot have finished before it
        if not candidates:
            yield _NOTHING, 0.0
        else:
            started = time.monotonic()
            with writing(engine) as connection:
                gone = (
                    connection.execute(
                        delete(t)
                        .where(
                            t.c.id > last,
                            t.c.id <= end,
                            t.c.status.in_(PRUNABLE_TASKS),
                            t.c.finished_at < cutoff,
                        )
                        .returning(t.c.id)
                    )
                    .scalars()
                    .all()
                )
                attempts = (
                    connection.execute(delete(a).where(a.c.task_id.in_(gone))).rowcount
                    if gone
                    else 0
                )
            yield Pruned(0, len(gone), attempts), time.monotonic() - started
        last = end
